"""Gates: the checks run after an upgrade (HTTP probe, soak, Prometheus query, webhook judge)."""

from __future__ import annotations

import math
import re
import string
from collections.abc import Mapping
from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    Field,
    model_validator,
)

from rollout.config.base import URL_PLACEHOLDERS, ConfigModel, Name, check_placeholders
from rollout.domain.conditions import parse_condition
from rollout.durations import Duration, PositiveDuration


class _GateBase(ConfigModel):
    name: Name
    initial_delay: Duration = timedelta(0)
    interval: PositiveDuration = timedelta(seconds=10)
    failure_limit: Annotated[int, Field(ge=0)] = 0
    inconclusive_limit: Annotated[int, Field(ge=0)] = 0
    consecutive_error_limit: Annotated[int, Field(ge=0)] = 4
    consecutive_successes: Annotated[int, Field(ge=1)] | None = None
    dry_run: bool = False


def check_url(value: str) -> str:
    if not re.match(r"https?://", value):
        raise ValueError(f"url {value!r} must start with http:// or https://")
    try:
        fields = list(string.Formatter().parse(value))
    except ValueError as exc:
        raise ValueError(f"url {value!r} has unbalanced braces ({exc})") from None
    allowed = ", ".join(f"{{{p}}}" for p in URL_PLACEHOLDERS)
    for _literal, field, spec, conversion in fields:
        if field is None:
            continue
        if field not in URL_PLACEHOLDERS or spec or conversion:
            shown = "{" + field + (f"!{conversion}" if conversion else "")
            shown += (f":{spec}" if spec else "") + "}"
            raise ValueError(f"unknown placeholder {shown!r} in url (allowed: {allowed})")
    return value


def _check_condition(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        parse_condition(value)
    except ValueError as exc:
        raise ValueError(f"invalid condition: {exc}") from None
    return value


Condition = Annotated[str | None, AfterValidator(_check_condition)]


class HttpGate(_GateBase):
    type: Literal["http"]
    # Placeholders: {service} {version} {environment} {stage}.
    url: Annotated[str, AfterValidator(check_url)]
    method: Literal["GET", "HEAD", "POST"] = "GET"
    expect_status: Annotated[list[Annotated[int, Field(ge=100, le=599)]], Field(min_length=1)] = (
        Field(default_factory=lambda: [200])
    )
    success_condition: Condition = None
    failure_condition: Condition = None
    # What a field missing from the response counts as.
    no_data: Literal["error", "fail", "pass", "inconclusive"] = "error"
    timeout: PositiveDuration = timedelta(seconds=5)
    # None: no fixed number of measurements.
    count: Annotated[int, Field(ge=1)] | None = 1


class SoakGate(_GateBase):
    type: Literal["soak"]
    # Healthy, as the environment's driver reports health, for this long.
    duration: PositiveDuration

    @model_validator(mode="before")
    @classmethod
    def _no_count(cls, data: Any) -> Any:
        # Say why rather than "unknown field": the count follows from duration and interval.
        if isinstance(data, Mapping) and "count" in data:
            raise ValueError(
                "`count` is not allowed on a soak gate: it is derived as "
                "ceil(duration / interval) + 1"
            )
        return data

    @property
    def count(self) -> int:
        """Measurements: one at the start and one per interval until the duration is covered."""
        return math.ceil(self.duration / self.interval) + 1


_NO_DATA_POLICY = Literal["error", "fail", "pass", "inconclusive"]
VALUE_NAME_PATTERN = r"^[a-z_][a-z0-9_]{0,62}$"


def _check_query(value: str) -> str:
    return check_placeholders(value, URL_PLACEHOLDERS, "query")


class PrometheusGate(_GateBase):
    type: Literal["prometheus"]
    # The Prometheus server's base URL; the gate asks {url}/api/v1/query.
    url: Annotated[str, AfterValidator(check_url)]
    # PromQL giving one number (a one-sample vector or a scalar); placeholders {service}
    # {version} {environment} {stage} are filled as escaped string-literal content.
    query: Annotated[str, Field(min_length=1), AfterValidator(_check_query)]
    # Conditions on the result, named `value` or `value_name`: `value < 0.05`.
    success_condition: Condition = None
    failure_condition: Condition = None
    # What the result is called in messages: `error_rate 0.071, wanted error_rate < 0.05`.
    value_name: Annotated[str, Field(pattern=VALUE_NAME_PATTERN)] = "value"
    # An empty result (no series matched).
    no_data: _NO_DATA_POLICY = "error"
    # A NaN result (e.g. 0/0: a rate with no traffic).
    nan: _NO_DATA_POLICY = "error"
    timeout: PositiveDuration = timedelta(seconds=10)
    count: Annotated[int, Field(ge=1)] | None = 1

    @model_validator(mode="after")
    def _conditions_on_the_value(self) -> PrometheusGate:
        if self.success_condition is None and self.failure_condition is None:
            raise ValueError("a prometheus gate needs success_condition or failure_condition")
        names = {"value", self.value_name}
        for text in (self.success_condition, self.failure_condition):
            if text is None:
                continue
            for comparison in parse_condition(text).comparisons:
                if comparison.path not in names:
                    shown = " or ".join(sorted(names))
                    raise ValueError(
                        f"condition {text!r} names {comparison.path!r}: a query's result is "
                        f"one number, called {shown}"
                    )
        return self


def _check_env_name(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
        raise ValueError(f"invalid environment variable name {value!r}")
    return value


EnvName = Annotated[str, AfterValidator(_check_env_name)]


class WebhookGate(_GateBase):
    """An external judge: 2xx passes, anything else fails."""

    type: Literal["webhook"]
    # Placeholders {service} {version} {environment} {stage}. A URL carrying a token is a
    # secret: name the environment variable holding it with `url_env` instead.
    url: Annotated[str, AfterValidator(check_url)] | None = None
    url_env: EnvName | None = None
    # Sent as `Authorization: Bearer …`; read from this environment variable on the worker.
    token_env: EnvName | None = None
    timeout: PositiveDuration = timedelta(seconds=10)
    count: Annotated[int, Field(ge=1)] | None = 1

    @model_validator(mode="after")
    def _one_url(self) -> WebhookGate:
        if (self.url is None) == (self.url_env is None):
            raise ValueError("a webhook gate needs exactly one of `url` and `url_env`")
        return self


Gate = Annotated[HttpGate | SoakGate | PrometheusGate | WebhookGate, Field(discriminator="type")]
