"""One step of an upgrade: look at its row, do the one piece of I/O its state calls for
(outside any transaction), then write the outcome back if the claim is still ours."""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any

from sqlalchemy import select, update
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
from rollout.drivers import DeployPhase, DeployRequest, Driver, driver_for
from rollout.engine.dispatch import Nudge
from rollout.engine.entry import admit
from rollout.engine.outbox import SAME_FACTS, address
from rollout.engine.progress import (
    halt,
    install,
    lock_rollout,
    replan,
    uninstall,
    wake_dependents,
    wake_waiting,
)
from rollout.engine.runtime import Runtime
from rollout.gates import GateContext, measure, policy_of
from rollout.observability import events
from rollout.store.database import is_postgresql, reading, transaction
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


def deploy_key(upgrade: Upgrade, rollback: bool = False) -> str:
    return f"upgrade-{upgrade.id}-rollback" if rollback else f"upgrade-{upgrade.id}"


def step(runtime: Runtime, upgrade_id: int, claim: int) -> None:
    """Move one upgrade as far as it can go now: a step whose next step is due at once (the
    rollback after a failure, above all) goes on here instead of queueing behind others."""
    next_claim: int | None = claim
    while next_claim is not None:
        next_claim = _step_once(runtime, upgrade_id, next_claim)


def _step_once(runtime: Runtime, upgrade_id: int, claim: int) -> int | None:
    with reading(runtime.database_url) as session:
        row = session.execute(
            select(Upgrade, Rollout)
            .join(Rollout, Rollout.id == Upgrade.rollout_id)
            .where(Upgrade.id == upgrade_id, Upgrade.claim == claim)
        ).first()
        if row is None or UpgradeState(row.Upgrade.state).final:
            return None  # a duplicate or stale nudge: someone else moved this row
        upgrade, rollout = row.Upgrade, row.Rollout
        state = UpgradeState(upgrade.state)
        taken = _measurements(session, upgrade) if state is UpgradeState.VERIFYING else []
        installed = (
            session.get(Installation, (upgrade.environment, upgrade.service))
            if state is UpgradeState.READY
            else None
        )
        session.expunge_all()

    with events.stepping(upgrade, rollout):
        return _step_in_hand(runtime, upgrade, rollout, claim, state, taken, installed)


def _step_in_hand(
    runtime: Runtime,
    upgrade: Upgrade,
    rollout: Rollout,
    claim: int,
    state: UpgradeState,
    taken: list[Measurement],
    installed: Installation | None,
) -> int | None:
    upgrade_id = upgrade.id
    driver = driver_for(upgrade.driver, runtime.simulator_url, runtime.database_url)
    now = runtime.now()
    try:
        if state is UpgradeState.READY:
            # An air-gapped environment lets in only an artifact that passed its check.
            admitted = admit(runtime, upgrade, rollout, claim)
            if admitted is None:
                return None
            claim, blocked = admitted
            now = runtime.now()  # the check may have taken minutes
            if blocked is not None:
                outcome = Outcome(UpgradeState.BLOCKED, reason=blocked)
                return _apply(runtime, upgrade.rollout_id, upgrade_id, claim, outcome, now)
            taken_claim = _take_for_deploy(runtime, upgrade, claim, installed, now)
            if taken_claim is None:
                return None  # called off (halted, superseded) before it touched the environment
            claim = taken_claim
            driver.start(
                DeployRequest(
                    deploy_key(upgrade), upgrade.environment, upgrade.service, upgrade.to_version
                )
            )
        outcome = _act(upgrade, rollout, driver, taken, now)
    except Exception as error:  # the driver or a gate broke: try again after a pause
        log.warning("upgrade %s step in %s failed: %s", upgrade_id, upgrade.state, error)
        outcome = Outcome(
            UpgradeState(upgrade.state),
            due_in=_poll(upgrade),
            reason=f"retrying: {error}",
        )
        started = upgrade.deploy_started_at
        if (
            upgrade.state == UpgradeState.DEPLOYING
            and started
            and now - started > _timeout(upgrade)
        ):
            # A driver that never answers (a hung agent) must not hold the upgrade forever.
            outcome = _roll_back(f"deploy did not finish within {_timeout(upgrade)}: {error}")
    return _apply(runtime, upgrade.rollout_id, upgrade_id, claim, outcome, now)


def _take_for_deploy(
    runtime: Runtime, upgrade: Upgrade, claim: int, installed: Installation | None, now: datetime
) -> int | None:
    """Commit READY -> DEPLOYING before the driver is asked, so that a rollout halted in the
    meantime either cancels the upgrade first or finds it deploying: never both."""
    with transaction(runtime.database_url) as session:
        taken = session.execute(
            update(Upgrade)
            .where(
                Upgrade.id == upgrade.id,
                Upgrade.claim == claim,
                Upgrade.state == UpgradeState.READY,
            )
            .values(
                state=UpgradeState.DEPLOYING,
                claim=claim + 1,
                deploy_started_at=now,
                from_version=installed.version if installed else None,
                due_at=now + runtime.lease,
            )
        )
        if taken.rowcount != 1:  # type: ignore[attr-defined]
            return None
    upgrade.state, upgrade.deploy_started_at = UpgradeState.DEPLOYING, now
    upgrade.from_version = installed.version if installed else None
    return claim + 1


def _poll(upgrade: Upgrade) -> timedelta:
    return timedelta(seconds=upgrade.driver.get("poll_interval_s", 1.0))


def _timeout(upgrade: Upgrade) -> timedelta:
    return timedelta(seconds=upgrade.driver.get("deploy_timeout_s", 600.0))


def _measurements(session: Session, upgrade: Upgrade) -> list[Measurement]:
    return list(
        session.execute(
            select(Measurement).where(Measurement.upgrade_id == upgrade.id).order_by(Measurement.id)
        ).scalars()
    )


def _act(
    upgrade: Upgrade, rollout: Rollout, driver: Driver, taken: list[Measurement], now: datetime
) -> Outcome:
    state = UpgradeState(upgrade.state)
    if state is UpgradeState.DEPLOYING:
        return _deploying(upgrade, rollout, driver, now)
    if state is UpgradeState.VERIFYING:
        return _verify(upgrade, rollout, driver, taken, now)
    if state is UpgradeState.ROLLING_BACK:
        return _rolling_back(upgrade, driver, now)
    raise AssertionError(f"no step for an upgrade in state {state}")


def _deploying(upgrade: Upgrade, rollout: Rollout, driver: Driver, now: datetime) -> Outcome:
    status = driver.status(deploy_key(upgrade))
    if status.phase is DeployPhase.SUCCEEDED:
        upgrade.verify_started_at = now
        outcome = _verify(upgrade, rollout, driver, [], now)
        outcome.via.insert(0, UpgradeState.VERIFYING)
        outcome.values["verify_started_at"] = now
        return outcome
    if status.phase is DeployPhase.FAILED:
        return _roll_back(f"deploy failed: {status.message}")
    assert upgrade.deploy_started_at is not None
    timed_out = now - upgrade.deploy_started_at > _timeout(upgrade)
    if status.phase is DeployPhase.UNKNOWN and not timed_out:
        # Taken for deploy, but its worker died before asking the driver: ask now. The key
        # is the same, so however many ask, it is one deploy.
        request = DeployRequest(
            deploy_key(upgrade), upgrade.environment, upgrade.service, upgrade.to_version
        )
        driver.start(request)
        return Outcome(UpgradeState.DEPLOYING, due_in=_poll(upgrade))
    if timed_out:
        return _roll_back(f"deploy did not finish within {_timeout(upgrade)}")
    return Outcome(UpgradeState.DEPLOYING, due_in=_poll(upgrade))


def _roll_back(reason: str, gate: str | None = None) -> Outcome:
    return Outcome(UpgradeState.ROLLING_BACK, due_in=timedelta(0), reason=reason, failed_gate=gate)


def _verify(
    upgrade: Upgrade, rollout: Rollout, driver: Driver, taken: list[Measurement], now: datetime
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
        upgrade.service, upgrade.to_version, upgrade.environment, upgrade.stage, driver
    )
    new: list[tuple[str, verdicts.Measurement]] = []
    results = []
    for spec in rollout.plan["gates"]:
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
    runtime: Runtime, rollout_id: int, upgrade_id: int, claim: int, outcome: Outcome, now: datetime
) -> int | None:
    """Write the outcome if the claim is still ours; return the claim to go on with when the
    next step is due at once."""
    nudges: list[Nudge] = []
    go_on: int | None = None
    with transaction(runtime.database_url) as session:
        rollout = lock_rollout(session, rollout_id, runtime.database_url)
        upgrade = session.get(
            Upgrade, upgrade_id, with_for_update=is_postgresql(runtime.database_url)
        )
        if rollout is None or upgrade is None or upgrade.claim != claim:
            return None  # the lease ran out and the row moved on without us
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
            nudges += _consequences(session, rollout, upgrade, before, outcome, now, runtime)
        traceparent = rollout.traceparent
    events.moved(traceparent, upgrade, before, outcome.state, now, recalled=outcome.recalled)
    if outcome.state.final:
        # After the commit, in a transaction of its own: it locks other rollouts, and holding
        # ours meanwhile could deadlock with theirs. If it is lost, their recheck finds it.
        wake_waiting(runtime, upgrade.service, rollout_id)
    if outcome.state in (UpgradeState.SUCCEEDED, UpgradeState.ROLLED_BACK):
        # The installed version changed: upgrades of other services requiring it may start.
        wake_dependents(runtime, upgrade.environment, upgrade.service)
    runtime.dispatcher.send(nudges)
    return go_on


def _consequences(
    session: Session,
    rollout: Rollout,
    upgrade: Upgrade,
    before: UpgradeState,
    outcome: Outcome,
    now: datetime,
    runtime: Runtime,
) -> list[Nudge]:
    """What an upgrade's new state means for its rollout, its release and the on-call."""
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
        return []  # deploying or verifying: the plan counts them alike, nothing to re-plan
    return replan(session, rollout, runtime)


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
    severities: dict[str, str] = {s["name"]: s["severity"] for s in rollout.plan["stages"]}
    severity = "P0" if kind is PageKind.ROLLBACK_FAILED else severities[upgrade.stage]
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
    address(session, page, rollout.plan.get("paging", {}), now)
    operations = rollout.plan.get("operations")
    if operations and upgrade.environment in rollout.plan.get("air_gapped", []):
        # The NOC has hands on the air-gapped network: it gets its own page of the same facts.
        noc = Page(
            **{c: getattr(page, c) for c in SAME_FACTS},
            dedup_key=f"{key}/noc",
            team=operations["team"],
            state="open",
            created_at=now,
        )
        session.add(noc)
        address(session, noc, operations, now)
