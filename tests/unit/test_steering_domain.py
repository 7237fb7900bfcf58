"""Steering, the pure part: which states each action moves from and to, which are no-ops,
what a promotion needs, and why a paused rollout's upgrades wait."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from rollout.domain.holds import Hold, HoldKind
from rollout.domain.planning import (
    PromotionRefused,
    RolloutView,
    StagePlan,
    UpgradeView,
    end_soak,
    plan,
)
from rollout.domain.states import (
    RolloutState,
    Steer,
    SteeringRefused,
    UpgradeState,
    check_upgrade,
    steer,
)

R = RolloutState
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
STAGES = [StagePlan("canary", soak=timedelta(hours=1)), StagePlan("production", promote_share=0.5)]


@pytest.mark.parametrize(
    ("action", "current", "expected"),
    [
        (Steer.PAUSE, R.RUNNING, R.PAUSED),
        (Steer.PAUSE, R.PAUSED, None),
        (Steer.RESUME, R.PAUSED, R.RUNNING),
        (Steer.RESUME, R.RUNNING, None),
        (Steer.ABORT, R.RUNNING, R.FAILING),
        (Steer.ABORT, R.PAUSED, R.FAILING),
        (Steer.ABORT, R.FAILING, None),
        (Steer.ABORT, R.FAILED, None),
        (Steer.RETRY, R.FAILED, R.FAILED),
        (Steer.PROMOTE, R.RUNNING, R.RUNNING),
    ],
)
def test_allowed_moves_and_no_ops(
    action: Steer, current: RolloutState, expected: RolloutState | None
) -> None:
    assert steer(current, action) is expected


ALLOWED = {
    Steer.PAUSE: {R.RUNNING, R.PAUSED},
    Steer.RESUME: {R.RUNNING, R.PAUSED},
    Steer.ABORT: {R.RUNNING, R.PAUSED, R.FAILING, R.FAILED},
    Steer.RETRY: {R.FAILED},
    Steer.PROMOTE: {R.RUNNING},
}


@pytest.mark.parametrize(
    ("action", "current"),
    [(a, s) for a, allowed in ALLOWED.items() for s in RolloutState if s not in allowed],
)
def test_everything_else_is_refused_with_a_reason(action: Steer, current: RolloutState) -> None:
    with pytest.raises(SteeringRefused, match=rf"^rollout 7 is {current}: only an? .+ can be"):
        steer(current, action, "rollout 7")


def test_a_pause_may_take_back_an_upgrade_that_has_not_started() -> None:
    check_upgrade(UpgradeState.READY, UpgradeState.PENDING)


def _views(*states: tuple[int, UpgradeState]) -> list[UpgradeView]:
    return [UpgradeView(i, f"env-{i}", stage, state) for i, (stage, state) in enumerate(states)]


def test_promotion_ends_the_soak_now() -> None:
    upgrades = _views((0, UpgradeState.SUCCEEDED), (1, UpgradeState.PENDING))
    rollout = RolloutView(R.RUNNING, 0, NOW - timedelta(minutes=5))
    passed_at = end_soak(rollout, STAGES, upgrades, NOW)
    assert passed_at == NOW - timedelta(hours=1)
    decided = plan(RolloutView(R.RUNNING, 0, passed_at), STAGES, upgrades, {}, NOW)
    assert decided.stage_index == 1 and decided.start == [1]


def test_promotion_needs_the_stage_passed() -> None:
    upgrades = _views((0, UpgradeState.VERIFYING), (0, UpgradeState.SUCCEEDED))
    with pytest.raises(PromotionRefused, match="stage canary has not passed: 1 of 2"):
        end_soak(RolloutView(R.RUNNING, 0, None), STAGES, upgrades, NOW)
    # A share below one: enough environments passed is enough.
    upgrades = _views((1, UpgradeState.SUCCEEDED), (1, UpgradeState.DEPLOYING))
    assert end_soak(RolloutView(R.RUNNING, 1, None), STAGES, upgrades, NOW) == NOW


def test_a_paused_rollout_says_why_its_upgrades_wait() -> None:
    upgrades = _views((0, UpgradeState.PENDING))
    paused = RolloutView(R.PAUSED, 0, None, "paused by operator: change freeze")
    decided = plan(paused, STAGES, upgrades, {}, NOW)
    why = "paused by operator: change freeze"
    assert decided.holds == {0: Hold(HoldKind.PAUSED, "", f"rollout paused: {why}")}
