"""Planning: which upgrades of a rollout may start now, when a stage is promoted, and why
anything waits."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from rollout.domain.constraints import Constraints
from rollout.domain.holds import Hold, HoldKind
from rollout.domain.states import RolloutState, SteeringRefused, UpgradeState


@dataclass(frozen=True)
class StagePlan:
    """A stage as one rollout sees it (snapshotted from the fleet config at submit)."""

    name: str
    soak: timedelta = timedelta(0)
    promote_share: float = 1.0
    parallelism: int | None = None  # at most this many upgrades in flight; None: no limit
    parallelism_percent: float | None = None  # or a ramp: this share of the stage's environments

    def max_in_flight(self, environments: int) -> int:
        if self.parallelism is not None:
            return self.parallelism
        if self.parallelism_percent is not None:
            return max(1, math.floor(environments * self.parallelism_percent / 100))
        return max(environments, 1)

    def required(self, environments: int) -> int:
        """How many of `environments` (those counted: not skipped) must pass."""
        # A tiny epsilon: 0.7 * 10 is 7.000000000000001 in binary floating point.
        return math.ceil(self.promote_share * environments - 1e-9)


@dataclass(frozen=True)
class UpgradeView:
    id: int
    environment: str
    stage_index: int
    state: UpgradeState


@dataclass(frozen=True)
class RolloutView:
    state: RolloutState
    stage_index: int
    stage_passed_at: datetime | None
    reason: str | None = None  # why it is paused or halted


@dataclass
class Plan:
    """What the planner decided; the engine writes it back in one transaction."""

    state: RolloutState
    stage_index: int
    stage_passed_at: datetime | None
    start: list[int] = field(default_factory=list)
    holds: dict[int, Hold] = field(default_factory=dict)  # upgrade id -> why it waits
    cancel: list[int] = field(default_factory=list)  # not started, rollout halted
    due_at: datetime | None = None  # plan again then (a soak ends)
    promoted: list[str] = field(default_factory=list)  # stages entered, in order


def _at(when: datetime) -> str:
    return when.strftime("%H:%M:%S UTC")


def plan(
    rollout: RolloutView,
    stages: Sequence[StagePlan],
    upgrades: Sequence[UpgradeView],
    busy: Mapping[str, Hold],
    now: datetime,
    constraints: Constraints | None = None,
) -> Plan:
    """Decide the next moves of one rollout.

    `busy` maps an environment to the hold another rollout of the same service still holds
    it (its upgrade there is in flight): one upgrade per service and environment at a time.
    `constraints` (windows, freezes, dependencies, recall) decide whether a pending upgrade
    may start; a held one is planned again when its verdict says it may.
    """
    result = Plan(rollout.state, rollout.stage_index, rollout.stage_passed_at)
    if rollout.state.final:
        return result
    if rollout.state.halted:
        result.cancel = [u.id for u in upgrades if not u.state.started and not u.state.final]
        if all(u.state.final or u.id in result.cancel for u in upgrades):
            result.state = rollout.state.settled()
        return result

    by_stage: dict[int, list[UpgradeView]] = {i: [] for i in range(len(stages))}
    for upgrade in upgrades:
        by_stage[upgrade.stage_index].append(upgrade)

    # Promote through every stage that has passed and soaked (an empty stage passes at once).
    while True:
        index = result.stage_index
        stage, members = stages[index], counted(by_stage[index])
        passed = sum(u.state is UpgradeState.SUCCEEDED for u in members)
        if passed < stage.required(len(members)):
            break
        if result.stage_passed_at is None:
            result.stage_passed_at = now
        soaked_at = result.stage_passed_at + (stage.soak if members else timedelta(0))
        if now < soaked_at:
            result.due_at = soaked_at
            break
        if index + 1 == len(stages):
            if all(u.state.final for u in upgrades):
                result.state = RolloutState.SUCCEEDED
            break
        result.stage_index, result.stage_passed_at = index + 1, None
        result.promoted.append(stages[index + 1].name)

    if rollout.state is RolloutState.PAUSED:
        why = rollout.reason or "no reason given"
        paused = Hold(HoldKind.PAUSED, "", f"rollout paused: {why}")
        for upgrade in upgrades:
            if upgrade.state is UpgradeState.PENDING:
                result.holds[upgrade.id] = paused
        return result

    current = result.stage_index
    for index, members in by_stage.items():
        if index <= current:
            # A promoted stage may still have environments left to start (promote_share < 1).
            pending = [u for u in members if u.state is UpgradeState.PENDING]
            _admit(stages[index], members, pending, busy, result, now, constraints)
        else:
            hold = _waiting_for(stages, by_stage, current, result, now)
            for upgrade in members:
                if upgrade.state is UpgradeState.PENDING:
                    result.holds[upgrade.id] = hold
    return result


def counted(members: Sequence[UpgradeView]) -> list[UpgradeView]:
    """A stage's environments its share is counted over: all but those an operator skipped."""
    return [u for u in members if u.state is not UpgradeState.SKIPPED]


class PromotionRefused(SteeringRefused):
    """The current stage cannot be promoted yet; the message says why."""


def end_soak(
    rollout: RolloutView,
    stages: Sequence[StagePlan],
    upgrades: Sequence[UpgradeView],
    now: datetime,
) -> datetime:
    """The `stage_passed_at` that makes the current stage's soak over at `now`: an operator
    skips the rest of a soak, never the stage's required share of passed environments."""
    stage = stages[rollout.stage_index]
    members = counted([u for u in upgrades if u.stage_index == rollout.stage_index])
    passed = sum(u.state is UpgradeState.SUCCEEDED for u in members)
    required = stage.required(len(members))
    if passed < required:
        raise PromotionRefused(
            f"stage {stage.name} has not passed: {passed} of {required} environments passed"
        )
    return now - stage.soak


# An environment held by another rollout is looked at again this often, even if the nudge
# that says it came free is lost.
BUSY_RECHECK = timedelta(seconds=5)
# An upgrade waiting for another service's version is woken when that service's installation
# changes in its environment; this recheck only bounds the wait if that wake is lost.
DEPENDENCY_RECHECK = timedelta(seconds=30)


def _due(result: Plan, when: datetime) -> None:
    result.due_at = when if result.due_at is None else min(result.due_at, when)


def _admit(
    stage: StagePlan,
    members: Sequence[UpgradeView],
    pending: Sequence[UpgradeView],
    busy: Mapping[str, Hold],
    result: Plan,
    now: datetime,
    constraints: Constraints | None,
) -> None:
    limit = stage.max_in_flight(len(members))
    in_flight = sum(u.state.in_flight for u in members)
    for upgrade in pending:
        verdict = None if constraints is None else constraints.verdict(upgrade.environment, now)
        if upgrade.environment in busy:
            result.holds[upgrade.id] = busy[upgrade.environment]
            _due(result, now + BUSY_RECHECK)
        elif verdict is not None and verdict.hold is not None:
            result.holds[upgrade.id] = verdict.hold
            # The ticker plans again at the instant the verdict names: no busy loop.
            _due(result, verdict.until or now + DEPENDENCY_RECHECK)
        elif in_flight < limit:
            result.start.append(upgrade.id)
            in_flight += 1
        else:
            text = f"stage {stage.name} parallelism: {in_flight} of {limit} upgrades in flight"
            result.holds[upgrade.id] = Hold(HoldKind.PARALLELISM, stage.name, text)


def _waiting_for(
    stages: Sequence[StagePlan],
    by_stage: Mapping[int, Sequence[UpgradeView]],
    current: int,
    result: Plan,
    now: datetime,
) -> Hold:
    stage, members = stages[current], counted(by_stage[current])
    passed = sum(u.state is UpgradeState.SUCCEEDED for u in members)
    required = stage.required(len(members))
    if passed >= required and result.due_at is not None:
        text = f"stage {stage.name} soaking until {_at(result.due_at)}"
    else:
        text = f"waiting for stage {stage.name}: {passed} of {required} environments passed"
    return Hold(HoldKind.STAGE, stage.name, text)
