"""The plan: what submission hands a rollout's workers, frozen and typed (version 1)."""

from __future__ import annotations

from datetime import date, time, timedelta
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from rollout.plan.channels import ChannelSpec

# The JSON a row carries keeps the key names of the untyped snapshots before it (`soak_s`,
# `interval_s`…): rows written then validate once the migration filled in what they lack.

Severity = Literal["P0", "P1", "P2", "P3", "P4"]
NoDataPolicy = Literal["error", "fail", "pass", "inconclusive"]
Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


class _Spec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _seconds(value: float) -> timedelta:
    return timedelta(seconds=value)


class StageSpec(_Spec):
    name: str
    soak_s: float
    promote_share: float
    parallelism: int | None
    parallelism_percent: float | None
    severity: Severity

    @property
    def soak(self) -> timedelta:
        return _seconds(self.soak_s)


class _GateSpec(_Spec):
    name: str
    initial_delay_s: float
    interval_s: float
    failure_limit: int
    inconclusive_limit: int
    consecutive_error_limit: int
    consecutive_successes: int | None
    dry_run: bool

    @property
    def initial_delay(self) -> timedelta:
        return _seconds(self.initial_delay_s)

    @property
    def interval(self) -> timedelta:
        return _seconds(self.interval_s)


class SoakGateSpec(_GateSpec):
    type: Literal["soak"]
    count: int  # derived from duration and interval when the config was read
    duration_s: float


class PrometheusGateSpec(_GateSpec):
    type: Literal["prometheus"]
    count: int | None
    url: str
    query: str
    success_condition: str | None
    failure_condition: str | None
    value_name: str
    no_data: NoDataPolicy
    nan: NoDataPolicy
    timeout_s: float


class WebhookGateSpec(_GateSpec):
    type: Literal["webhook"]
    count: int | None
    url: str | None
    # The names of the variables holding secrets: their values never enter the plan.
    url_env: str | None
    token_env: str | None
    timeout_s: float


class HttpGateSpec(_GateSpec):
    type: Literal["http"]
    count: int | None
    url: str
    method: Literal["GET", "HEAD", "POST"]
    expect_status: tuple[int, ...]
    success_condition: str | None
    failure_condition: str | None
    no_data: NoDataPolicy
    timeout_s: float


GateSpec = Annotated[
    SoakGateSpec | PrometheusGateSpec | WebhookGateSpec | HttpGateSpec,
    Field(discriminator="type"),
]


class MemberSpec(_Spec):
    name: str
    timezone: str
    email: str | None
    slack: str | None


class RotationMember(_Spec):
    name: str
    timezone: str


class RotationSpec(_Spec):
    members: tuple[RotationMember, ...]
    shift_s: float
    handoff: time
    start: date
    timezone: str

    @property
    def shift(self) -> timedelta:
        return _seconds(self.shift_s)


class RotationsSpec(_Spec):
    primary: RotationSpec
    secondary: RotationSpec


class EscalationStep(_Spec):
    to: Literal["secondary", "team"]
    after_s: float

    @property
    def after(self) -> timedelta:
        return _seconds(self.after_s)


class PagingSpec(_Spec):
    """Who is on call for a team and how pages reach them; secrets stay references."""

    team: str
    members: tuple[MemberSpec, ...]
    rotations: RotationsSpec | None
    escalation: tuple[EscalationStep, ...]
    channels: tuple[ChannelSpec, ...]

    def member(self, name: str | None) -> MemberSpec | None:
        return next((m for m in self.members if m.name == name), None)


class ScannerSpec(_Spec):
    command: tuple[str, ...]
    timeout_s: float


class ArtifactsSpec(_Spec):
    """Where the artifact is and how it is scanned before it enters an air-gapped place."""

    path: str | None
    url: str | None
    max_bytes: int
    timeout_s: float
    scanner: ScannerSpec | None


class WindowSpec(_Spec):
    days: tuple[Day, ...]
    start: time
    end: time
    zone: str


class WindowsSpec(_Spec):
    service: tuple[WindowSpec, ...]
    environments: dict[str, tuple[WindowSpec, ...]]  # only those that have windows


class RequirementSpec(_Spec):
    service: str
    op: Literal[">=", ">", "==", "<=", "<", "!="]
    version: str


class Plan(_Spec):
    """A rollout's stages, gates and paging as they were at submit: a config change never
    alters a rollout in flight, and workers need no config file."""

    version: Literal[1]
    stages: tuple[StageSpec, ...]
    gates: tuple[GateSpec, ...]
    environments: tuple[str, ...]
    paging: PagingSpec
    air_gapped: tuple[str, ...]
    operations: PagingSpec | None  # the NOC, paged too for air-gapped environments
    artifacts: ArtifactsSpec | None
    # What decides when an upgrade may start, so workers plan without the config.
    windows: WindowsSpec
    requires: tuple[RequirementSpec, ...]

    def stage(self, name: str) -> StageSpec:
        for stage in self.stages:
            if stage.name == name:
                return stage
        raise KeyError(name)
