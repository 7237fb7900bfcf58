"""The CI contract, the pure part: a rollout's state and holds against a deadline make the
exit code of `rollout status` and its one line why."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from rollout.domain.holds import Hold, HoldKind
from rollout.domain.states import RolloutState
from rollout.domain.verdict import HeldUpgrades, Outcome, Progress, judge

R = RolloutState
NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
DEADLINE = NOW + timedelta(minutes=30)


def _held(kind: HoldKind, clears_at: datetime | None, *envs: str) -> HeldUpgrades:
    return HeldUpgrades(Hold(kind, "x", f"{kind} text"), envs or ("prod-1",), clears_at)


def _progress(state: RolloutState, *holds: HeldUpgrades, reason: str | None = None) -> Progress:
    return Progress(state, "canary", 2, 6, reason, holds)


@pytest.mark.parametrize(
    ("state", "outcome", "settled"),
    [
        (R.SUCCEEDED, Outcome.SUCCEEDED, True),
        (R.FAILED, Outcome.FAILED, True),
        (R.SUPERSEDED, Outcome.FAILED, True),
        # Halted: the outcome is known, but its rollbacks are still to settle.
        (R.FAILING, Outcome.FAILED, False),
        (R.SUPERSEDING, Outcome.FAILED, False),
        (R.RUNNING, Outcome.IN_PROGRESS, False),
        (R.PAUSED, Outcome.IN_PROGRESS, False),
    ],
)
def test_each_state_has_its_exit_code(state: RolloutState, outcome: Outcome, settled: bool) -> None:
    judged = judge(_progress(state, reason="why so"), DEADLINE)
    assert (judged.outcome, judged.settled) == (outcome, settled)
    assert judged.why.startswith(str(state))
    if state is not R.SUCCEEDED and state.halted:
        assert "why so" in judged.why


def test_the_exit_codes_are_the_documented_numbers() -> None:
    assert [int(o) for o in Outcome] == [0, 1, 2, 3, 4]
    assert Outcome.IN_PROGRESS.label == "in_progress"


def test_a_window_that_opens_after_the_deadline_holds_it_at_once() -> None:
    days_away = _held(HoldKind.WINDOW, NOW + timedelta(days=3), "prod-1", "prod-2")
    judged = judge(_progress(R.RUNNING, days_away), DEADLINE)
    assert (judged.outcome, judged.settled) == (Outcome.HELD, True)
    assert judged.why == "held past the deadline: prod-1, prod-2: window text"


def test_a_window_that_opens_before_the_deadline_is_waited_for() -> None:
    soon = _held(HoldKind.WINDOW, NOW + timedelta(minutes=5))
    judged = judge(_progress(R.RUNNING, soon), DEADLINE)
    assert (judged.outcome, judged.settled) == (Outcome.IN_PROGRESS, False)
    assert judged.why.endswith("prod-1: window text")
    # The same hold is past a shorter deadline.
    assert judge(_progress(R.RUNNING, soon), NOW + timedelta(minutes=1)).outcome is Outcome.HELD


def test_a_freeze_that_never_clears_into_a_window_and_a_recall_hold_it() -> None:
    never = _held(HoldKind.FREEZE, None)
    assert judge(_progress(R.RUNNING, never), DEADLINE).outcome is Outcome.HELD
    recalled = _held(HoldKind.RECALLED, None)
    assert judge(_progress(R.RUNNING, recalled), DEADLINE).outcome is Outcome.HELD


@pytest.mark.parametrize(
    "kind", [HoldKind.STAGE, HoldKind.PARALLELISM, HoldKind.BUSY, HoldKind.DEPENDENCY]
)
def test_holds_without_a_known_instant_are_waited_for(kind: HoldKind) -> None:
    judged = judge(_progress(R.RUNNING, _held(kind, None)), DEADLINE)
    assert (judged.outcome, judged.settled) == (Outcome.IN_PROGRESS, False)


def test_a_paused_rollout_waits_for_a_person_and_says_why() -> None:
    judged = judge(_progress(R.PAUSED, reason="change freeze"), DEADLINE)
    assert judged.outcome is Outcome.IN_PROGRESS
    assert judged.why.endswith("paused: change freeze")


def test_the_hold_named_is_the_one_that_clears_last_and_many_places_are_cut() -> None:
    late = _held(HoldKind.FREEZE, NOW + timedelta(days=9), "a", "b", "c", "d", "e")
    early = HeldUpgrades(Hold(HoldKind.WINDOW, "x", "early"), ("z",), NOW + timedelta(days=1))
    judged = judge(_progress(R.RUNNING, early, late), DEADLINE)
    assert judged.why == "held past the deadline: a, b, c and 2 more: freeze text"
    never = HeldUpgrades(Hold(HoldKind.WINDOW, "x", "never"), ("y",), None)
    assert judge(_progress(R.RUNNING, late, never), DEADLINE).why.endswith("y: never")


def test_a_final_state_wins_over_any_hold() -> None:
    held = _held(HoldKind.WINDOW, NOW + timedelta(days=3))
    assert judge(_progress(R.FAILED, held), DEADLINE).outcome is Outcome.FAILED
