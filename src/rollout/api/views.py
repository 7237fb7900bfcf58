"""What engine operations answer, turned into the read models the API and the CLI share."""

from __future__ import annotations

from datetime import UTC, datetime

from rollout.api.schemas import (
    AssignmentOut,
    FreezeOut,
    OnCallOut,
    OverrideOut,
    RecalledOut,
    SteeredOut,
    TokenView,
)
from rollout.domain.oncall import Assignment, OnCall
from rollout.engine.freezes import FreezeView
from rollout.engine.recall import Recalled
from rollout.engine.steering import Steered
from rollout.store.models import Override
from rollout.store.tokens import TokenInfo


def steered_out(done: Steered) -> SteeredOut:
    return SteeredOut(
        rollout_id=done.rollout_id,
        state=done.state,
        changed=done.changed,
        message=done.message,
        retried_from=done.retried_from,
    )


def recalled_out(done: Recalled) -> RecalledOut:
    return RecalledOut(
        release_id=done.release_id,
        changed=done.changed,
        rolling_off=list(done.rolling_off),
        message=done.message,
    )


def freeze_out(view: FreezeView) -> FreezeOut:
    kind = "service" if view.kind == "service" else "environment"
    return FreezeOut(
        kind=kind,
        target=view.target,
        until=view.until,
        reason=view.reason,
        created_at=view.created_at,
        message=view.message,
    )


def oncall_out(team: str, on_call: OnCall, at: datetime) -> OnCallOut:
    return OnCallOut(
        team=team,
        # Served in UTC as every other time, whatever offset the question was asked in.
        at=at.astimezone(UTC),
        primary=assignment_out(on_call.primary),
        secondary=assignment_out(on_call.secondary),
    )


def assignment_out(assignment: Assignment) -> AssignmentOut:
    return AssignmentOut(
        member=assignment.member.name, role=str(assignment.role), reason=assignment.reason
    )


def override_out(row: Override) -> OverrideOut:
    return OverrideOut(
        id=row.id,
        team=row.team,
        member=row.member,
        role=row.role,
        replaces=row.replaces,
        starts_at=row.starts_at,
        ends_at=row.ends_at,
    )


def token_view(info: TokenInfo) -> TokenView:
    return TokenView(
        id=info.id,
        scope=info.scope,
        services=list(info.services),
        team=info.team,
        note=info.note,
        created_at=info.created_at,
        revoked_at=info.revoked_at,
        environments=list(info.environments),
    )
