"""The fleet config as pydantic models: teams, stages, environments, services, gates."""

from __future__ import annotations

import math
import re
import string
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any, Literal, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ByteSize,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    PrivateAttr,
    ValidationError,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from rollout.config.durations import Duration, PositiveDuration
from rollout.domain.conditions import parse_condition
from rollout.domain.constraints import DAYS, Window, next_open_in_all
from rollout.domain.entry import LOCATION_PLACEHOLDERS, SCANNER_PLACEHOLDERS

__all__ = [
    "COMMAND_PLACEHOLDERS",
    "LABEL_KEY_PATTERN",
    "NAME_PATTERN",
    "REQUIREMENT_OPERATORS",
    "SEVERITIES",
    "URL_PLACEHOLDERS",
    "VERSION_PATTERN",
    "Artifacts",
    "CommandDriver",
    "Driver",
    "Environment",
    "EnvironmentSelector",
    "Fault",
    "Fleet",
    "Gate",
    "HttpDriver",
    "HttpGate",
    "MaintenanceWindow",
    "Member",
    "PrometheusGate",
    "Requirement",
    "Scanner",
    "SecretReference",
    "Service",
    "SimulatedDriver",
    "Simulation",
    "SoakGate",
    "Stage",
    "Team",
    "WebhookGate",
    "fill_placeholders",
]

NAME_PATTERN = r"^[a-z][a-z0-9-]{0,62}$"
VERSION_PATTERN = r"^[0-9A-Za-z][0-9A-Za-z._+-]{0,63}$"
LABEL_KEY_PATTERN = r"^[a-z][a-z0-9_.-]{0,62}$"
SEVERITIES: tuple[str, ...] = ("P0", "P1", "P2", "P3", "P4")
URL_PLACEHOLDERS: tuple[str, ...] = ("service", "version", "environment", "stage")
COMMAND_PLACEHOLDERS: tuple[str, ...] = ("service", "version", "environment", "key")
# A placeholder is exactly `{name}`; any other brace is text, as PromQL's `{job="x"}` and a
# command's `--set-json={"a":1}` need.
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
REQUIREMENT_OPERATORS: tuple[str, ...] = (">=", ">", "==", "<=", "<", "!=")

Severity = Literal["P0", "P1", "P2", "P3", "P4"]


# --- scalar types -------------------------------------------------------------------------


def _check_name(value: str) -> str:
    if not re.fullmatch(NAME_PATTERN, value):
        raise ValueError(
            f"invalid name {value!r}: use lowercase letters, digits and '-', "
            "starting with a letter, at most 63 characters"
        )
    return value


def _check_version(value: object) -> object:
    # YAML reads `1.10` as the float 1.1: refuse numbers rather than guess the text.
    if isinstance(value, bool | int | float):
        raise ValueError(
            f"a version must be a quoted string: YAML read the number {value!r} here "
            '(write e.g. "1.10", in quotes)'
        )
    if isinstance(value, str) and not re.fullmatch(VERSION_PATTERN, value):
        raise ValueError(
            f"invalid version {value!r}: use letters, digits and . _ + - (at most 64), "
            "starting with a letter or digit"
        )
    return value


def _check_label_key(value: str) -> str:
    if not re.fullmatch(LABEL_KEY_PATTERN, value):
        raise ValueError(
            f"invalid label key {value!r}: use lowercase letters, digits and _ . -, "
            "starting with a letter, at most 63 characters"
        )
    return value


def _label_value(value: object) -> object:
    # `air_gapped: true` in YAML is a bool; labels compare as text, so store "true".
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value).lower()
    if not isinstance(value, str):
        raise ValueError(f"label value must be a string, got {type(value).__name__}")
    return value


Name = Annotated[
    str, AfterValidator(_check_name), WithJsonSchema({"type": "string", "pattern": NAME_PATTERN})
]
Version = Annotated[
    str,
    BeforeValidator(_check_version),
    WithJsonSchema({"type": "string", "pattern": VERSION_PATTERN}),
]
LabelKey = Annotated[
    str,
    AfterValidator(_check_label_key),
    WithJsonSchema({"type": "string", "pattern": LABEL_KEY_PATTERN}),
]
LabelValue = Annotated[str, BeforeValidator(_label_value)]
Labels = dict[LabelKey, LabelValue]


class _Model(BaseModel):
    # Typos in a config must be errors, and a loaded config is never changed in place.
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- teams ----------------------------------------------------------------------------------


class Member(_Model):
    name: Annotated[str, Field(min_length=1, max_length=64)]
    timezone: str
    # How a page reaches this person on the team's channels: an email channel writes to
    # their address, a Slack channel mentions them (a member id like U024BE7LH, or @name).
    email: str | None = None
    slack: Annotated[str, Field(pattern=r"^@?[A-Za-z0-9._-]{1,80}$")] | None = None

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r} (use an IANA name like Europe/Berlin)"
            ) from None
        return value

    @field_validator("email")
    @classmethod
    def _plausible_email(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", value):
            raise ValueError(f"invalid email address {value!r}")
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class RotationSpec(_Model):
    """An on-call rotation: ordered members taking shifts that hand off at wall-clock time."""

    # Names of the team's members; fewer than three cannot share nights humanely.
    members: Annotated[list[str], Field(min_length=3)]
    shift: PositiveDuration = timedelta(days=7)
    handoff: time = time(9, 0)
    start: date
    timezone: str

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        return Member._known_zone(value)

    @field_validator("members")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("a member appears twice in the rotation")
        return value


class Rotations(_Model):
    primary: RotationSpec
    secondary: RotationSpec


class EscalationSpec(_Model):
    """If a page is still unacknowledged `after` it was sent, it also goes to `to`."""

    to: Literal["secondary", "team"]
    after: PositiveDuration


_DEFAULT_ESCALATION = [{"to": "secondary", "after": "15m"}, {"to": "team", "after": "30m"}]


def _check_channel(value: dict[str, Any]) -> dict[str, Any]:
    # Built once here so a bad channel is a config error, not a failed page at 3 a.m.;
    # secrets are references, resolved only when a page is delivered.
    from rollout.paging import channel_from_config

    channel_from_config(value)
    return value


class Team(_Model):
    name: Name
    members: list[Member] = Field(default_factory=list)
    rotations: Rotations | None = None
    escalation: list[EscalationSpec] = Field(
        default_factory=lambda: [EscalationSpec.model_validate(e) for e in _DEFAULT_ESCALATION]
    )
    # How pages reach the team: webhook, pagerduty, alertmanager, slack, email.
    channels: list[Annotated[dict[str, Any], AfterValidator(_check_channel)]] = Field(
        default_factory=list
    )

    @model_validator(mode="after")
    def _rotation_members_are_members(self) -> Team:
        known = {m.name for m in self.members}
        for role, spec in (
            (("primary", self.rotations.primary), ("secondary", self.rotations.secondary))
            if self.rotations
            else ()
        ):
            unknown = [name for name in spec.members if name not in known]
            if unknown:
                raise ValueError(
                    f"{role} rotation names {', '.join(map(repr, unknown))}, not members of "
                    f"team {self.name!r}"
                )
        return self

    def member(self, name: str) -> Member:
        return next(m for m in self.members if m.name == name)


# --- stages and environments ----------------------------------------------------------------


def _parallelism(value: object) -> object:
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(f"invalid parallelism {value!r}: use a number >= 1 or a percent")
    if isinstance(value, int):
        if value < 1:
            raise ValueError(f"parallelism must be at least 1, got {value}")
        return value
    if isinstance(value, str):
        text = value.strip()
        if text.isdigit():
            return _parallelism(int(text))
        match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*%", text)
        if match:
            percent = float(match.group(1))
            if not 0 < percent <= 100:
                raise ValueError(f"parallelism percent must be in (0%, 100%], got {value!r}")
            return f"{match.group(1)}%"
    raise ValueError(f'invalid parallelism {value!r}: use a number >= 1 or a percent such as "25%"')


class Stage(_Model):
    name: Name
    # Healthy time after enough environments passed, before promotion.
    soak: Duration = timedelta(0)
    # Share of the stage's environments (for the service) that must have passed.
    promote_share: Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)] = 1.0
    # int >= 1, or "NN%" of the stage's environments for the service; None: unlimited.
    parallelism: Annotated[int | str | None, BeforeValidator(_parallelism)] = None
    # None: the default for the stage's position, see Fleet.severity_for_stage.
    page_severity: Severity | None = None

    def parallel_limit(self, environment_count: int) -> int | None:
        """How many of `environment_count` environments may upgrade at once; None: all."""
        if self.parallelism is None:
            return None
        if isinstance(self.parallelism, int):
            return self.parallelism
        percent = float(self.parallelism.rstrip("%"))
        return max(1, math.floor(environment_count * percent / 100))


class SimulatedDriver(_Model):
    type: Literal["simulated"]
    poll_interval: PositiveDuration = timedelta(seconds=1)
    deploy_timeout: PositiveDuration = timedelta(minutes=10)


def fill_placeholders(
    template: str, values: Mapping[str, str], quote: Callable[[str], str] | None = None
) -> str:
    """`template` with each `{name}` of `values` replaced in one pass: a value is never read
    as a template itself, and `quote` (if given) escapes it for where it lands."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            return match.group(0)
        return values[name] if quote is None else quote(values[name])

    return _PLACEHOLDER.sub(replace, template)


def _check_placeholders(value: str, allowed: tuple[str, ...], where: str) -> str:
    for match in _PLACEHOLDER.finditer(value):
        if match.group(1) not in allowed:
            names = ", ".join(f"{{{p}}}" for p in allowed)
            raise ValueError(
                f"unknown placeholder {match.group(0)!r} in {where} (allowed: {names})"
            )
    return value


def _check_argv(value: list[str], allowed: tuple[str, ...]) -> list[str]:
    for argument in value:
        _check_placeholders(argument, allowed, "command")
    if not value[0].strip():
        raise ValueError("the program (a command's first element) must not be empty")
    return value


def _deploy_argv(value: list[str]) -> list[str]:
    return _check_argv(value, COMMAND_PLACEHOLDERS)


def _remove_argv(value: list[str]) -> list[str]:
    return _check_argv(value, ("service", "environment", "key"))


def _health_argv(value: list[str]) -> list[str]:
    return _check_argv(value, ("service", "environment"))


DeployArgv = Annotated[list[str], Field(min_length=1), AfterValidator(_deploy_argv)]
RemoveArgv = Annotated[list[str], Field(min_length=1), AfterValidator(_remove_argv)]
HealthArgv = Annotated[list[str], Field(min_length=1), AfterValidator(_health_argv)]


class CommandDriver(_Model):
    """Deploys by running a program with a templated argument list, never through a shell."""

    type: Literal["command"]
    # argv; placeholders {service} {version} {environment} {key}, each filled as one whole
    # argument's part, so nothing in a version can become another argument or a command.
    deploy: DeployArgv
    # Run after `deploy` exited 0, within the same timeout (e.g. `kubectl rollout status`):
    # the deploy succeeds only when this exits 0 too.
    status: DeployArgv | None = None
    # Removes the service (rolling back a first install); without it that rollback fails.
    remove: RemoveArgv | None = None
    # Exit 0 is healthy, anything else unhealthy; without it health is unknown.
    health: HealthArgv | None = None
    timeout: PositiveDuration = timedelta(minutes=10)
    health_timeout: PositiveDuration = timedelta(seconds=30)
    poll_interval: PositiveDuration = timedelta(seconds=2)
    # Where each deploy keeps its pid, exit code and output; every worker that may poll a
    # deploy must see the same directory. Default: $ROLLOUT_DATA_DIR/command-driver.
    state_dir: Annotated[str, Field(min_length=1)] | None = None

    @property
    def deploy_timeout(self) -> timedelta:
        # The engine gives up a little after the driver itself kills an overdue command, so
        # a deploy is never rolled back while its process may still run.
        return self.timeout + timedelta(minutes=1)


class SecretReference(_Model):
    """Where a secret lives, never the secret: `{env: NAME}` or `{file: PATH}`."""

    env: Annotated[str, Field(min_length=1)] | None = None
    file: Annotated[str, Field(min_length=1)] | None = None

    @model_validator(mode="before")
    @classmethod
    def _a_reference(cls, data: Any) -> Any:
        # Never echo an inline value: it may be the very secret that should not be there.
        if not isinstance(data, Mapping):
            raise ValueError("a secret is given by reference: {env: NAME} or {file: PATH}")
        return data

    @model_validator(mode="after")
    def _exactly_one(self) -> SecretReference:
        if (self.env is None) == (self.file is None):
            raise ValueError("a secret reference names exactly one of `env` or `file`")
        return self


AGENT_URL_PLACEHOLDERS: tuple[str, ...] = ("environment",)


def _check_agent_url(value: str) -> str:
    if not re.match(r"https?://", value):
        raise ValueError(f"url {value!r} must start with http:// or https://")
    return _check_placeholders(value, AGENT_URL_PLACEHOLDERS, "url")


class HttpDriver(_Model):
    """An environment's `rollout agent` applies versions. `push`: the orchestrator calls the
    agent's API; `pull`: the agent polls the orchestrator's API (an air-gapped network takes
    no inbound calls), so the engine only records what it wants and reads what was reported."""

    type: Literal["http"]
    mode: Literal["push", "pull"] = "push"
    # The agent's base URL (push only); placeholder {environment}.
    url: Annotated[str, AfterValidator(_check_agent_url)] | None = None
    # Sent as `Authorization: Bearer …` to a push agent; read on the worker at each call.
    token: SecretReference | None = None
    # One call to the agent, its retries included. A step renews its lease while it waits,
    # so this may exceed ROLLOUT_LEASE_SECONDS (validate warns: a worker waits that long).
    request_timeout: PositiveDuration = timedelta(seconds=10)
    poll_interval: PositiveDuration = timedelta(seconds=2)
    deploy_timeout: PositiveDuration = timedelta(minutes=10)

    @model_validator(mode="after")
    def _url_for_push(self) -> HttpDriver:
        if self.mode == "push" and self.url is None:
            raise ValueError("an http driver in push mode needs the agent's `url`")
        if self.mode == "pull" and (self.url is not None or self.token is not None):
            raise ValueError(
                "an http driver in pull mode is called by its agent: drop `url` and `token` "
                "(the agent authenticates with an `agent` API token)"
            )
        return self


# --- maintenance windows ------------------------------------------------------------------------

Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def _clock(value: object) -> object:
    # YAML 1.1 reads an unquoted 16:00 as the base-60 number 960: refuse it, never guess.
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise ValueError(
            f'a time of day must be a quoted string "HH:MM": YAML read the number {value!r}'
        )
    return value


class MaintenanceWindow(_Model):
    """A weekly window in which upgrades may start; `end` at or before `start` ends on the
    next day (a window across midnight)."""

    days: Annotated[list[Day], Field(min_length=1)]
    start: Annotated[time, BeforeValidator(_clock)]
    end: Annotated[time, BeforeValidator(_clock)]
    zone: str

    @field_validator("zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        return Member._known_zone(value)

    def window(self) -> Window:
        """The window as the constraints see it."""
        return Window(frozenset(DAYS.index(d) for d in self.days), self.start, self.end, self.zone)

    @model_validator(mode="after")
    def _has_length(self) -> MaintenanceWindow:
        if self.start == self.end:
            raise ValueError(
                f"a window from {self.start:%H:%M} to {self.end:%H:%M} has no length "
                "(for a whole day, leave the windows out: no windows means always open)"
            )
        return self


Driver = Annotated[SimulatedDriver | CommandDriver | HttpDriver, Field(discriminator="type")]


class Environment(_Model):
    name: Name
    stage: Name
    driver: Driver
    labels: Labels = Field(default_factory=dict)
    # Upgrades start only inside one of these; none: always open.
    windows: list[MaintenanceWindow] = Field(default_factory=list)


class EnvironmentSelector(_Model):
    labels: Labels = Field(default_factory=dict)

    def matches(self, environment: Environment) -> bool:
        return all(environment.labels.get(k) == v for k, v in self.labels.items())


# --- gates ------------------------------------------------------------------------------------


class _GateBase(_Model):
    name: Name
    initial_delay: Duration = timedelta(0)
    interval: PositiveDuration = timedelta(seconds=10)
    failure_limit: Annotated[int, Field(ge=0)] = 0
    inconclusive_limit: Annotated[int, Field(ge=0)] = 0
    consecutive_error_limit: Annotated[int, Field(ge=0)] = 4
    consecutive_successes: Annotated[int, Field(ge=1)] | None = None
    dry_run: bool = False


def _check_url(value: str) -> str:
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
    url: Annotated[str, AfterValidator(_check_url)]
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
    return _check_placeholders(value, URL_PLACEHOLDERS, "query")


class PrometheusGate(_GateBase):
    type: Literal["prometheus"]
    # The Prometheus server's base URL; the gate asks {url}/api/v1/query.
    url: Annotated[str, AfterValidator(_check_url)]
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
    url: Annotated[str, AfterValidator(_check_url)] | None = None
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


# --- air-gapped entry ---------------------------------------------------------------------------


def _scanner_argv(value: list[str]) -> list[str]:
    return _check_argv(value, SCANNER_PLACEHOLDERS)


def _artifact_path(value: str) -> str:
    if not value.startswith("/"):
        raise ValueError(f"path {value!r} must be absolute (every worker reads it)")
    return _check_placeholders(value, LOCATION_PLACEHOLDERS, "path")


def _artifact_url(value: str) -> str:
    _check_url(value)
    return _check_placeholders(value, LOCATION_PLACEHOLDERS, "url")


class Scanner(_Model):
    """A program run on each artifact before it enters an air-gapped environment: exit 0 is
    clean, anything else a finding. An argument list, never a shell."""

    # Placeholders {artifact} (the file) {service} {version} {environment} {digest}.
    command: Annotated[list[str], Field(min_length=1), AfterValidator(_scanner_argv)]
    timeout: PositiveDuration = timedelta(minutes=5)


class Artifacts(_Model):
    """Where the bytes of a service's version are, so that their digest can be checked."""

    # Exactly one of: a file every worker sees, or an http(s) URL; placeholders {service}
    # {version} {environment} {digest}.
    path: Annotated[str, AfterValidator(_artifact_path)] | None = None
    url: Annotated[str, AfterValidator(_artifact_url)] | None = None
    max_size: ByteSize = ByteSize(10 * 2**30)
    # For reading or downloading the artifact (the scanner has its own).
    timeout: PositiveDuration = timedelta(minutes=5)
    scanner: Scanner | None = None

    @model_validator(mode="after")
    def _one_location(self) -> Artifacts:
        if (self.path is None) == (self.url is None):
            raise ValueError("give exactly one of `path` and `url`")
        return self


# --- services ---------------------------------------------------------------------------------

_REQUIREMENT = re.compile(r"\s*([^\s<>=!]+)\s*(>=|<=|==|!=|>|<)\s*(\S+)\s*")


class Requirement(_Model):
    service: Name
    op: Literal[">=", ">", "==", "<=", "<", "!="]
    version: Version

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, data: Any) -> Any:
        if not isinstance(data, str):
            return data
        match = _REQUIREMENT.fullmatch(data)
        if match is None:
            ops = " ".join(REQUIREMENT_OPERATORS)
            raise ValueError(
                f'invalid requirement {data!r}: use "SERVICE OP VERSION" with OP one of {ops}, '
                'e.g. "billing-db >= 2.3"'
            )
        return {"service": match.group(1), "op": match.group(2), "version": match.group(3)}

    def __str__(self) -> str:
        return f"{self.service} {self.op} {self.version}"


class Service(_Model):
    name: Name
    team: Name
    # None: every environment.
    environments: EnvironmentSelector | None = None
    requires: list[Requirement] = Field(default_factory=list)
    gates: list[Gate] = Field(default_factory=list)
    # Upgrades start only inside one of these (and the environment's); none: always open.
    windows: list[MaintenanceWindow] = Field(default_factory=list)
    # Overrides the fleet's `artifacts` for this service.
    artifacts: Artifacts | None = None

    def runs_in(self, environment: Environment) -> bool:
        return self.environments is None or self.environments.matches(environment)


# --- simulation -------------------------------------------------------------------------------


def _name_or_any(value: str) -> str:
    return value if value == "*" else _check_name(value)


def _version_or_any(value: object) -> object:
    return value if value == "*" else _check_version(value)


class Fault(_Model):
    # "*" matches any service, any version.
    service: Annotated[str, AfterValidator(_name_or_any)] = "*"
    version: Annotated[str, BeforeValidator(_version_or_any)] = "*"
    health: Literal["healthy", "unhealthy", "flaky"] = "healthy"
    # Share of probes that cannot be taken, when health is flaky.
    flaky_rate: Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)] = 0.2
    # What the fake health endpoint reports; default 0.2 when unhealthy, else 0.0.
    error_rate: Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)] = 0.0
    deploy_seconds: Annotated[float, Field(ge=0, allow_inf_nan=False)] = 0.0
    deploy_fails: bool = False

    @model_validator(mode="before")
    @classmethod
    def _default_error_rate(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and data.get("error_rate") is None:
            rate = 0.2 if data.get("health") == "unhealthy" else 0.0
            return {**data, "error_rate": rate}
        return data

    def specificity(self) -> int:
        # An exact version beats a service-wide rule, as in the simulated driver.
        return (self.version != "*") * 2 + (self.service != "*")

    def matches(self, service: str, version: str) -> bool:
        return self.service in ("*", service) and self.version in ("*", version)


class Simulation(_Model):
    initial_version: Version | None = None
    faults: list[Fault] = Field(default_factory=list)

    def fault_for(self, service: str, version: str) -> Fault | None:
        """The most specific fault for (service, version); the first in the file on a tie."""
        found = [f for f in self.faults if f.matches(service, version)]
        return max(found, key=Fault.specificity, default=None)


# --- the fleet ----------------------------------------------------------------------------------


Loc = tuple[str | int, ...]


class Operations(_Model):
    team: Name


class Fleet(_Model):
    teams: list[Team] = Field(default_factory=list)
    # The order in the file is the pipeline order.
    stages: Annotated[list[Stage], Field(min_length=1)]
    environments: list[Environment] = Field(default_factory=list)
    services: list[Service] = Field(default_factory=list)
    # Only the simulated driver reads this (demo, tests, benchmarks).
    simulation: Simulation | None = None
    # The facility's 24/7 operations rotation (the NOC): pages about air-gapped environments
    # reach it too, since only its people have hands on those networks.
    operations: Operations | None = None
    # Where artifacts are found, to be verified before they enter an air-gapped environment.
    artifacts: Artifacts | None = None

    _stage_index: dict[str, int] = PrivateAttr(default_factory=dict)
    _services: dict[str, Service] = PrivateAttr(default_factory=dict)
    _teams: dict[str, Team] = PrivateAttr(default_factory=dict)
    _environments: dict[str, Environment] = PrivateAttr(default_factory=dict)

    def model_post_init(self, context: Any, /) -> None:
        # The engine asks these per upgrade: index once instead of scanning lists.
        self._stage_index = {s.name: i for i, s in enumerate(self.stages)}
        self._services = {s.name: s for s in self.services}
        self._teams = {t.name: t for t in self.teams}
        self._environments = {e.name: e for e in self.environments}

    @model_validator(mode="wrap")
    @classmethod
    def _cross_checks(cls, data: Any, handler: ModelWrapValidatorHandler[Fleet]) -> Fleet:
        # Run the reference checks on the raw input even when fields failed, so one load
        # reports every problem, each with its own location.
        if isinstance(data, Fleet):
            return data
        errors: list[InitErrorDetails] = []
        fleet: Fleet | None = None
        try:
            fleet = handler(data)
        except ValidationError as exc:
            errors = [_reraise(error, data) for error in exc.errors()]
        if isinstance(data, Mapping):
            errors += [
                {"type": PydanticCustomError("reference", message), "loc": loc, "input": None}
                for loc, message in reference_problems(data)
            ]
        if errors:
            raise ValidationError.from_exception_data(cls.__name__, errors)
        assert fleet is not None
        return fleet

    def stage(self, name: str) -> Stage:
        return self.stages[self.stage_index(name)]

    def stage_index(self, name: str) -> int:
        """Position of the stage in the pipeline; KeyError if unknown."""
        return self._stage_index[name]

    def service(self, name: str) -> Service:
        """KeyError if unknown."""
        return self._services[name]

    def team(self, name: str) -> Team:
        """KeyError if unknown."""
        return self._teams[name]

    def environment(self, name: str) -> Environment:
        """KeyError if unknown."""
        return self._environments[name]

    def environments_of(self, service: Service) -> list[Environment]:
        """The environments the service runs in: in stage order, then file order."""
        chosen = [e for e in self.environments if service.runs_in(e)]
        # sorted() is stable, so file order holds within a stage.
        return sorted(chosen, key=lambda e: self._stage_index[e.stage])

    def warnings(self) -> list[str]:
        """What is allowed but unwise: a rotation of more than six people (shifts come round
        so rarely that people lose touch with the systems); a service whose maintenance
        windows never overlap an environment's."""
        found = []
        for index, team in enumerate(self.teams):
            if team.rotations is None:
                continue
            for role in ("primary", "secondary"):
                members = getattr(team.rotations, role).members
                if len(members) > 6:
                    found.append(
                        f"teams[{index}].rotations.{role}: {len(members)} members; more than 6 "
                        "and each comes round too rarely to stay in practice"
                    )
        for index, environment in enumerate(self.environments):
            if not self.air_gapped(environment):
                continue
            unchecked = [
                s.name
                for s in self.services
                if s.runs_in(environment) and self.artifacts_for(s) is None
            ]
            if unchecked:
                names = ", ".join(unchecked[:3])
                if len(unchecked) > 3:
                    names += f" and {len(unchecked) - 3} more"
                found.append(
                    f"environments[{index}]: {environment.name} is air-gapped, but no "
                    f"`artifacts` location is set for {names}: what enters it is not verified"
                )
        # Windows that never overlap hold a service's upgrades in an environment for ever.
        since = datetime(2026, 1, 5, tzinfo=UTC)
        for index, service in enumerate(self.services):
            for environment in self.environments_of(service):
                if not (service.windows and environment.windows):
                    continue
                groups = [[w.window() for w in service.windows]]
                groups.append([w.window() for w in environment.windows])
                if next_open_in_all(groups, since) is None:
                    found.append(
                        f"services[{index}].windows: never overlap the windows of environment "
                        f"{environment.name}; {service.name} would never upgrade there"
                    )
        return found

    def artifacts_for(self, service: Service) -> Artifacts | None:
        return service.artifacts or self.artifacts

    def air_gapped(self, environment: Environment) -> bool:
        return environment.labels.get("air_gapped") == "true"

    def severity_for_stage(self, stage_name: str) -> Severity:
        """The stage's page severity: its own, or P0 last, P2 before last, P3 earlier."""
        index = self.stage_index(stage_name)
        configured = self.stages[index].page_severity
        if configured is not None:
            return configured
        from_end = len(self.stages) - 1 - index
        return "P0" if from_end == 0 else "P2" if from_end == 1 else "P3"


def _reraise(error: Any, data: Any) -> InitErrorDetails:
    """One of the handler's errors, passed on (with a clearer word for an owner-less service)."""
    loc = cast(Loc, tuple(error["loc"]))
    if (
        len(loc) == 3
        and loc[0] == "services"
        and loc[2] == "team"
        and (error["type"] == "missing" or error["input"] is None)
    ):
        name = _get(_get(data, "services", loc[1]), "name")
        shown = repr(name) if isinstance(name, str) else f"#{loc[1]}"
        message = f"service {shown} has no owning team (field `team`)"
        return {"type": PydanticCustomError("no_owner", message), "loc": loc, "input": None}
    details: InitErrorDetails = {"type": error["type"], "loc": loc, "input": error["input"]}
    if "ctx" in error:
        details["ctx"] = error["ctx"]
    try:
        ValidationError.from_exception_data("check", [details])
    except (KeyError, TypeError, ValueError):
        # Not a built-in error type pydantic can rebuild: keep its message as it is.
        custom = PydanticCustomError(error["type"], error["msg"])
        return {"type": custom, "loc": loc, "input": error["input"]}
    return details


# --- reference checks on raw data ----------------------------------------------------------------


def _get(data: object, *keys: str | int) -> object:
    """data[k1][k2]… or None, for input whose shape is not checked yet."""
    for key in keys:
        if isinstance(key, int) and isinstance(data, list) and 0 <= key < len(data):
            data = data[key]
        elif isinstance(key, str) and isinstance(data, Mapping):
            data = data.get(key)
        else:
            return None
    return data


def _items(data: object, key: str) -> Iterator[tuple[int, Mapping[str, Any]]]:
    items = _get(data, key)
    if isinstance(items, list):
        for index, item in enumerate(items):
            if isinstance(item, Mapping):
                yield index, item


def _names(data: object, key: str) -> list[str]:
    return [item["name"] for _, item in _items(data, key) if isinstance(item.get("name"), str)]


def _duplicates(data: object, key: str, what: str, prefix: Loc = ()) -> Iterator[tuple[Loc, str]]:
    first: dict[str, int] = {}
    for index, item in _items(data, key):
        name = item.get("name")
        if not isinstance(name, str):
            continue
        if name in first:
            where = dotted((*prefix, key, first[name]))
            yield (
                (*prefix, key, index, "name"),
                f"duplicate {what} name {name!r} (first at {where})",
            )
        else:
            first[name] = index


def dotted(loc: Loc) -> str:
    """A location as config paths are shown: services[3].gates[0].interval."""
    out = ""
    for step in loc:
        out += f"[{step}]" if isinstance(step, int) else (f".{step}" if out else str(step))
    return out


def _one_of(names: list[str]) -> str:
    return ", ".join(names) if names else "none defined"


def reference_problems(data: Mapping[str, Any]) -> list[tuple[Loc, str]]:
    """Cross-field problems of a raw fleet document: duplicate names, unknown references,
    empty stages. Tolerates malformed parts; the field validation reports those."""
    problems: list[tuple[Loc, str]] = []
    for key, what in (
        ("teams", "team"),
        ("stages", "stage"),
        ("environments", "environment"),
        ("services", "service"),
    ):
        problems += _duplicates(data, key, what)
    teams = _names(data, "teams")
    stages = _names(data, "stages")
    services = _names(data, "services")

    used_stages: set[str] = set()
    for index, environment in _items(data, "environments"):
        stage = environment.get("stage")
        if isinstance(stage, str):
            used_stages.add(stage)
            if stage not in stages:
                problems.append(
                    (
                        ("environments", index, "stage"),
                        f"unknown stage {stage!r} (stages: {_one_of(stages)})",
                    )
                )
    for index, stage in _items(data, "stages"):
        name = stage.get("name")
        if isinstance(name, str) and name not in used_stages:
            problems.append((("stages", index), f"stage {name!r} has no environment"))

    operations = data.get("operations")
    if isinstance(operations, Mapping):
        noc = operations.get("team")
        if isinstance(noc, str) and noc not in teams:
            problems.append(
                (("operations", "team"), f"unknown team {noc!r} (teams: {_one_of(teams)})")
            )

    for index, service in _items(data, "services"):
        name = service.get("name")
        team = service.get("team")
        if isinstance(team, str) and team not in teams:
            problems.append(
                (("services", index, "team"), f"unknown team {team!r} (teams: {_one_of(teams)})")
            )
        problems += _duplicates(service, "gates", "gate", ("services", index))
        requires = service.get("requires")
        if isinstance(requires, list):
            for position, requirement in enumerate(requires):
                other = _required_service(requirement)
                loc: Loc = ("services", index, "requires", position)
                if other is None:
                    continue
                if other == name:
                    problems.append((loc, f"service {name!r} cannot require itself"))
                elif other not in services:
                    problems.append(
                        (loc, f"unknown service {other!r} (services: {_one_of(services)})")
                    )

    for index, fault in _items(_get(data, "simulation"), "faults"):
        target = fault.get("service")
        if isinstance(target, str) and target != "*" and target not in services:
            problems.append(
                (
                    ("simulation", "faults", index, "service"),
                    f'unknown service {target!r} (use a service name or "*")',
                )
            )
    return problems


def _required_service(requirement: object) -> str | None:
    if isinstance(requirement, str):
        match = _REQUIREMENT.fullmatch(requirement)
        return match.group(1) if match else None
    service = _get(requirement, "service")
    return service if isinstance(service, str) else None
