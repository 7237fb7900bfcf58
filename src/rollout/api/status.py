"""The status read: a rollout's state, its holds and when each clears by itself (the live
constraints, not the text), judged against the caller's deadline."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from rollout.api.schemas.status import HoldView, RolloutStatus, VerdictView
from rollout.domain.holds import Hold, HoldKind
from rollout.domain.states import RolloutState, UpgradeState
from rollout.domain.verdict import TIMED, HeldUpgrades, Judgement, Progress, judge
from rollout.engine.progress import constraints_of
from rollout.store.models import Rollout, Upgrade


@dataclass(frozen=True)
class Owner:
    team: str
    service: str


def rollout_owner(session: Session, rollout_id: int) -> Owner | None:
    """Whose rollout it is (team and service); None if there is no such rollout."""
    row = session.execute(
        select(Rollout.team, Rollout.service).where(Rollout.id == rollout_id)
    ).first()
    return None if row is None else Owner(row.team, row.service)


def release_rollout(session: Session, service: str, version: str) -> int | None:
    """The newest rollout of a release (a retry opens a new one); None if never submitted."""
    return session.scalar(
        select(Rollout.id)
        .where(Rollout.service == service, Rollout.version == version)
        .order_by(Rollout.id.desc())
        .limit(1)
    )


def _held(
    session: Session, rollout: Rollout, pending: list[Upgrade], now: datetime
) -> list[HeldUpgrades]:
    groups: dict[Hold, list[Upgrade]] = {}
    for upgrade in pending:
        if upgrade.hold_kind is not None and upgrade.hold_reason is not None:
            kind, subject = HoldKind(upgrade.hold_kind), upgrade.hold_subject or ""
            hold = Hold(kind, subject, upgrade.hold_reason)
            groups.setdefault(hold, []).append(upgrade)
    timed = [u.environment for hold, us in groups.items() if hold.kind in TIMED for u in us]
    constraints = constraints_of(session, rollout, timed, now) if timed else None
    held = []
    for hold, upgrades in groups.items():
        clears_at: datetime | None = None
        if constraints is not None and hold.kind in TIMED:
            # Asked again now: a hold recorded at the last plan may have cleared since.
            verdicts = [constraints.verdict(u.environment, now) for u in upgrades]
            untils = [now if v.admitted else v.until for v in verdicts]
            clears_at = None if None in untils else max(u for u in untils if u is not None)
        held.append(HeldUpgrades(hold, tuple(u.environment for u in upgrades), clears_at))
    return held


def verdict_view(judgement: Judgement) -> VerdictView:
    return VerdictView(
        exit_code=int(judgement.outcome),
        outcome=judgement.outcome.label,
        why=judgement.why,
        settled=judgement.settled,
    )


def rollout_status(
    session: Session, rollout_id: int, now: datetime, deadline: datetime
) -> RolloutStatus | None:
    """The rollout's status for a caller prepared to wait until `deadline`."""
    rollout = session.get(Rollout, rollout_id)
    if rollout is None:
        return None
    upgrades = list(
        session.scalars(
            select(Upgrade)
            .where(Upgrade.rollout_id == rollout_id)
            .order_by(Upgrade.stage_index, Upgrade.id)
        )
    )
    counts = Counter(u.state for u in upgrades)
    pending = [u for u in upgrades if u.state == UpgradeState.PENDING]
    held = _held(session, rollout, pending, now)
    stages = rollout.plan.stages
    stage = stages[min(rollout.stage_index, len(stages) - 1)].name
    state = RolloutState(rollout.state)
    done = counts.get(UpgradeState.SUCCEEDED, 0)
    progress = Progress(state, stage, done, len(upgrades), rollout.reason, held)
    return RolloutStatus(
        id=rollout.id,
        service=rollout.service,
        version=rollout.version,
        team=rollout.team,
        state=rollout.state,
        final=state.final,
        stage=stage,
        stage_index=rollout.stage_index,
        stages=len(stages),
        done=done,
        total=len(upgrades),
        counts=dict(sorted(counts.items())),
        reason=rollout.reason,
        holds=[
            HoldView(
                kind=h.hold.kind,
                subject=h.hold.subject,
                text=h.hold.text,
                environments=list(h.environments),
                clears_at=h.clears_at,
            )
            for h in held
        ],
        verdict=verdict_view(judge(progress, deadline)),
        updated_at=rollout.updated_at,
    )
