"""The channel specs a team's pages go out through: one typed union from config to delivery."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import timedelta
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    SerializerFunctionWrapHandler,
    ValidationError,
    field_validator,
    model_serializer,
    model_validator,
)

from rollout.durations import PositiveDuration
from rollout.secrets import SecretRef

CHANNEL_TYPES = ("webhook", "pagerduty", "alertmanager", "slack", "email")
PAGERDUTY_URL = "https://events.pagerduty.com/v2/enqueue"

NonEmpty = Annotated[str, Field(min_length=1)]


class _ChannelSpec(BaseModel):
    # By alias and by name: the config says `from` and `to`, Python cannot.
    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        validate_by_alias=True,
        validate_by_name=True,
        serialize_by_alias=True,
    )

    name: NonEmpty | None = None  # the type's name when not given
    timeout: PositiveDuration = timedelta(seconds=10)  # per network operation of one attempt

    @model_validator(mode="before")
    @classmethod
    def _deprecated_timeout_s(cls, data: object) -> object:
        # Configs, plans and delivery rows written before `timeout` say `timeout_s: 10`.
        if not isinstance(data, Mapping) or "timeout_s" not in data:
            return data
        fields = dict(data)
        seconds = fields.pop("timeout_s")
        if "timeout" in fields:
            raise ValueError("give `timeout` (a duration, e.g. 10s), not also `timeout_s`")
        if (
            isinstance(seconds, bool)
            or not isinstance(seconds, int | float)
            or not math.isfinite(seconds)
            or seconds <= 0
        ):
            raise ValueError(
                "`timeout_s` must be a positive number of seconds (deprecated: `timeout: 10s`)"
            )
        fields["timeout"] = timedelta(seconds=seconds)
        return fields

    @model_serializer(mode="wrap")
    def _stored(self, handler: SerializerFunctionWrapHandler) -> dict[str, JsonValue]:
        # Written as the plan's other waits are (`soak_s`, `interval_s`) and without unset
        # fields: the shape rows had before, which a worker not yet upgraded still reads.
        fields: dict[str, JsonValue] = handler(self)
        fields.pop("timeout", None)
        fields["timeout_s"] = self.timeout.total_seconds()
        return _without_none(fields)


def _without_none(fields: dict[str, JsonValue]) -> dict[str, JsonValue]:
    return {
        key: _without_none(value) if isinstance(value, dict) else value
        for key, value in fields.items()
        if value is not None
    }


class WebhookChannelSpec(_ChannelSpec):
    """A generic JSON POST to a URL that is itself the secret."""

    type: Literal["webhook"]
    url: SecretRef


class PagerDutyChannelSpec(_ChannelSpec):
    """PagerDuty's Events API v2, by the service's routing key."""

    type: Literal["pagerduty"]
    routing_key: SecretRef
    url: NonEmpty = PAGERDUTY_URL


class AlertmanagerChannelSpec(_ChannelSpec):
    """Alertmanager's v2 API: a plain URL (it carries no secret), or a reference to one."""

    type: Literal["alertmanager"]
    url: str | SecretRef = Field(union_mode="left_to_right")

    @field_validator("url", mode="before")
    @classmethod
    def _url_or_reference(cls, value: object) -> object:
        if isinstance(value, str):
            if not _is_http_url(value):
                raise ValueError("must be an http(s) URL")
            return value
        if isinstance(value, SecretRef):
            return value
        if not isinstance(value, Mapping):
            raise ValueError("is required: a URL, or {env: NAME} or {file: PATH}")
        try:
            return SecretRef.model_validate(value)
        except ValidationError as error:
            # One message, the reference's own, rather than one per member of the union.
            raise ValueError(error.errors()[0]["msg"].removeprefix("Value error, ")) from None


class SlackChannelSpec(_ChannelSpec):
    """A Slack incoming webhook, whose URL is the secret."""

    type: Literal["slack"]
    webhook_url: SecretRef


class EmailChannelSpec(_ChannelSpec):
    """Mail over SMTP; the password is a reference, read when a mail is sent."""

    type: Literal["email"]
    host: NonEmpty
    port: Annotated[int, Field(strict=True, gt=0, lt=65536)]
    sender: NonEmpty = Field(alias="from")
    recipients: tuple[NonEmpty, ...] = Field(alias="to")
    username: NonEmpty | None = None
    password: SecretRef | None = None
    starttls: bool = False
    timeout: PositiveDuration = timedelta(seconds=30)  # SMTP servers greet slowly

    @field_validator("recipients")
    @classmethod
    def _someone(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("names no recipient")
        return value

    @model_validator(mode="after")
    def _login_whole(self) -> EmailChannelSpec:
        if (self.username is None) != (self.password is None):
            raise ValueError("`username` and `password` go together")
        return self


ChannelSpec = Annotated[
    WebhookChannelSpec
    | PagerDutyChannelSpec
    | AlertmanagerChannelSpec
    | SlackChannelSpec
    | EmailChannelSpec,
    Field(discriminator="type"),
]
CHANNEL_SPECS: tuple[type[_ChannelSpec], ...] = (
    WebhookChannelSpec,
    PagerDutyChannelSpec,
    AlertmanagerChannelSpec,
    SlackChannelSpec,
    EmailChannelSpec,
)


def _is_http_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises on a port that is not a number)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)
