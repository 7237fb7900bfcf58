"""The CI contract: where a rollout is and what holds it, judged against a deadline, as an
exit code and one line why (what `rollout status` exits with and the API's status answers)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum

from rollout.domain.holds import Hold, HoldKind
from rollout.domain.states import RolloutState


class Outcome(IntEnum):
    """The exit codes of `rollout status`, in the order docs/cli.md lists them."""

    SUCCEEDED = 0
    FAILED = 1  # failed, rolled back, aborted, superseded: final and not succeeded
    IN_PROGRESS = 2  # still moving (or waiting on a person) at the deadline
    HELD = 3  # a constraint holds it that will not clear before the deadline
    NOT_FOUND = 4

    @property
    def label(self) -> str:
        return self.name.lower()


# Constraints that clear at an instant the plan knows (or never): waiting past it is useless.
TIMED = frozenset({HoldKind.WINDOW, HoldKind.FREEZE})
# A recalled version is never let in again.
NEVER = frozenset({HoldKind.RECALLED})


@dataclass(frozen=True)
class HeldUpgrades:
    """Pending upgrades that wait for one reason, and when it clears by itself (None: no
    known instant: a person, another service, a stage, or never)."""

    hold: Hold
    environments: tuple[str, ...]
    clears_at: datetime | None


@dataclass(frozen=True)
class Progress:
    state: RolloutState
    stage: str
    done: int
    total: int
    reason: str | None
    holds: Sequence[HeldUpgrades] = ()


@dataclass(frozen=True)
class Judgement:
    outcome: Outcome
    why: str
    settled: bool  # waiting longer (up to the deadline) cannot change the outcome


def _blocks(held: HeldUpgrades, deadline: datetime) -> bool:
    if held.hold.kind in NEVER:
        return True
    if held.hold.kind not in TIMED:
        return False
    return held.clears_at is None or held.clears_at > deadline


def _where(environments: Sequence[str]) -> str:
    shown = ", ".join(environments[:3])
    more = len(environments) - 3
    return shown + (f" and {more} more" if more > 0 else "")


def judge(progress: Progress, deadline: datetime) -> Judgement:
    """The outcome of a rollout for a caller prepared to wait until `deadline`."""
    state, reason = progress.state, progress.reason
    why_not = reason or "no reason recorded"
    if state is RolloutState.SUCCEEDED:
        return Judgement(
            Outcome.SUCCEEDED,
            f"succeeded: {progress.done} of {progress.total} environments upgraded",
            True,
        )
    if state.final:
        return Judgement(Outcome.FAILED, f"{state}: {why_not}", True)
    if state.halted:
        # Halted rollouts only settle (roll back, cancel): the outcome is known already.
        return Judgement(
            Outcome.FAILED, f"{state} (will be {state.settled()} once settled): {why_not}", False
        )
    blocking = [h for h in progress.holds if _blocks(h, deadline)]
    if blocking:
        # The one that clears last says how long it would take; never clearing is last of all.
        last = max(blocking, key=lambda h: (h.clears_at is None, h.clears_at or deadline))
        return Judgement(
            Outcome.HELD,
            f"held past the deadline: {_where(last.environments)}: {last.hold.text}",
            True,
        )
    why = (
        f"{state} at stage {progress.stage}: "
        f"{progress.done} of {progress.total} environments upgraded"
    )
    if progress.holds:
        first = progress.holds[0]
        why += f"; {_where(first.environments)}: {first.hold.text}"
    elif state is RolloutState.PAUSED:
        why += f"; paused: {why_not}"
    return Judgement(Outcome.IN_PROGRESS, why, False)


def not_found(what: str) -> Judgement:
    return Judgement(Outcome.NOT_FOUND, f"no {what}", True)
