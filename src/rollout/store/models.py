"""The tables: the database is the source of truth for releases, rollouts, upgrades, gate
results, installed versions, pages and every wait (a row with a due time)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import JsonValue, TypeAdapter
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from rollout.plan import Plan
from rollout.plan.channels import CHANNEL_SPECS, ChannelSpec
from rollout.plan.driver import CommandDriverSpec, DriverSpec, HttpDriverSpec, SimulatedDriverSpec

# The states in which a rollout may start upgrades (RUNNING, PAUSED): at most one per service.
LIVE_ROLLOUT = "state IN ('running', 'paused')"


class UTCDateTime(TypeDecorator[datetime]):
    """Stored as naive UTC (SQLite has no time zones), always handed out aware."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use aware UTC")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class PlanType(TypeDecorator[Plan]):
    """A rollout's plan: stored as the JSON it dumps to, handed out validated as a Plan."""

    impl = JSON
    cache_ok = True

    def process_bind_param(
        self, value: Plan | None, dialect: Dialect
    ) -> dict[str, JsonValue] | None:
        if value is None:
            return None
        if not isinstance(value, Plan):  # a dict would skip the contract's checks
            raise TypeError(f"a rollout's plan is a Plan, not {type(value).__name__}")
        return value.model_dump(mode="json")

    def process_result_value(self, value: Any, dialect: Dialect) -> Plan | None:
        return None if value is None else Plan.model_validate(value)


_DRIVER_SPEC: TypeAdapter[DriverSpec] = TypeAdapter(DriverSpec)


class DriverType(TypeDecorator[DriverSpec]):
    """An upgrade's driver spec: stored as JSON, handed out validated as its type's spec."""

    impl = JSON
    cache_ok = True

    def process_bind_param(
        self, value: DriverSpec | None, dialect: Dialect
    ) -> dict[str, JsonValue] | None:
        if value is None:
            return None
        if not isinstance(value, SimulatedDriverSpec | CommandDriverSpec | HttpDriverSpec):
            raise TypeError(f"an upgrade's driver is a DriverSpec, not {type(value).__name__}")
        return value.model_dump(mode="json")

    def process_result_value(self, value: Any, dialect: Dialect) -> DriverSpec | None:
        return None if value is None else _DRIVER_SPEC.validate_python(value)


_CHANNEL_SPEC: TypeAdapter[ChannelSpec] = TypeAdapter(ChannelSpec)
# Not channel settings, kept beside them in the row's JSON: whom the delivery was written for
# and whom a Slack message mentions.
_RECIPIENT = "_recipient"
_MENTION = "_mention"


@dataclass(frozen=True, kw_only=True)
class DeliveryChannel:
    """A delivery's channel: the team's channel as it was when the page was written, and
    whom this delivery was written for (an escalation renames the page's recipient, and a
    trigger still retrying must not take the next person's name, nor their resend key)."""

    spec: ChannelSpec
    recipient: str | None
    mention: str | None = None  # a Slack member id or handle, as Slack writes a mention
    # Rows written before the recipient was kept name none: the page's own is meant.
    recipient_kept: bool = True


class DeliveryChannelType(TypeDecorator[DeliveryChannel]):
    """Stored as the channel spec's JSON with `_recipient` and `_mention` beside its fields,
    the shape rows had when they were plain JSON; handed out validated."""

    impl = JSON
    cache_ok = True

    def process_bind_param(
        self, value: DeliveryChannel | None, dialect: Dialect
    ) -> dict[str, JsonValue] | None:
        if value is None:
            return None
        if not isinstance(value, DeliveryChannel) or not isinstance(value.spec, CHANNEL_SPECS):
            raise TypeError(f"a delivery's channel is a DeliveryChannel, not {value!r}")
        stored: dict[str, JsonValue] = value.spec.model_dump(mode="json")
        if value.recipient_kept:
            stored[_RECIPIENT] = value.recipient
        if value.mention is not None:
            stored[_MENTION] = value.mention
        return stored

    def process_result_value(self, value: Any, dialect: Dialect) -> DeliveryChannel | None:
        if value is None:
            return None
        fields = dict(value)
        kept = _RECIPIENT in fields
        return DeliveryChannel(
            recipient=fields.pop(_RECIPIENT, None),
            mention=fields.pop(_MENTION, None),
            recipient_kept=kept,
            spec=_CHANNEL_SPEC.validate_python(fields),
        )


NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Release(Base):
    __tablename__ = "releases"
    __table_args__ = (UniqueConstraint("service", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    service: Mapped[str] = mapped_column(String(63))
    version: Mapped[str] = mapped_column(String(64))
    digest: Mapped[str | None] = mapped_column(String(71))
    state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Rollout(Base):
    __tablename__ = "rollouts"

    id: Mapped[int] = mapped_column(primary_key=True)
    release_id: Mapped[int] = mapped_column(ForeignKey("releases.id"), index=True)
    service: Mapped[str] = mapped_column(String(63), index=True)
    version: Mapped[str] = mapped_column(String(64))
    team: Mapped[str] = mapped_column(String(63))
    state: Mapped[str] = mapped_column(String(16))
    stage_index: Mapped[int] = mapped_column(Integer, default=0)
    stage_passed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The stages, gates and page severities as they were at submit: a config change
    # never alters a rollout in flight, and workers need no config file.
    plan: Mapped[Plan] = mapped_column(PlanType)
    reason: Mapped[str | None] = mapped_column(Text)
    # When the ticker should plan this rollout again (a soak ends, or a nudge was lost).
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The W3C traceparent of the span that submitted it: every step of the rollout, in
    # whichever worker and however much later, starts its span as a child of this one.
    traceparent: Mapped[str | None] = mapped_column(String(55))

    # One live rollout per service, whatever the timing of submissions: the database refuses
    # a second, so the newest accepted release always supersedes every older one.
    __table_args__ = (
        Index(
            "ux_rollouts_one_live_per_service",
            "service",
            unique=True,
            postgresql_where=text(LIVE_ROLLOUT),
            sqlite_where=text(LIVE_ROLLOUT),
        ),
    )


class Upgrade(Base):
    __tablename__ = "upgrades"
    __table_args__ = (Index("ix_upgrades_service_environment", "service", "environment"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    rollout_id: Mapped[int] = mapped_column(ForeignKey("rollouts.id"), index=True)
    service: Mapped[str] = mapped_column(String(63))
    environment: Mapped[str] = mapped_column(String(63))
    stage_index: Mapped[int] = mapped_column(Integer)
    stage: Mapped[str] = mapped_column(String(63))
    from_version: Mapped[str | None] = mapped_column(String(64))
    to_version: Mapped[str] = mapped_column(String(64))
    driver: Mapped[DriverSpec] = mapped_column(DriverType)
    state: Mapped[str] = mapped_column(String(20))
    # Why a pending upgrade waits: what people read, and the kind and subject (a HoldKind;
    # the stage, service, environment or rollout it waits for) that wakes are matched on.
    hold_reason: Mapped[str | None] = mapped_column(Text)
    hold_kind: Mapped[str | None] = mapped_column(String(16))
    hold_subject: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str | None] = mapped_column(Text)
    # Every claim of this row bumps it; a step whose claim is stale does nothing.
    claim: Mapped[int] = mapped_column(Integer, default=0)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    deploy_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    verify_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    rollback_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Measurement(Base):
    """One gate measurement: the value taken and the condition it was held against."""

    __tablename__ = "measurements"

    id: Mapped[int] = mapped_column(primary_key=True)
    upgrade_id: Mapped[int] = mapped_column(ForeignKey("upgrades.id"), index=True)
    gate: Mapped[str] = mapped_column(String(63))
    taken_at: Mapped[datetime] = mapped_column(UTCDateTime)
    outcome: Mapped[str] = mapped_column(String(16))
    value: Mapped[str | None] = mapped_column(Text)
    condition: Mapped[str] = mapped_column(Text)
    message: Mapped[str] = mapped_column(Text)


class ArtifactCheck(Base):
    """The verdict on an upgrade's artifact before it entered an air-gapped environment:
    recorded once, so a redelivered step never checks or scans it again."""

    __tablename__ = "artifact_checks"

    upgrade_id: Mapped[int] = mapped_column(ForeignKey("upgrades.id"), primary_key=True)
    admitted: Mapped[bool] = mapped_column(Boolean)
    reason: Mapped[str] = mapped_column(Text)
    digest: Mapped[str | None] = mapped_column(String(71))  # what the artifact hashed to
    size: Mapped[int | None] = mapped_column(BigInteger)
    scanner_exit: Mapped[int | None] = mapped_column(Integer)
    scanner_output: Mapped[str | None] = mapped_column(Text)  # its tail, at most 64 KiB
    checked_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Installation(Base):
    """The version of a service the engine knows to be healthy in an environment."""

    __tablename__ = "installations"

    environment: Mapped[str] = mapped_column(String(63), primary_key=True)
    service: Mapped[str] = mapped_column(String(63), primary_key=True)
    version: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Page(Base):
    """A page to the owning team, written in the transaction that records the failure."""

    __tablename__ = "pages"

    id: Mapped[int] = mapped_column(primary_key=True)
    dedup_key: Mapped[str] = mapped_column(String(255), unique=True)
    team: Mapped[str] = mapped_column(String(63), index=True)
    severity: Mapped[str] = mapped_column(String(2))
    kind: Mapped[str] = mapped_column(String(16))
    rollout_id: Mapped[int] = mapped_column(ForeignKey("rollouts.id"), index=True)
    upgrade_id: Mapped[int] = mapped_column(ForeignKey("upgrades.id"))
    service: Mapped[str] = mapped_column(String(63))
    version: Mapped[str] = mapped_column(String(64))
    environment: Mapped[str] = mapped_column(String(63))
    stage: Mapped[str] = mapped_column(String(63))
    gate: Mapped[str | None] = mapped_column(String(63))
    detail: Mapped[str] = mapped_column(Text)  # what was measured, against what condition
    summary: Mapped[str] = mapped_column(Text)  # the page's whole text
    state: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Who was on call when it was written, and in which role (primary, secondary).
    recipient: Mapped[str | None] = mapped_column(String(64))
    role: Mapped[str | None] = mapped_column(String(16))
    # The escalation timer: when an unacknowledged page goes to the next target.
    escalate_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    escalations: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class ApiToken(Base):
    """A bearer token of the HTTP API: only its hash is kept, the secret is shown once."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    # sha256 of the secret, hex: the secret is high-entropy, so no salt or slow hash is needed.
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scope: Mapped[str] = mapped_column(String(16))
    services: Mapped[list[str]] = mapped_column(JSON)  # pipeline tokens: what they may submit
    team: Mapped[str | None] = mapped_column(String(63))  # team tokens: whose data they see
    # Agent tokens: the environments whose desired versions they read and report on.
    environments: Mapped[list[str] | None] = mapped_column(JSON)
    note: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class PageEvent(Base):
    """What a person did with a page (acknowledged, resolved, feedback), by which token."""

    __tablename__ = "page_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    page_id: Mapped[int] = mapped_column(ForeignKey("pages.id"), index=True)
    action: Mapped[str] = mapped_column(String(20))
    misrouted_to: Mapped[str | None] = mapped_column(String(63))
    note: Mapped[str | None] = mapped_column(Text)
    # Who acted: a token of the API, or (token_id empty) the CLI's user on its host.
    token_id: Mapped[int | None] = mapped_column(ForeignKey("api_tokens.id"))
    actor: Mapped[str | None] = mapped_column(String(100))
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class Delivery(Base):
    """The outbox: one row per page, channel and action, written with the page and sent by
    workers; a row due again after a failure or a lost worker is the retry."""

    __tablename__ = "deliveries"
    __table_args__ = (UniqueConstraint("page_id", "channel", "action"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    page_id: Mapped[int] = mapped_column(ForeignKey("pages.id"), index=True)
    channel: Mapped[str] = mapped_column(String(63))  # the team's channel, by position and type
    # The channel's config as it was when the page was written (secrets by reference only):
    # a misrouted page re-sent to another team goes through that team's channels.
    channel_spec: Mapped[DeliveryChannel | None] = mapped_column(DeliveryChannelType)
    action: Mapped[str] = mapped_column(String(16))  # trigger | acknowledge | resolve
    state: Mapped[str] = mapped_column(String(16))  # pending | delivered | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    claim: Mapped[int] = mapped_column(Integer, default=0)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Override(Base):
    """Someone covers a team's rotation for a while; set from the CLI, wins over the rota."""

    __tablename__ = "overrides"

    id: Mapped[int] = mapped_column(primary_key=True)
    team: Mapped[str] = mapped_column(String(63), index=True)
    role: Mapped[str] = mapped_column(String(16))  # primary | secondary
    member: Mapped[str] = mapped_column(String(64))
    timezone: Mapped[str] = mapped_column(String(64))  # the member's, for the rest rule
    replaces: Mapped[str | None] = mapped_column(String(64))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AgentDeployment(Base):
    """A deploy the engine wants in a pull-mode environment: its agent reads the running ones
    (`GET /v1/agents/{environment}/desired`) and reports each outcome; nothing calls in."""

    __tablename__ = "agent_deployments"
    __table_args__ = (Index("ix_agent_deployments_environment_phase", "environment", "phase"),)

    key: Mapped[str] = mapped_column(String(100), primary_key=True)  # the idempotency key
    environment: Mapped[str] = mapped_column(String(63))
    service: Mapped[str] = mapped_column(String(63))
    version: Mapped[str | None] = mapped_column(String(64))  # None: remove the service
    phase: Mapped[str] = mapped_column(String(16))  # running | succeeded | failed
    message: Mapped[str | None] = mapped_column(Text)
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime)
    reported_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The service's health as the agent last reported it, on its newest succeeded deploy.
    health: Mapped[str | None] = mapped_column(String(16))
    health_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Freeze(Base):
    """Nothing new starts in an environment, or of a service, until a time; set by an
    operator, read by every plan."""

    __tablename__ = "freezes"

    kind: Mapped[str] = mapped_column(String(16), primary_key=True)  # environment | service
    target: Mapped[str] = mapped_column(String(63), primary_key=True)
    until: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Event(Base):
    """One line of the audit trail: who (a token, or a local user) did what, when and why;
    written in the transaction of the action itself, so it exists exactly if the action
    happened. Never a secret."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    actor: Mapped[str] = mapped_column(String(255))  # "token 3 (ci deploy)", "local:alice"
    token_id: Mapped[int | None] = mapped_column(ForeignKey("api_tokens.id"))
    action: Mapped[str] = mapped_column(String(32))  # an Act
    # What it was about, as far as it names one: for the filters and a team token's view.
    service: Mapped[str | None] = mapped_column(String(63), index=True)
    rollout_id: Mapped[int | None] = mapped_column(ForeignKey("rollouts.id"), index=True)
    team: Mapped[str | None] = mapped_column(String(63))
    subject: Mapped[str | None] = mapped_column(String(255))  # an environment, a page, a token
    message: Mapped[str] = mapped_column(Text)  # what the action did, in one line
    reason: Mapped[str | None] = mapped_column(Text)  # why, as the actor gave it
