"""The API's wire format: strict request bodies, and the views that responses, the remote
CLI and the local CLI share (operational data only: never an environment's payload). Topics
too big for this module have their own beside it (`rollout.api.schemas.<topic>`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from rollout.api.schemas.base import (
    DIGEST_PATTERN,
    Digest,
    Name,
    Note,
    Strict,
    Version,
)
from rollout.api.schemas.history import EventView
from rollout.store.tokens import NOTE_MAX, Scope

__all__ = ["DIGEST_PATTERN", "Digest", "Name", "Note", "Strict", "Version"]


class ErrorOut(Strict):
    detail: str = Field(description="what was wrong, in one line")


class SubmitIn(Strict):
    service: Name
    version: Version
    digest: Digest | None = Field(default=None, description="the artifact's sha256:<64 hex>")


class SubmittedOut(Strict):
    release_id: int
    rollout_id: int
    service: str
    version: str
    digest: str | None
    created: bool = Field(description="false: this release was submitted before")
    superseded: list[int] = Field(description="older rollouts this one supersedes")


class RolloutSummary(Strict):
    id: int
    service: str
    version: str
    team: str
    state: str
    stage: str
    done: int
    total: int
    reason: str | None
    created_at: datetime = Field(description="when it was submitted")
    updated_at: datetime


class RolloutList(Strict):
    rollouts: list[RolloutSummary]


class StageView(Strict):
    name: str
    soak_s: float
    promote_share: float


class ReleaseView(Strict):
    id: int
    state: str
    digest: str | None
    reason: str | None
    submitted_at: datetime


class GateView(Strict):
    """A gate's last measurement in one environment: the value and the condition held."""

    name: str
    metric: str | None = Field(description="what was measured (error_rate, status); null: none")
    value: float | None = Field(description="the last measured number; null: not a number")
    observed: str | None = Field(description="the measurement as taken: 'error_rate 0.071'")
    condition: str = Field(description="the condition it was held against: error_rate < 0.05")
    outcome: str
    taken: int
    failures: int
    errors: int
    last_at: datetime


class RolloutGate(Strict):
    """A gate of a rollout's plan: what it measures and the conditions it holds."""

    name: str
    type: str
    query: str | None = Field(description="a Prometheus gate's query; never a URL")
    success_condition: str | None
    failure_condition: str | None


class UpgradeView(Strict):
    id: int
    environment: str
    stage_index: int
    stage: str
    state: str
    from_version: str | None
    to_version: str
    reason: str | None
    hold_reason: str | None
    gates: list[GateView]
    hold_kind: str | None = Field(
        default=None, description="why it waits, as a kind: stage, window, freeze, dependency…"
    )


class DeliveryView(Strict):
    """How one of the team's channels took one action on a page (trigger, acknowledge…)."""

    channel: str = Field(description="the channel, by position and type: 0:webhook")
    action: str
    state: str
    attempts: int


class PageView(Strict):
    id: int
    team: str
    severity: str
    kind: str
    state: str
    rollout_id: int
    service: str
    version: str
    environment: str
    stage: str
    gate: str | None
    detail: str
    summary: str
    created_at: datetime
    recipient: str | None = Field(default=None, description="who was on call; null: the team")
    role: str | None = Field(default=None, description="primary or secondary")
    deliveries: list[DeliveryView] = Field(default_factory=list)


class PageList(Strict):
    pages: list[PageView]


class RolloutDetailView(Strict):
    id: int
    service: str
    version: str
    team: str
    state: str
    reason: str | None
    stage_index: int
    stages: list[StageView]
    release: ReleaseView
    upgrades: list[UpgradeView]
    pages: list[PageView]
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    gates: list[RolloutGate] = Field(
        default_factory=list, description="the gates of its plan: what each measures, once"
    )
    soak_ends_at: datetime | None = Field(
        default=None, description="the current stage passed and soaks until then"
    )
    actions: list[EventView] = Field(
        default_factory=list, description="what people did to it: who, when, why; oldest first"
    )


class Installed(Strict):
    service: str
    version: str
    updated_at: datetime


class EnvironmentView(Strict):
    name: str
    stage: str | None = Field(description="null: not in the fleet config any more")
    installed: list[Installed]


class EnvironmentList(Strict):
    environments: list[EnvironmentView]


class GateInfo(Strict):
    name: str
    type: str


class ServicePlacement(Strict):
    environment: str
    stage: str
    version: str | None = Field(description="installed and healthy; null: none known")


class ServiceView(Strict):
    name: str
    team: str
    gates: list[GateInfo]
    requires: list[str]
    environments: list[ServicePlacement]
    rollouts: list[RolloutSummary] = Field(description="the newest ten")


class ServiceBrief(Strict):
    name: str
    team: str


class ServiceList(Strict):
    services: list[ServiceBrief]


class MisroutedIn(Strict):
    kind: Literal["misrouted"]
    team: Name = Field(description="the team the page belongs to")
    note: Note | None = None


class NotActionableIn(Strict):
    kind: Literal["not_actionable"]
    note: Note | None = None


FeedbackIn = Annotated[MisroutedIn | NotActionableIn, Field(discriminator="kind")]


class PipelineTokenIn(Strict):
    scope: Literal[Scope.PIPELINE]
    services: Annotated[list[Name], Field(min_length=1, max_length=200)]
    note: Note | None = None


class TeamTokenIn(Strict):
    scope: Literal[Scope.TEAM]
    team: Name
    note: Note | None = None


class WideTokenIn(Strict):
    scope: Literal[Scope.OPERATOR, Scope.ADMIN]
    note: Note | None = None


class AgentTokenIn(Strict):
    scope: Literal[Scope.AGENT]
    environments: Annotated[list[Name], Field(min_length=1, max_length=200)]
    note: Note | None = None


# Each scope's grant in the document itself: a pipeline names services, a team its team, an
# agent its environments.
TokenIn = Annotated[
    PipelineTokenIn | TeamTokenIn | WideTokenIn | AgentTokenIn, Field(discriminator="scope")
]


class TokenView(Strict):
    id: int
    scope: Scope
    services: list[str]
    team: str | None
    note: str | None
    created_at: datetime
    revoked_at: datetime | None
    environments: list[str] = Field(default_factory=list, description="an agent token's")


class TokenList(Strict):
    tokens: list[TokenView]


class TokenCreated(Strict):
    token: TokenView
    secret: str = Field(description="shown once: only its hash is kept")


class SteerIn(Strict):
    reason: Annotated[str, StringConstraints(min_length=1, max_length=NOTE_MAX)] | None = Field(
        default=None, description="why: recorded on the rollout (pause, abort) or upgrades"
    )


class SteeredOut(Strict):
    rollout_id: int = Field(description="the rollout the action leaves; for retry, the new one")
    state: str
    changed: bool = Field(description="false: nothing to do, it was so already")
    message: str
    retried_from: int | None = Field(default=None, description="retry: the failed rollout")


class Health(Strict):
    status: Literal["ok"]


class Readiness(Strict):
    status: Literal["ready", "not ready"]
    database: str
    broker: str


class AssignmentOut(Strict):
    member: str
    role: str
    reason: str


class OnCallOut(Strict):
    team: str
    at: datetime
    primary: AssignmentOut
    secondary: AssignmentOut


class RecallIn(Strict):
    service: Name
    version: Version
    reason: Annotated[str, StringConstraints(min_length=1, max_length=NOTE_MAX)] | None = None


class RecalledOut(Strict):
    release_id: int
    changed: bool = Field(description="false: it was recalled already")
    rolling_off: list[str] = Field(description="environments going back to their last good version")
    message: str


FreezeKind = Literal["environment", "service"]


# Whole units, largest first, each at most once: 2h, 1h30m, 1d12h.
FREEZE_DURATION_PATTERN = r"^(\d{1,6}d)?(\d{1,6}h)?(\d{1,6}m)?(\d{1,6}s)?$"


class FreezeIn(Strict):
    target: Name = Field(description="an environment or a service of the fleet")
    until: (
        datetime | Annotated[str, StringConstraints(min_length=2, pattern=FREEZE_DURATION_PATTERN)]
    ) = Field(description="an ISO time (UTC when it names no zone) or a duration: 2h, 1h30m")
    reason: Annotated[str, StringConstraints(max_length=500, pattern=r"\S")]
    kind: FreezeKind | None = Field(
        default=None, description="only when the name is both an environment and a service"
    )


class FreezeOut(Strict):
    kind: FreezeKind
    target: str
    until: datetime
    reason: str
    created_at: datetime
    message: str


class FreezeList(Strict):
    freezes: list[FreezeOut]


class UnfrozenOut(Strict):
    changed: bool = Field(description="false: it was not frozen")
    message: str


class AnsweredOut(PageView):
    """A page after feedback; a misroute also names the page it opened for the right team."""

    repaged: PageView | None = Field(default=None, description="misrouted: the new page")


class OverrideIn(Strict):
    member: Annotated[str, StringConstraints(min_length=1, max_length=64)] = Field(
        description="who covers: a member of the team"
    )
    starts_at: datetime = Field(description="ISO 8601 with a zone")
    ends_at: datetime = Field(description="ISO 8601 with a zone, after starts_at")
    role: Literal["primary", "secondary"] = "primary"
    replaces: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = Field(
        default=None, description="only while this member would be on call"
    )


class OverrideOut(Strict):
    id: int
    team: str
    member: str
    role: str
    replaces: str | None
    starts_at: datetime
    ends_at: datetime


# A median or a budget is a float, but may have been computed as an int: kept as it came, so
# the report's JSON reads the same locally and through the API.
Number = int | float


class HygieneTeam(Strict):
    team: str
    pages: int
    night_pages: int
    acknowledged: int
    median_ack_seconds: Number | None
    misrouted: int
    misroute_rate: Number
    not_actionable: int
    false_positive_rate: Number
    night_budget: Number
    zone_assumed: int = Field(description="pages whose night was judged in a fallback zone")


class HygieneGate(Strict):
    service: str
    gate: str
    pages: int
    night_pages: int
    acknowledged: int
    median_ack_seconds: Number | None
    misrouted: int
    misroute_rate: Number
    not_actionable: int
    false_positive_rate: Number


class HygieneFinding(Strict):
    kind: str
    subject: str
    message: str


class HygieneOut(Strict):
    """What paging cost each team and gate over a window, and the anti-patterns it shows."""

    since: datetime
    until: datetime
    night_budget_per_week: Number
    teams: list[HygieneTeam]
    gates: list[HygieneGate]
    findings: list[HygieneFinding]
    notes: list[str]
