"""The lifecycles of releases, rollouts and upgrades, and the transitions each allows."""

from __future__ import annotations

from enum import StrEnum


class ReleaseState(StrEnum):
    ACTIVE = "active"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SUPERSEDED = "superseded"
    RECALLED = "recalled"  # blocked everywhere, rolled off wherever it runs


class RolloutState(StrEnum):
    RUNNING = "running"
    PAUSED = "paused"  # an inconclusive gate waits for a human
    # Halted: no new upgrade starts, those in flight finish (or roll back) first.
    FAILING = "failing"
    SUPERSEDING = "superseding"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SUPERSEDED = "superseded"

    @property
    def final(self) -> bool:
        return self in _FINAL_ROLLOUT

    @property
    def halted(self) -> bool:
        return self in (RolloutState.FAILING, RolloutState.SUPERSEDING) or self.final

    def settled(self) -> RolloutState:
        """The final state a halted rollout reaches once nothing is in flight."""
        return _SETTLES_TO.get(self, self)


_FINAL_ROLLOUT = frozenset({RolloutState.SUCCEEDED, RolloutState.FAILED, RolloutState.SUPERSEDED})
_SETTLES_TO = {
    RolloutState.FAILING: RolloutState.FAILED,
    RolloutState.SUPERSEDING: RolloutState.SUPERSEDED,
}


class UpgradeState(StrEnum):
    PENDING = "pending"  # planned; the planner holds it back and records why
    READY = "ready"  # the planner let it start; the next step asks the driver to deploy
    DEPLOYING = "deploying"  # the driver is deploying; its status is polled
    VERIFYING = "verifying"  # gates are measuring
    AWAITING_DECISION = "awaiting_decision"  # a gate was inconclusive
    ROLLING_BACK = "rolling_back"  # back to the last healthy version: no gates, no ramp
    SUCCEEDED = "succeeded"
    ROLLED_BACK = "rolled_back"
    ROLLBACK_FAILED = "rollback_failed"
    CANCELLED = "cancelled"  # never started: its rollout halted
    SUPERSEDED = "superseded"  # never started: a newer release took its place
    # Never started: its artifact failed the check before entering an air-gapped environment.
    BLOCKED = "blocked"
    # Never started: an operator left it out of its stage (`rollout skip`), so the stage's
    # share is counted without it.
    SKIPPED = "skipped"

    @property
    def final(self) -> bool:
        return self in _FINAL_UPGRADE

    @property
    def started(self) -> bool:
        return self not in (UpgradeState.PENDING, UpgradeState.READY) and self not in (
            UpgradeState.CANCELLED,
            UpgradeState.SUPERSEDED,
            UpgradeState.BLOCKED,
            UpgradeState.SKIPPED,
        )

    @property
    def in_flight(self) -> bool:
        return not self.final and self is not UpgradeState.PENDING


_FINAL_UPGRADE = frozenset(
    {
        UpgradeState.SUCCEEDED,
        UpgradeState.ROLLED_BACK,
        UpgradeState.ROLLBACK_FAILED,
        UpgradeState.CANCELLED,
        UpgradeState.SUPERSEDED,
        UpgradeState.BLOCKED,
        UpgradeState.SKIPPED,
    }
)

_U = UpgradeState
UPGRADE_TRANSITIONS: dict[UpgradeState, frozenset[UpgradeState]] = {
    _U.PENDING: frozenset({_U.READY, _U.CANCELLED, _U.SUPERSEDED, _U.SKIPPED}),
    # A READY upgrade has not touched its environment yet, so it can still be called off,
    # or taken back to PENDING when an operator pauses its rollout.
    _U.READY: frozenset(
        {_U.DEPLOYING, _U.PENDING, _U.CANCELLED, _U.SUPERSEDED, _U.BLOCKED, _U.SKIPPED}
    ),
    _U.DEPLOYING: frozenset({_U.VERIFYING, _U.ROLLING_BACK}),
    _U.VERIFYING: frozenset({_U.SUCCEEDED, _U.ROLLING_BACK, _U.AWAITING_DECISION}),
    _U.AWAITING_DECISION: frozenset({_U.SUCCEEDED, _U.ROLLING_BACK}),
    _U.ROLLING_BACK: frozenset({_U.ROLLED_BACK, _U.ROLLBACK_FAILED}),
    # A recall rolls a release off where it had succeeded: the one way out of a final state.
    _U.SUCCEEDED: frozenset({_U.ROLLING_BACK}),
}

_R = RolloutState
ROLLOUT_TRANSITIONS: dict[RolloutState, frozenset[RolloutState]] = {
    _R.RUNNING: frozenset({_R.PAUSED, _R.FAILING, _R.SUPERSEDING, _R.SUCCEEDED}),
    _R.PAUSED: frozenset({_R.RUNNING, _R.FAILING, _R.SUPERSEDING}),
    _R.FAILING: frozenset({_R.FAILED}),
    _R.SUPERSEDING: frozenset({_R.SUPERSEDED, _R.FAILING}),
}


class Steer(StrEnum):
    """What an operator may ask of a rollout."""

    PAUSE = "pause"
    RESUME = "resume"
    ABORT = "abort"
    RETRY = "retry"
    PROMOTE = "promote"
    SKIP = "skip"


class SteeringRefused(ValueError):
    """The rollout's state does not allow what was asked; the message says why."""


_States = frozenset[RolloutState]
# action -> (the states it moves from, the state it moves to, the states where it is a no-op)
_STEERING: dict[Steer, tuple[_States, RolloutState | None, _States]] = {
    Steer.PAUSE: (frozenset({_R.RUNNING}), _R.PAUSED, frozenset({_R.PAUSED})),
    Steer.RESUME: (frozenset({_R.PAUSED}), _R.RUNNING, frozenset({_R.RUNNING})),
    Steer.ABORT: (
        frozenset({_R.RUNNING, _R.PAUSED}),
        _R.FAILING,
        frozenset({_R.FAILING, _R.FAILED}),
    ),
    # Retry makes a new rollout; promote keeps the state and ends a soak.
    Steer.RETRY: (frozenset({_R.FAILED}), None, frozenset()),
    Steer.PROMOTE: (frozenset({_R.RUNNING}), None, frozenset()),
    # Skip leaves one environment out of its stage; the rollout's state stays.
    Steer.SKIP: (frozenset({_R.RUNNING, _R.PAUSED}), None, frozenset()),
}
_WHY_NOT: dict[Steer, str] = {
    Steer.PAUSE: "only a running rollout can be paused",
    Steer.RESUME: "only a paused rollout can be resumed",
    Steer.ABORT: "only a running or paused rollout can be aborted",
    Steer.RETRY: "only a failed rollout can be retried",
    Steer.PROMOTE: "only a running rollout can be promoted",
    Steer.SKIP: "only a running or paused rollout's environments can be skipped",
}


def steer(current: RolloutState, action: Steer, name: str = "the rollout") -> RolloutState | None:
    """The state `action` moves a rollout in `current` to (its own state for retry and
    promote); None when the action is a no-op there (pausing a paused rollout); refused with
    a one-line reason where it makes no sense."""
    allowed, target, no_op = _STEERING[action]
    if current in no_op:
        return None
    if current not in allowed:
        raise SteeringRefused(f"{name} is {current}: {_WHY_NOT[action]}")
    if target is None:
        return current
    check_rollout(current, target)
    return target


class TransitionError(RuntimeError):
    """A move the lifecycle does not allow: a bug, never a user mistake."""


def check_upgrade(current: UpgradeState, target: UpgradeState) -> None:
    if target not in UPGRADE_TRANSITIONS.get(current, frozenset()):
        raise TransitionError(f"upgrade cannot go from {current} to {target}")


def check_rollout(current: RolloutState, target: RolloutState) -> None:
    if target not in ROLLOUT_TRANSITIONS.get(current, frozenset()):
        raise TransitionError(f"rollout cannot go from {current} to {target}")
