"""Stages and environments: deploy drivers, secret references, maintenance windows, selectors."""

from __future__ import annotations

import math
import re
from datetime import time, timedelta
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    field_validator,
    model_validator,
)

from rollout.config.base import (
    COMMAND_PLACEHOLDERS,
    ConfigModel,
    Labels,
    Name,
    Severity,
    check_placeholders,
)
from rollout.config.teams import Member
from rollout.domain.constraints import DAYS, Window
from rollout.durations import Duration, PositiveDuration
from rollout.secrets import SecretRef


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


class Stage(ConfigModel):
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


class SimulatedDriver(ConfigModel):
    type: Literal["simulated"]
    poll_interval: PositiveDuration = timedelta(seconds=1)
    deploy_timeout: PositiveDuration = timedelta(minutes=10)


def check_argv(value: list[str], allowed: tuple[str, ...]) -> list[str]:
    for argument in value:
        check_placeholders(argument, allowed, "command")
    if not value[0].strip():
        raise ValueError("the program (a command's first element) must not be empty")
    return value


def _deploy_argv(value: list[str]) -> list[str]:
    return check_argv(value, COMMAND_PLACEHOLDERS)


def _remove_argv(value: list[str]) -> list[str]:
    return check_argv(value, ("service", "environment", "key"))


def _health_argv(value: list[str]) -> list[str]:
    return check_argv(value, ("service", "environment"))


DeployArgv = Annotated[list[str], Field(min_length=1), AfterValidator(_deploy_argv)]
RemoveArgv = Annotated[list[str], Field(min_length=1), AfterValidator(_remove_argv)]
HealthArgv = Annotated[list[str], Field(min_length=1), AfterValidator(_health_argv)]


class CommandDriver(ConfigModel):
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


AGENT_URL_PLACEHOLDERS: tuple[str, ...] = ("environment",)


def _check_agent_url(value: str) -> str:
    if not re.match(r"https?://", value):
        raise ValueError(f"url {value!r} must start with http:// or https://")
    return check_placeholders(value, AGENT_URL_PLACEHOLDERS, "url")


class HttpDriver(ConfigModel):
    """An environment's `rollout agent` applies versions. `push`: the orchestrator calls the
    agent's API; `pull`: the agent polls the orchestrator's API (an air-gapped network takes
    no inbound calls), so the engine only records what it wants and reads what was reported."""

    type: Literal["http"]
    mode: Literal["push", "pull"] = "push"
    # The agent's base URL (push only); placeholder {environment}.
    url: Annotated[str, AfterValidator(_check_agent_url)] | None = None
    # Sent as `Authorization: Bearer …` to a push agent; read on the worker at each call.
    token: SecretRef | None = None
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


Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def _clock(value: object) -> object:
    # YAML 1.1 reads an unquoted 16:00 as the base-60 number 960: refuse it, never guess.
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise ValueError(
            f'a time of day must be a quoted string "HH:MM": YAML read the number {value!r}'
        )
    return value


class MaintenanceWindow(ConfigModel):
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


class Environment(ConfigModel):
    name: Name
    stage: Name
    driver: Driver
    labels: Labels = Field(default_factory=dict)
    # Upgrades start only inside one of these; none: always open.
    windows: list[MaintenanceWindow] = Field(default_factory=list)


class EnvironmentSelector(ConfigModel):
    labels: Labels = Field(default_factory=dict)

    def matches(self, environment: Environment) -> bool:
        return all(environment.labels.get(k) == v for k, v in self.labels.items())
