"""One step of an upgrade: look at its row, do the one piece of I/O its state calls for
(outside any transaction), then write the outcome back if the claim is still ours."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, tuple_, update
from sqlalchemy.orm import Session

from rollout.domain.states import UpgradeState
from rollout.drivers import Driver
from rollout.engine.batch_driver import Answered, ask_together, deploy_request, polled
from rollout.engine.entry import admit
from rollout.engine.leases import holding
from rollout.engine.outcomes import apply_outcomes
from rollout.engine.progress import Wakes, wake
from rollout.engine.runtime import Runtime
from rollout.engine.upgrading import (
    Claimed,
    Outcome,
    act,
    deploy_key,
    deploy_timeout,
    poll_interval,
    roll_back,
)
from rollout.observability import events
from rollout.store.database import is_postgresql, transaction
from rollout.store.models import Installation, Measurement, Rollout, Upgrade

log = logging.getLogger(__name__)


def step(runtime: Runtime, upgrade_id: int, claim: int) -> None:
    """Move one upgrade as far as it can go now (see `steps`)."""
    steps(runtime, [(upgrade_id, claim)])


def steps(runtime: Runtime, claims: Sequence[tuple[int, int]]) -> None:
    """Move a batch of claimed upgrades as far as they can go now: a step whose next step is
    due at once (the rollback after a failure, above all) goes on here instead of queueing
    behind others. The batch shares its reads and writes: one transaction reads and takes
    them, one per rollout writes their outcomes and plans that rollout once."""
    pending = list(claims)
    while pending:
        pending = _step_batch(runtime, pending)


def _step_batch(runtime: Runtime, claims: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """One step of each upgrade still claimed; return the claims to go on with at once."""
    now = runtime.now()
    claimed, retry, entering = _read_and_take(runtime, claims, now)
    by_rollout: dict[int, list[tuple[int, int, Outcome]]] = defaultdict(list)
    for item in entering:
        # An air-gapped environment lets in only an artifact that passed its check.
        admitted = admit(runtime, item.upgrade, item.rollout, item.claim)
        if admitted is None:
            continue
        claim, blocked = admitted
        if blocked is not None:
            outcome = Outcome(UpgradeState.BLOCKED, reason=blocked)
            by_rollout[item.upgrade.rollout_id].append((item.upgrade.id, claim, outcome))
            continue
        checked = runtime.now()  # the check may have taken minutes
        with transaction(runtime.database_url) as session:
            took = _take(session, runtime, [(item.upgrade.id, claim)], checked)
        if item.upgrade.id in took:
            item.upgrade.state, item.upgrade.deploy_started_at = UpgradeState.DEPLOYING, checked
            item.upgrade.from_version, item.claim = took[item.upgrade.id], claim + 1
            claimed.append(item)
        else:
            retry.append((item.upgrade.id, claim))  # a plan holds it (or took it back)
    # Driver calls and gate measurements may outlast the lease (their timeouts are their
    # own, and a batch steps its upgrades one after another): the batch holds its rows.
    wakes = Wakes()
    held = [(item.upgrade.id, item.claim) for item in claimed]
    with holding(runtime, Upgrade, held):
        drivers = ask_together(runtime, claimed)
        halted: set[int] = set()  # rollouts whose first failure of this batch is written
        for item in claimed:
            upgrade = item.upgrade
            with events.stepping(upgrade, item.rollout):
                outcome = step_in_hand(runtime, item, drivers.get(upgrade.id))
            by_rollout[upgrade.rollout_id].append((upgrade.id, item.claim, outcome))
            rolls_back = outcome.state is UpgradeState.ROLLING_BACK
            failed = rolls_back and UpgradeState(upgrade.state) is not UpgradeState.ROLLING_BACK
            if failed and upgrade.rollout_id not in halted:
                # A rollout's first failure: its page and its rollback wait for no other upgrade
                # of the batch. Its next failures in the batch are written together, first, at
                # the end: each written on its own queued on the rollout's lock behind the
                # others (a bad canary stage of 50 environments failing at once).
                mine = by_rollout.pop(upgrade.rollout_id)
                written = apply_outcomes(runtime, upgrade.rollout_id, mine, runtime.now(), wakes)
                if written:  # else the claim had gone stale: the next failure goes at once too
                    halted.add(upgrade.rollout_id)
                steps(runtime, written)
        go_on = list(retry)
        for rollout_id in sorted(by_rollout, key=lambda r: r not in halted):
            go_on += apply_outcomes(
                runtime, rollout_id, by_rollout[rollout_id], runtime.now(), wakes
            )
    try:
        wake(runtime, wakes)
    except Exception as error:
        # Not worth the batch's rollbacks and next steps: the woken rollouts' own rechecks
        # (a busy environment, a dependency) find what this would have told them.
        log.warning("waking other rollouts failed: %s", error)
    return go_on


def _needs_entry_check(upgrade: Upgrade, rollout: Rollout) -> bool:
    return rollout.plan.artifacts is not None and upgrade.environment in rollout.plan.air_gapped


def _read_and_take(
    runtime: Runtime, claims: list[tuple[int, int]], now: datetime
) -> tuple[list[Claimed], list[tuple[int, int]], list[Claimed]]:
    """Read the upgrades whose claims are still ours and take the READY ones for deploy, in
    one transaction committed before any driver is asked: a rollout halted in the meantime
    either cancels an upgrade first or finds it deploying, never both. Returns what to step
    now, READY upgrades to try again because a plan of their rollout holds them, and READY
    upgrades whose artifact must be checked before they may be taken (air-gapped)."""
    with transaction(runtime.database_url) as session:
        rows = session.execute(
            select(Upgrade, Rollout)
            .join(Rollout, Rollout.id == Upgrade.rollout_id)
            .where(tuple_(Upgrade.id, Upgrade.claim).in_(claims))
            .order_by(Upgrade.id)
        ).all()
        # A duplicate or stale nudge finds nothing: someone else moved that row.
        live = [(r.Upgrade, r.Rollout) for r in rows if not UpgradeState(r.Upgrade.state).final]
        verifying = [u.id for u, _ in live if u.state == UpgradeState.VERIFYING]
        taken: dict[int, list[Measurement]] = defaultdict(list)
        if verifying:
            for measurement in session.scalars(
                select(Measurement)
                .where(Measurement.upgrade_id.in_(verifying))
                .order_by(Measurement.id)
            ):
                taken[measurement.upgrade_id].append(measurement)
        ready = [
            (u.id, u.claim)
            for u, r in live
            if u.state == UpgradeState.READY and not _needs_entry_check(u, r)
        ]
        took = _take(session, runtime, ready, now) if ready else {}
        session.expunge_all()
    claimed: list[Claimed] = []
    retry: list[tuple[int, int]] = []
    entering: list[Claimed] = []
    for upgrade, rollout in live:
        claim, deploy = upgrade.claim, upgrade.state == UpgradeState.READY
        if deploy and _needs_entry_check(upgrade, rollout):
            entering.append(Claimed(upgrade, rollout, claim, [], deploy))
            continue
        if deploy:
            if upgrade.id not in took:
                retry.append((upgrade.id, claim))
                continue
            upgrade.state, upgrade.deploy_started_at = UpgradeState.DEPLOYING, now
            upgrade.from_version, claim = took[upgrade.id], claim + 1
        claimed.append(Claimed(upgrade, rollout, claim, taken[upgrade.id], deploy))
    return claimed, retry, entering


def _take(
    session: Session, runtime: Runtime, ready: list[tuple[int, int]], now: datetime
) -> dict[int, str | None]:
    """Take READY upgrades whose claims are ours for deploy; return the version each rolls
    back to, by id."""
    # Never wait for a row here: a plan of its rollout holds the rollout first and then its
    # rows, so waiting while holding other rows could deadlock with it.
    lockable = select(Upgrade.id).where(
        tuple_(Upgrade.id, Upgrade.claim).in_(ready), Upgrade.state == UpgradeState.READY
    )
    if is_postgresql(runtime.database_url):
        lockable = lockable.order_by(Upgrade.id).with_for_update(skip_locked=True)
    free = list(session.scalars(lockable))
    if not free:
        return {}
    installed = (
        select(Installation.version)
        .where(
            Installation.environment == Upgrade.environment,
            Installation.service == Upgrade.service,
        )
        .scalar_subquery()
    )
    return {
        row.id: row.from_version
        for row in session.execute(
            update(Upgrade)
            .where(Upgrade.id.in_(free))
            .values(
                state=UpgradeState.DEPLOYING,
                claim=Upgrade.claim + 1,
                deploy_started_at=now,
                from_version=installed,
                due_at=now + runtime.lease,
            )
            .returning(Upgrade.id, Upgrade.from_version)
            .execution_options(synchronize_session=False)
        )
    }


def step_in_hand(runtime: Runtime, item: Claimed, driver: Driver | None = None) -> Outcome:
    """The I/O of one step, outside any transaction: what the driver and the gates say
    (`driver`: one that already holds this batch's answers)."""
    upgrade = item.upgrade
    if driver is None:
        driver = runtime.backends.driver(upgrade.driver)
    now = runtime.now()
    if isinstance(driver, Answered) and polled(item, {deploy_key(upgrade)}) in driver.answers:
        # Judge a deploy's timeout by when the driver was asked, not by when this step came
        # round in its batch: a deploy that finished in between did not time out.
        now = driver.asked_at
    try:
        if item.deploy:
            driver.start(deploy_request(upgrade))
        return act(upgrade, item.rollout, driver, runtime.backends.measure, item.taken, now)
    except Exception as error:  # the driver or a gate broke: try again after a pause
        log.warning("upgrade %s step in %s failed: %s", upgrade.id, upgrade.state, error)
        started = upgrade.deploy_started_at
        if (
            upgrade.state == UpgradeState.DEPLOYING
            and started
            and now - started > deploy_timeout(upgrade)
        ):
            # A driver that never answers (a hung agent) must not hold the upgrade forever.
            return roll_back(f"deploy did not finish within {deploy_timeout(upgrade)}: {error}")
        return Outcome(
            UpgradeState(upgrade.state), due_in=poll_interval(upgrade), reason=f"retrying: {error}"
        )
