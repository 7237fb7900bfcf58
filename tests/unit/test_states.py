"""The lifecycles: which moves are allowed, what is final, what a halted rollout becomes."""

from __future__ import annotations

import pytest

from rollout.domain.states import (
    ROLLOUT_TRANSITIONS,
    UPGRADE_TRANSITIONS,
    RolloutState,
    TransitionError,
    UpgradeState,
    check_rollout,
    check_upgrade,
)

U, R = UpgradeState, RolloutState


def test_final_states_have_no_way_out_but_a_recall() -> None:
    for state in U:
        if state.final and state is not U.SUCCEEDED:
            assert state not in UPGRADE_TRANSITIONS
    # A recall rolls a release off where it succeeded, and only that.
    assert UPGRADE_TRANSITIONS[U.SUCCEEDED] == {U.ROLLING_BACK}
    for state in R:
        if state.final:
            assert state not in ROLLOUT_TRANSITIONS


def test_every_non_final_upgrade_can_reach_a_final_state() -> None:
    for start in U:
        seen, frontier = {start}, [start]
        while frontier:
            for nxt in UPGRADE_TRANSITIONS.get(frontier.pop(), frozenset()):
                if nxt not in seen:
                    seen.add(nxt)
                    frontier.append(nxt)
        assert any(s.final for s in seen), start


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (U.PENDING, U.READY),
        (U.READY, U.DEPLOYING),
        (U.DEPLOYING, U.VERIFYING),
        (U.VERIFYING, U.ROLLING_BACK),
        (U.ROLLING_BACK, U.ROLLED_BACK),
        (U.VERIFYING, U.AWAITING_DECISION),
    ],
)
def test_the_happy_and_the_failing_paths(current: UpgradeState, target: UpgradeState) -> None:
    check_upgrade(current, target)


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (U.PENDING, U.DEPLOYING),  # the planner must let it start first
        (U.DEPLOYING, U.CANCELLED),  # an environment touched is never simply cancelled
        (U.SUCCEEDED, U.VERIFYING),
        (U.ROLLED_BACK, U.SUCCEEDED),
        (U.ROLLING_BACK, U.VERIFYING),  # no gates on the way back
    ],
)
def test_forbidden_moves_raise(current: UpgradeState, target: UpgradeState) -> None:
    with pytest.raises(TransitionError):
        check_upgrade(current, target)


def test_halted_rollouts_settle_to_their_final_state() -> None:
    assert R.FAILING.settled() is R.FAILED
    assert R.SUPERSEDING.settled() is R.SUPERSEDED
    assert R.RUNNING.settled() is R.RUNNING
    assert R.FAILING.halted and R.SUPERSEDING.halted and not R.PAUSED.halted
    check_rollout(R.SUPERSEDING, R.FAILING)  # an old release may still fail where it runs
    with pytest.raises(TransitionError):
        check_rollout(R.FAILED, R.RUNNING)


def test_in_flight_means_claimed_and_not_final() -> None:
    assert {s for s in U if s.in_flight} == {
        U.READY,
        U.DEPLOYING,
        U.VERIFYING,
        U.AWAITING_DECISION,
        U.ROLLING_BACK,
    }
