"""One upgrade's step in hand: what its driver and its gates say now, as an Outcome;
no transaction is open while it asks them."""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from rollout.domain import gates as verdicts
from rollout.domain.states import UpgradeState
from rollout.drivers import DeployPhase, DeployRequest, Driver, probes_of
from rollout.gates import GateContext, Measurer, policy_of
from rollout.observability import events
from rollout.store.models import Measurement, Rollout, Upgrade

log = logging.getLogger(__name__)


@dataclass
class Outcome:
    """What a step learned; applied in one transaction, or dropped if the claim went stale."""

    state: UpgradeState
    due_in: timedelta | None = None  # None with a non-final state: wait for a human
    values: dict[str, datetime] = field(default_factory=dict)  # the row's times, by column
    measured: list[tuple[str, verdicts.Measurement]] = field(default_factory=list)  # (gate, m)
    via: list[UpgradeState] = field(default_factory=list)  # states passed through on the way
    reason: str | None = None
    failed_gate: str | None = None
    recalled: bool = False  # rolled off because its release was recalled: no halt, no page


ASKED_AGAIN = "the driver had not received this deploy (its worker died first): asked again"


def deploy_key(upgrade: Upgrade, rollback: bool = False) -> str:
    return f"upgrade-{upgrade.id}-rollback" if rollback else f"upgrade-{upgrade.id}"


@dataclass
class Claimed:
    upgrade: Upgrade
    rollout: Rollout
    claim: int
    taken: list[Measurement]
    deploy: bool  # taken for deploy just now: ask the driver to start it


def poll_interval(upgrade: Upgrade) -> timedelta:
    return upgrade.driver.poll_interval


def deploy_timeout(upgrade: Upgrade) -> timedelta:
    return upgrade.driver.deploy_timeout


def act(
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
        return roll_back(f"deploy failed: {status.message}")
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
            due_in=poll_interval(upgrade),
            values={"deploy_started_at": now},
            reason=ASKED_AGAIN,
        )
    if now - upgrade.deploy_started_at > deploy_timeout(upgrade):
        return roll_back(f"deploy did not finish within {deploy_timeout(upgrade)}")
    return Outcome(UpgradeState.DEPLOYING, due_in=poll_interval(upgrade))


def roll_back(reason: str, gate: str | None = None) -> Outcome:
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
        outcome = roll_back(overall.reason, gate=failed)
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
            UpgradeState.ROLLING_BACK,
            due_in=poll_interval(upgrade),
            values={"rollback_started_at": now},
        )
    status = driver.status(key)
    if status.phase is DeployPhase.SUCCEEDED:
        return Outcome(UpgradeState.ROLLED_BACK)
    if status.phase is DeployPhase.FAILED:
        return Outcome(UpgradeState.ROLLBACK_FAILED, reason=f"rollback failed: {status.message}")
    if now - upgrade.rollback_started_at > deploy_timeout(upgrade):
        return Outcome(
            UpgradeState.ROLLBACK_FAILED,
            reason=f"rollback did not finish within {deploy_timeout(upgrade)}",
        )
    return Outcome(UpgradeState.ROLLING_BACK, due_in=poll_interval(upgrade))
