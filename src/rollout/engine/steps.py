"""One step of an upgrade: look at its row, do the one piece of I/O its state calls for
(outside any transaction), then write the outcome back if the claim is still ours."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any

import httpx
from sqlalchemy import select, tuple_, update
from sqlalchemy.orm import Session

from rollout.domain import gates as verdicts
from rollout.domain.paging import (
    DECISION_SEVERITY,
    PageFacts,
    PageKind,
    dedup_key,
    summary,
)
from rollout.domain.states import (
    ReleaseState,
    RolloutState,
    UpgradeState,
    check_upgrade,
)
from rollout.drivers import (
    BatchDriver,
    BatchProbes,
    DeployPhase,
    DeployRequest,
    DeployStatus,
    Driver,
    Health,
    ProbesThrough,
)
from rollout.engine.dispatch import Nudge
from rollout.engine.entry import admit
from rollout.engine.leases import holding
from rollout.engine.outbox import SAME_FACTS, address
from rollout.engine.progress import (
    Wakes,
    halt,
    install,
    lock_rollout,
    replan,
    uninstall,
    wake,
)
from rollout.engine.runtime import Runtime
from rollout.gates import GateContext, Measurer, policy_of
from rollout.observability import events
from rollout.plan.driver import DriverSpec
from rollout.store.database import is_postgresql, transaction
from rollout.store.models import Installation, Measurement, Page, Release, Rollout, Upgrade

log = logging.getLogger(__name__)


@dataclass
class Outcome:
    """What a step learned; applied in one transaction, or dropped if the claim went stale."""

    state: UpgradeState
    due_in: timedelta | None = None  # None with a non-final state: wait for a human
    values: dict[str, Any] = field(default_factory=dict)
    measured: list[tuple[str, verdicts.Measurement]] = field(default_factory=list)  # (gate, m)
    via: list[UpgradeState] = field(default_factory=list)  # states passed through on the way
    reason: str | None = None
    failed_gate: str | None = None
    recalled: bool = False  # rolled off because its release was recalled: no halt, no page


ASKED_AGAIN = "the driver had not received this deploy (its worker died first): asked again"


def deploy_key(upgrade: Upgrade, rollback: bool = False) -> str:
    return f"upgrade-{upgrade.id}-rollback" if rollback else f"upgrade-{upgrade.id}"


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


@dataclass
class _Claimed:
    upgrade: Upgrade
    rollout: Rollout
    claim: int
    taken: list[Measurement]
    deploy: bool  # taken for deploy just now: ask the driver to start it


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
        drivers = _ask_together(runtime, claimed)
        halted: set[int] = set()  # rollouts whose first failure of this batch is written
        for item in claimed:
            upgrade = item.upgrade
            with events.stepping(upgrade, item.rollout):
                outcome = _step_in_hand(runtime, item, drivers.get(upgrade.id))
            by_rollout[upgrade.rollout_id].append((upgrade.id, item.claim, outcome))
            changes_state = outcome.state is not UpgradeState(upgrade.state)
            failed = outcome.due_in == timedelta(0) and changes_state
            if failed and upgrade.rollout_id not in halted:
                # A rollout's first failure: its page and its rollback wait for no other upgrade
                # of the batch. Its next failures in the batch are written together, first, at
                # the end: each written on its own queued on the rollout's lock behind the
                # others (a bad canary stage of 50 environments failing at once).
                mine = by_rollout.pop(upgrade.rollout_id)
                written = _apply(runtime, upgrade.rollout_id, mine, runtime.now(), wakes)
                if written:  # else the claim had gone stale: the next failure goes at once too
                    halted.add(upgrade.rollout_id)
                steps(runtime, written)
        go_on = list(retry)
        for rollout_id in sorted(by_rollout, key=lambda r: r not in halted):
            go_on += _apply(runtime, rollout_id, by_rollout[rollout_id], runtime.now(), wakes)
    try:
        wake(runtime, wakes)
    except Exception as error:
        # Not worth the batch's rollbacks and next steps: the woken rollouts' own rechecks
        # (a busy environment, a dependency) find what this would have told them.
        log.warning("waking other rollouts failed: %s", error)
    return go_on


class _Answered:
    """A driver whose starts and statuses for this batch were asked together: it answers
    those from what it was told, once each, and passes everything else on."""

    def __init__(
        self,
        driver: Driver,
        started: set[str],
        answers: dict[str, DeployStatus],
        asked_at: datetime,
        probes: httpx.BaseTransport | None = None,
    ) -> None:
        self.driver, self.started, self.answers = driver, started, answers
        self.asked_at = asked_at  # read before asking, as a step reads its clock
        self.probes = probes

    def start(self, request: DeployRequest) -> None:
        if request.key in self.started:
            self.started.discard(request.key)
            return
        self.driver.start(request)

    def status(self, key: str) -> DeployStatus:
        answer = self.answers.pop(key, None)
        return answer if answer is not None else self.driver.status(key)

    def health(self, environment: str, service: str) -> Health:
        return self.driver.health(environment, service)

    def transport(self) -> httpx.BaseTransport | None:
        return self.probes if self.probes is not None else probes_of(self.driver)


def probes_of(driver: Driver) -> httpx.BaseTransport | None:
    """Where the gates of an environment `driver` reaches send their HTTP probes: None is
    the real network, as for every driver but the simulated fleet."""
    if isinstance(driver, _Answered):
        return driver.transport()
    return driver.transport() if isinstance(driver, ProbesThrough) else None


def _ask_together(runtime: Runtime, claimed: list[_Claimed]) -> dict[int, Driver]:
    """Start and poll the batch's deploys with one call per driver that can take many (the
    simulated fleet: one transaction instead of one per upgrade); return, by upgrade id, the
    driver its step asks. A driver that cannot, or a call that fails, leaves each upgrade to
    ask on its own, with its own error handling."""
    groups: dict[DriverSpec, list[_Claimed]] = defaultdict(list)
    for item in claimed:
        groups[item.upgrade.driver].append(item)  # frozen specs: equal ones hash alike
    drivers: dict[int, Driver] = {}
    for group in groups.values():
        spec = group[0].upgrade.driver
        driver = runtime.backends.driver(spec)
        if len(group) < 2 or not isinstance(driver, BatchDriver):
            continue
        batch: Driver = driver  # narrowed to BatchDriver above; a Driver still
        starting = [item for item in group if item.deploy]
        started: set[str] = set()
        asked_at = runtime.now()
        try:
            driver.start_many([_request(item.upgrade) for item in starting])
            started = {deploy_key(item.upgrade) for item in starting}
        except Exception as error:
            log.warning("starting %d deploys together failed: %s", len(starting), error)
        keys = [key for item in group if (key := _polled(item, started)) is not None]
        answers: dict[str, DeployStatus] = {}
        try:
            answers = driver.statuses(keys) if keys else {}
        except Exception as error:
            log.warning("polling %d deploys together failed: %s", len(keys), error)
        # Probes are read once the batch's deploys were started and polled together; if
        # either call failed, each step asks on its own and may settle its deploy later
        # than a reading taken now: then each probe reads the fleet on its own too.
        together = len(started) == len(starting) and len(answers) == len(keys)
        probes = _probes(batch, group) if together else None
        answered = _Answered(batch, started, answers, asked_at, probes)
        drivers.update((item.upgrade.id, answered) for item in group)
    return drivers


def _probes(driver: Driver, group: list[_Claimed]) -> httpx.BaseTransport | None:
    """One reading of the health of the batch's places its gates may probe in this step
    (read after the deploys were polled, so a deploy that just finished is seen)."""
    places = [
        (item.upgrade.environment, item.upgrade.service)
        for item in group
        if item.upgrade.state in (UpgradeState.DEPLOYING, UpgradeState.VERIFYING)
    ]
    if not places or not isinstance(driver, BatchProbes):
        return None
    try:
        return driver.probing(places)
    except Exception as error:
        log.warning("probing %d environments together failed: %s", len(places), error)
        return None


def _request(upgrade: Upgrade) -> DeployRequest:
    return DeployRequest(
        deploy_key(upgrade), upgrade.environment, upgrade.service, upgrade.to_version
    )


def _polled(item: _Claimed, started: set[str]) -> str | None:
    """The deploy key this step will ask the status of, if any."""
    upgrade = item.upgrade
    if upgrade.state == UpgradeState.DEPLOYING and (
        not item.deploy or deploy_key(upgrade) in started
    ):
        return deploy_key(upgrade)
    if upgrade.state == UpgradeState.ROLLING_BACK and upgrade.rollback_started_at is not None:
        return deploy_key(upgrade, rollback=True)
    return None


def _step_in_hand(runtime: Runtime, item: _Claimed, driver: Driver | None = None) -> Outcome:
    """The I/O of one step, outside any transaction: what the driver and the gates say
    (`driver`: one that already holds this batch's answers)."""
    upgrade = item.upgrade
    if driver is None:
        driver = runtime.backends.driver(upgrade.driver)
    now = runtime.now()
    if isinstance(driver, _Answered) and _polled(item, {deploy_key(upgrade)}) in driver.answers:
        # Judge a deploy's timeout by when the driver was asked, not by when this step came
        # round in its batch: a deploy that finished in between did not time out.
        now = driver.asked_at
    try:
        if item.deploy:
            driver.start(_request(upgrade))
        return _act(upgrade, item.rollout, driver, runtime.backends.measure, item.taken, now)
    except Exception as error:  # the driver or a gate broke: try again after a pause
        log.warning("upgrade %s step in %s failed: %s", upgrade.id, upgrade.state, error)
        started = upgrade.deploy_started_at
        if (
            upgrade.state == UpgradeState.DEPLOYING
            and started
            and now - started > _timeout(upgrade)
        ):
            # A driver that never answers (a hung agent) must not hold the upgrade forever.
            return _roll_back(f"deploy did not finish within {_timeout(upgrade)}: {error}")
        return Outcome(
            UpgradeState(upgrade.state), due_in=_poll(upgrade), reason=f"retrying: {error}"
        )


def _needs_entry_check(upgrade: Upgrade, rollout: Rollout) -> bool:
    return rollout.plan.artifacts is not None and upgrade.environment in rollout.plan.air_gapped


def _read_and_take(
    runtime: Runtime, claims: list[tuple[int, int]], now: datetime
) -> tuple[list[_Claimed], list[tuple[int, int]], list[_Claimed]]:
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
    claimed: list[_Claimed] = []
    retry: list[tuple[int, int]] = []
    entering: list[_Claimed] = []
    for upgrade, rollout in live:
        claim, deploy = upgrade.claim, upgrade.state == UpgradeState.READY
        if deploy and _needs_entry_check(upgrade, rollout):
            entering.append(_Claimed(upgrade, rollout, claim, [], deploy))
            continue
        if deploy:
            if upgrade.id not in took:
                retry.append((upgrade.id, claim))
                continue
            upgrade.state, upgrade.deploy_started_at = UpgradeState.DEPLOYING, now
            upgrade.from_version, claim = took[upgrade.id], claim + 1
        claimed.append(_Claimed(upgrade, rollout, claim, taken[upgrade.id], deploy))
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


def _poll(upgrade: Upgrade) -> timedelta:
    return upgrade.driver.poll_interval


def _timeout(upgrade: Upgrade) -> timedelta:
    return upgrade.driver.deploy_timeout


def _act(
    upgrade: Upgrade,
    rollout: Rollout,
    driver: Driver,
    measure: Measurer,
    taken: list[Measurement],
    now: datetime,
) -> Outcome:
    state = UpgradeState(upgrade.state)
    if state is UpgradeState.DEPLOYING:
        return _deploying(upgrade, rollout, driver, measure, now)
    if state is UpgradeState.VERIFYING:
        return _verify(upgrade, rollout, driver, measure, taken, now)
    if state is UpgradeState.ROLLING_BACK:
        return _rolling_back(upgrade, driver, now)
    raise AssertionError(f"no step for an upgrade in state {state}")


def _deploying(
    upgrade: Upgrade, rollout: Rollout, driver: Driver, measure: Measurer, now: datetime
) -> Outcome:
    status = driver.status(deploy_key(upgrade))
    if status.phase is DeployPhase.SUCCEEDED:
        upgrade.verify_started_at = now
        outcome = _verify(upgrade, rollout, driver, measure, [], now)
        outcome.via.insert(0, UpgradeState.VERIFYING)
        outcome.values["verify_started_at"] = now
        return outcome
    if status.phase is DeployPhase.FAILED:
        return _roll_back(f"deploy failed: {status.message}")
    assert upgrade.deploy_started_at is not None
    if status.phase is DeployPhase.UNKNOWN and upgrade.reason != ASKED_AGAIN:
        # Taken for deploy, but its worker died before asking the driver: ask now. The key
        # is the same, so however many ask, it is one deploy. Its timeout counts from now:
        # the deploy had not begun (a lease may be longer than a deploy timeout). Once only,
        # so a driver that keeps forgetting cannot hold the upgrade forever.
        request = DeployRequest(
            deploy_key(upgrade), upgrade.environment, upgrade.service, upgrade.to_version
        )
        driver.start(request)
        return Outcome(
            UpgradeState.DEPLOYING,
            due_in=_poll(upgrade),
            values={"deploy_started_at": now},
            reason=ASKED_AGAIN,
        )
    if now - upgrade.deploy_started_at > _timeout(upgrade):
        return _roll_back(f"deploy did not finish within {_timeout(upgrade)}")
    return Outcome(UpgradeState.DEPLOYING, due_in=_poll(upgrade))


def _roll_back(reason: str, gate: str | None = None) -> Outcome:
    return Outcome(UpgradeState.ROLLING_BACK, due_in=timedelta(0), reason=reason, failed_gate=gate)


def _verify(
    upgrade: Upgrade,
    rollout: Rollout,
    driver: Driver,
    measure: Measurer,
    taken: list[Measurement],
    now: datetime,
) -> Outcome:
    assert upgrade.verify_started_at is not None
    started = upgrade.verify_started_at
    history: dict[str, list[verdicts.Measurement]] = defaultdict(list)
    for row in taken:
        history[row.gate].append(
            verdicts.Measurement(
                row.taken_at, verdicts.Outcome(row.outcome), row.value, row.condition, row.message
            )
        )
    context = GateContext(
        upgrade.service,
        upgrade.to_version,
        upgrade.environment,
        upgrade.stage,
        driver,
        probes_of(driver),
    )
    new: list[tuple[str, verdicts.Measurement]] = []
    results = []
    for spec in rollout.plan.gates:
        policy = policy_of(spec)
        verdict = verdicts.judge(policy, history[policy.name], started)
        running = verdict.state is verdicts.VerdictState.RUNNING
        if running and verdict.next_due is not None and verdict.next_due <= now:
            with events.measuring(policy.name, upgrade) as measured:
                taken_now = measure(spec, context, now)
                measured(taken_now)
            new.append((policy.name, taken_now))
            history[policy.name].append(taken_now)
            verdict = verdicts.judge(policy, history[policy.name], started)
        results.append(verdict)
    overall = verdicts.combine(results)
    outcome: Outcome
    if overall.state is verdicts.VerdictState.FAILED:
        failed = next(v.gate for v in overall.gates if v.state is verdicts.VerdictState.FAILED)
        outcome = _roll_back(overall.reason, gate=failed)
    elif overall.state is verdicts.VerdictState.INCONCLUSIVE:
        gate = next(v.gate for v in overall.gates if v.state is verdicts.VerdictState.INCONCLUSIVE)
        outcome = Outcome(UpgradeState.AWAITING_DECISION, reason=overall.reason, failed_gate=gate)
    elif overall.state is verdicts.VerdictState.PASSED:
        outcome = Outcome(UpgradeState.SUCCEEDED, reason=overall.reason)
    else:
        assert overall.next_due is not None
        outcome = Outcome(UpgradeState.VERIFYING, due_in=max(overall.next_due - now, timedelta(0)))
    outcome.measured = new
    return outcome


def _rolling_back(upgrade: Upgrade, driver: Driver, now: datetime) -> Outcome:
    key = deploy_key(upgrade, rollback=True)
    if upgrade.rollback_started_at is None:
        driver.start(DeployRequest(key, upgrade.environment, upgrade.service, upgrade.from_version))
        return Outcome(
            UpgradeState.ROLLING_BACK, due_in=_poll(upgrade), values={"rollback_started_at": now}
        )
    status = driver.status(key)
    if status.phase is DeployPhase.SUCCEEDED:
        return Outcome(UpgradeState.ROLLED_BACK)
    if status.phase is DeployPhase.FAILED:
        return Outcome(UpgradeState.ROLLBACK_FAILED, reason=f"rollback failed: {status.message}")
    if now - upgrade.rollback_started_at > _timeout(upgrade):
        return Outcome(
            UpgradeState.ROLLBACK_FAILED,
            reason=f"rollback did not finish within {_timeout(upgrade)}",
        )
    return Outcome(UpgradeState.ROLLING_BACK, due_in=_poll(upgrade))


def _apply(
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
        _page(session, rollout, upgrade, PageKind.FAILURE, outcome, now)
    elif state is UpgradeState.AWAITING_DECISION:
        if rollout.state == RolloutState.RUNNING:
            rollout.state = RolloutState.PAUSED
            rollout.reason = f"{upgrade.environment}: {outcome.reason}"
        _page(session, rollout, upgrade, PageKind.DECISION, outcome, now)
    elif state is UpgradeState.ROLLBACK_FAILED:
        _page(session, rollout, upgrade, PageKind.ROLLBACK_FAILED, outcome, now)
    elif state is UpgradeState.BLOCKED:
        halt(session, rollout, f"{upgrade.environment}: {outcome.reason}")
        _page(session, rollout, upgrade, PageKind.BLOCKED, outcome, now)
    elif not state.final:
        return False  # deploying or verifying: the plan counts them alike, nothing to re-plan
    return True


def _page(
    session: Session,
    rollout: Rollout,
    upgrade: Upgrade,
    kind: PageKind,
    outcome: Outcome,
    now: datetime,
) -> None:
    key = dedup_key(rollout.id, outcome.failed_gate, upgrade.environment)
    if kind is PageKind.BLOCKED:
        key = dedup_key(rollout.id, "entry", upgrade.environment)
    if kind is PageKind.ROLLBACK_FAILED:
        key += "/rollback"
    if session.execute(select(Page.id).where(Page.dedup_key == key)).first() is not None:
        return
    facts = PageFacts(
        rollout_id=rollout.id,
        service=upgrade.service,
        version=upgrade.to_version,
        environment=upgrade.environment,
        stage=upgrade.stage,
        gate=outcome.failed_gate,
        reason=outcome.reason or "",
        rollback_to=upgrade.from_version,
    )
    severity = (
        "P0" if kind is PageKind.ROLLBACK_FAILED else rollout.plan.stage(upgrade.stage).severity
    )
    page = Page(
        dedup_key=key,
        team=rollout.team,
        severity=DECISION_SEVERITY if kind is PageKind.DECISION else severity,
        kind=kind,
        rollout_id=rollout.id,
        upgrade_id=upgrade.id,
        service=upgrade.service,
        version=upgrade.to_version,
        environment=upgrade.environment,
        stage=upgrade.stage,
        gate=outcome.failed_gate,
        detail=facts.reason,
        summary=summary(kind, facts),
        state="open",
        created_at=now,
    )
    session.add(page)
    address(session, page, rollout.plan.paging, now)
    operations = rollout.plan.operations
    if operations is not None and upgrade.environment in rollout.plan.air_gapped:
        # The NOC has hands on the air-gapped network: it gets its own page of the same facts.
        noc = Page(
            **{c: getattr(page, c) for c in SAME_FACTS},
            dedup_key=f"{key}/noc",
            team=operations.team,
            state="open",
            created_at=now,
        )
        session.add(noc)
        address(session, noc, operations, now)
