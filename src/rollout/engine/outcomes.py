"""Writing a batch's outcomes: each upgrade's new state, and what it means for its
rollout, its release and the on-call, in one transaction per rollout."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from itertools import pairwise

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from rollout.domain.paging import PageKind
from rollout.domain.states import ReleaseState, RolloutState, UpgradeState, check_upgrade
from rollout.engine.dispatch import Nudge
from rollout.engine.progress import Wakes, halt, install, lock_rollout, replan, uninstall
from rollout.engine.runtime import Runtime
from rollout.engine.upgrading import Outcome
from rollout.observability import events
from rollout.paging.opening import open_page
from rollout.store.database import is_postgresql, transaction
from rollout.store.models import Installation, Measurement, Release, Rollout, Upgrade

log = logging.getLogger(__name__)


def apply_outcomes(
    runtime: Runtime,
    rollout_id: int,
    outcomes: list[tuple[int, int, Outcome]],
    now: datetime,
    wakes: Wakes,
) -> list[tuple[int, int]]:
    """Write the outcomes of one rollout's upgrades whose claims are still ours, in one
    transaction that plans the rollout once; return the claims to go on with at once, and
    add to `wakes` the other rollouts these outcomes may let go on."""
    nudges: list[Nudge] = []
    go_on: list[tuple[int, int]] = []
    postgres = is_postgresql(runtime.database_url)
    with transaction(runtime.database_url) as session:
        rollout = lock_rollout(session, rollout_id, runtime.database_url)
        if rollout is None:
            return []
        # Then its rows, in id order like every plan, after the rollout: the lock order. The
        # release comes along for _write and the plan (no read of its own): read after the
        # rollout's lock is ours, it shows any recall, which takes that lock too.
        rows = (
            select(Upgrade, Release)
            .join(Release, Release.id == rollout.release_id)
            .where(Upgrade.id.in_([o[0] for o in outcomes]))
            .order_by(Upgrade.id)
        )
        read = session.execute(rows.with_for_update(of=Upgrade) if postgres else rows).all()
        upgrades = {u.id: u for u, _ in read}
        # One read fills the session for install() and uninstall() of the whole batch (kept
        # referenced, like the release in `read`: the session holds its objects weakly).
        places = [(u.environment, u.service) for u in upgrades.values()]
        _held = session.scalars(
            select(Installation).where(
                tuple_(Installation.environment, Installation.service).in_(places)
            )
        ).all()
        plan_again = False
        moved = []
        for upgrade_id, claim, outcome in outcomes:
            upgrade = upgrades.get(upgrade_id)
            if upgrade is None or upgrade.claim != claim:
                continue  # the lease ran out and the row moved on without us
            before = UpgradeState(upgrade.state)
            again, changed = _write(session, rollout, upgrade, outcome, now, runtime)
            after = UpgradeState(upgrade.state)
            # A release recalled while it verified turns a success into a roll-off (_write).
            recalled = outcome.recalled or (
                outcome.state is UpgradeState.SUCCEEDED and after is UpgradeState.ROLLING_BACK
            )
            moved.append((upgrade, before, after, recalled))
            if again is not None:
                go_on.append((upgrade.id, again))
            plan_again = plan_again or changed
            if UpgradeState(upgrade.state).final:
                wakes.freed.add((upgrade.service, rollout_id))
            if after in (UpgradeState.SUCCEEDED, UpgradeState.ROLLED_BACK):
                wakes.installed.add((upgrade.environment, upgrade.service))
        if plan_again:
            nudges += replan(session, rollout, runtime)
        traceparent = rollout.traceparent
    for upgrade, before, after, recalled in moved:
        events.moved(traceparent, upgrade, before, after, now, recalled=recalled)
    runtime.dispatcher.send(nudges)
    return go_on


def _write(
    session: Session,
    rollout: Rollout,
    upgrade: Upgrade,
    outcome: Outcome,
    now: datetime,
    runtime: Runtime,
) -> tuple[int | None, bool]:
    """Write one upgrade's outcome; return the claim to go on with when its next step is due
    at once, and whether its rollout must be planned again."""
    go_on: int | None = None
    before = UpgradeState(upgrade.state)
    if outcome.state is UpgradeState.SUCCEEDED:
        release = session.get(Release, rollout.release_id)
        if release is not None and release.state == ReleaseState.RECALLED:
            # Recalled while it verified: it passed, and rolls off all the same.
            outcome = Outcome(
                UpgradeState.ROLLING_BACK,
                due_in=timedelta(0),
                values=outcome.values,
                measured=outcome.measured,
                via=[*outcome.via],
                reason=release.reason,
                recalled=True,
            )
    path = [before, *outcome.via, outcome.state]
    for current, target in pairwise(path):
        if current is not target:
            check_upgrade(current, target)
    for gate, taken in outcome.measured:
        session.add(
            Measurement(
                upgrade_id=upgrade.id,
                gate=gate,
                taken_at=taken.taken_at,
                outcome=taken.outcome,
                value=taken.value,
                condition=taken.condition,
                message=taken.message,
            )
        )
    for name, value in outcome.values.items():
        setattr(upgrade, name, value)
    upgrade.state = outcome.state
    upgrade.claim += 1
    if outcome.reason is not None:
        upgrade.reason = outcome.reason
    if outcome.due_in is None or outcome.state.final:
        upgrade.due_at = None
    elif outcome.due_in <= timedelta(0):
        # Ours to go on with; the lease covers us if this worker dies first.
        upgrade.due_at = now + runtime.lease
        go_on = upgrade.claim
    else:
        upgrade.due_at = now + outcome.due_in

    if outcome.state is not before:
        return go_on, _consequences(session, rollout, upgrade, before, outcome, now)
    return go_on, False


def _consequences(
    session: Session,
    rollout: Rollout,
    upgrade: Upgrade,
    before: UpgradeState,
    outcome: Outcome,
    now: datetime,
) -> bool:
    """What an upgrade's new state means for its rollout, its release and the on-call; True
    when the rollout must be planned again."""
    state = outcome.state

    def page(kind: PageKind) -> None:
        open_page(session, rollout, upgrade, kind, outcome.failed_gate, outcome.reason, now)

    if state.final:
        upgrade.finished_at = now
    if state is UpgradeState.SUCCEEDED:
        install(session, upgrade, now)
    elif state is UpgradeState.ROLLED_BACK:
        uninstall(session, upgrade, now)
    elif state is UpgradeState.ROLLING_BACK and outcome.recalled:
        pass  # the recall halted the rollout already; nobody is paged for a recall
    elif state is UpgradeState.ROLLING_BACK and before is not UpgradeState.ROLLING_BACK:
        reason = outcome.reason or "failed"
        halt(session, rollout, f"{upgrade.environment}: {reason}")
        page(PageKind.FAILURE)
    elif state is UpgradeState.AWAITING_DECISION:
        if rollout.state == RolloutState.RUNNING:
            rollout.state = RolloutState.PAUSED
            rollout.reason = f"{upgrade.environment}: {outcome.reason}"
        page(PageKind.DECISION)
    elif state is UpgradeState.ROLLBACK_FAILED:
        page(PageKind.ROLLBACK_FAILED)
    elif state is UpgradeState.BLOCKED:
        halt(session, rollout, f"{upgrade.environment}: {outcome.reason}")
        page(PageKind.BLOCKED)
    elif not state.final:
        return False  # deploying or verifying: the plan counts them alike, nothing to re-plan
    return True
