"""The planner: what may start, when a stage is promoted, and why the rest waits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from rollout.domain.holds import Hold, HoldKind
from rollout.domain.planning import BUSY_RECHECK, Plan, RolloutView, StagePlan, UpgradeView, plan
from rollout.domain.states import RolloutState, UpgradeState

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
STAGES = [
    StagePlan("canary", soak=timedelta(seconds=30)),
    StagePlan("staging", promote_share=0.5),
    StagePlan("production", parallelism=2),
]


def _upgrades(*stage_states: list[UpgradeState]) -> list[UpgradeView]:
    views, next_id = [], 1
    for stage, states in enumerate(stage_states):
        for state in states:
            views.append(UpgradeView(next_id, f"env-{next_id}", stage, state))
            next_id += 1
    return views


def _plan(
    upgrades: list[UpgradeView],
    state: RolloutState = RolloutState.RUNNING,
    stage: int = 0,
    passed_at: datetime | None = None,
    busy: dict[str, Hold] | None = None,
) -> Plan:
    return plan(RolloutView(state, stage, passed_at), STAGES, upgrades, busy or {}, NOW)


P, S = UpgradeState.PENDING, UpgradeState.SUCCEEDED


def test_a_new_rollout_starts_its_first_stage_only() -> None:
    upgrades = _upgrades([P, P], [P], [P])
    decided = _plan(upgrades)
    assert decided.start == [1, 2]
    assert decided.holds[3] == Hold(
        HoldKind.STAGE, "canary", "waiting for stage canary: 0 of 2 environments passed"
    )


def test_a_passed_stage_soaks_before_promotion() -> None:
    upgrades = _upgrades([S, S], [P], [P])
    decided = _plan(upgrades)
    assert decided.stage_index == 0
    assert decided.stage_passed_at == NOW
    assert decided.due_at == NOW + timedelta(seconds=30)
    assert decided.start == []
    assert decided.holds[3] == Hold(
        HoldKind.STAGE, "canary", "stage canary soaking until 12:00:30 UTC"
    )


def test_after_the_soak_the_next_stage_starts() -> None:
    upgrades = _upgrades([S, S], [P, P], [P])
    decided = _plan(upgrades, passed_at=NOW - timedelta(seconds=31))
    assert decided.stage_index == 1
    assert decided.promoted == ["staging"]
    assert decided.start == [3, 4]


def test_promote_share_lets_a_stage_pass_with_some_environments_left() -> None:
    upgrades = _upgrades([S], [S, UpgradeState.VERIFYING], [P, P, P])
    decided = _plan(upgrades, stage=1)
    # staging needs half of 2: promoted at once (no soak), production ramps at parallelism 2
    assert decided.stage_index == 2
    assert decided.start == [4, 5]
    assert decided.holds[6] == Hold(
        HoldKind.PARALLELISM,
        "production",
        "stage production parallelism: 2 of 2 upgrades in flight",
    )


def test_the_last_stage_succeeds_only_when_everything_is_final() -> None:
    upgrades = _upgrades([S], [S], [S, UpgradeState.VERIFYING])
    assert _plan(upgrades, stage=2).state is RolloutState.RUNNING
    upgrades = _upgrades([S], [S], [S, S])
    assert _plan(upgrades, stage=2).state is RolloutState.SUCCEEDED


def test_a_busy_environment_waits_with_the_reason() -> None:
    upgrades = _upgrades([P, P], [], [])
    busy = Hold(HoldKind.BUSY, "7", "environment busy: rollout 7")
    decided = _plan(upgrades, busy={"env-1": busy})
    assert decided.start == [2]
    assert decided.holds[1] == busy
    assert decided.due_at == NOW + BUSY_RECHECK  # looked at again even if no nudge comes


def test_a_halted_rollout_cancels_what_has_not_started_and_settles_later() -> None:
    upgrades = _upgrades([UpgradeState.ROLLING_BACK, UpgradeState.READY], [P], [P])
    decided = _plan(upgrades, state=RolloutState.FAILING)
    assert decided.start == []
    assert sorted(decided.cancel) == [2, 3, 4]
    assert decided.state is RolloutState.FAILING
    upgrades = _upgrades([UpgradeState.ROLLED_BACK], [P], [P])
    assert _plan(upgrades, state=RolloutState.FAILING).state is RolloutState.FAILED


def test_a_paused_rollout_starts_nothing() -> None:
    upgrades = _upgrades([UpgradeState.AWAITING_DECISION, P], [P], [])
    decided = _plan(upgrades, state=RolloutState.PAUSED)
    assert decided.start == []
    assert decided.holds[2].kind is HoldKind.PAUSED
    assert decided.holds[2].text.startswith("rollout paused")


def test_empty_stages_pass_through() -> None:
    stages = [StagePlan("canary"), StagePlan("staging", soak=timedelta(hours=1)), StagePlan("p")]
    upgrades = [UpgradeView(1, "c", 0, S), UpgradeView(2, "p", 2, P)]
    decided = plan(RolloutView(RolloutState.RUNNING, 0, None), stages, upgrades, {}, NOW)
    assert decided.stage_index == 2
    assert decided.start == [2]


def test_ramp_in_percent() -> None:
    stage = StagePlan("production", parallelism_percent=25)
    assert stage.max_in_flight(10) == 2
    assert stage.max_in_flight(2) == 1
    assert StagePlan("x", promote_share=0.7).required(10) == 7


STARTED = [s for s in UpgradeState if s.in_flight] + [S, UpgradeState.ROLLED_BACK]


@given(
    stages=st.lists(
        st.builds(
            StagePlan,
            name=st.sampled_from(["a", "b", "c"]),
            soak=st.timedeltas(timedelta(0), timedelta(minutes=5)),
            promote_share=st.floats(0.01, 1.0),
            parallelism=st.one_of(st.none(), st.integers(1, 5)),
        ),
        min_size=1,
        max_size=4,
    ),
    data=st.data(),
)
def test_planner_never_oversteps(stages: list[StagePlan], data: st.DataObject) -> None:
    upgrades = []
    for i in range(data.draw(st.integers(0, 15))):
        upgrades.append(
            UpgradeView(
                i,
                f"env-{i}",
                data.draw(st.integers(0, len(stages) - 1)),
                data.draw(st.sampled_from([P, *STARTED])),
            )
        )
    state = data.draw(
        st.sampled_from([RolloutState.RUNNING, RolloutState.PAUSED, RolloutState.FAILING])
    )
    stage_index = data.draw(st.integers(0, len(stages) - 1))
    busy = {
        u.environment: Hold(HoldKind.BUSY, "1", "busy")
        for u in upgrades
        if data.draw(st.booleans())
    }
    decided = plan(RolloutView(state, stage_index, None), stages, upgrades, busy, NOW)

    by_id = {u.id: u for u in upgrades}
    started = [by_id[i] for i in decided.start]
    assert all(u.state is P for u in started), "only pending upgrades start"
    assert all(u.environment not in busy for u in started), "never in a busy environment"
    assert all(u.stage_index <= decided.stage_index for u in started), "never past the stage"
    assert decided.stage_index >= stage_index, "stages never go backwards"
    if state is not RolloutState.RUNNING:
        assert started == [], "a paused or halted rollout starts nothing"
    for index, stage in enumerate(stages):
        members = [u for u in upgrades if u.stage_index == index]
        in_flight = sum(u.state.in_flight for u in members) + sum(
            u.stage_index == index for u in started
        )
        already = sum(u.state.in_flight for u in members)
        assert in_flight <= max(stage.max_in_flight(len(members)), already)
    for skipped in range(stage_index, decided.stage_index):
        members = [u for u in upgrades if u.stage_index == skipped]
        passed = sum(u.state is S for u in members)
        assert passed >= stages[skipped].required(len(members)), "promoted only when passed"


def test_a_skipped_environment_is_left_out_of_its_stages_count() -> None:
    skipped = UpgradeState.SKIPPED
    # canary (100%): one passed, one skipped: the stage passed, its soak starts now.
    decided = _plan(_upgrades([S, skipped], [P], [P]))
    assert decided.stage_passed_at == NOW and decided.stage_index == 0
    # Without the skip the same stage waits for its second environment.
    waiting = _plan(_upgrades([S, P], [P], [P]))
    assert waiting.stage_passed_at is None
    assert waiting.holds[3].text == "waiting for stage canary: 1 of 2 environments passed"


def test_a_stage_of_skipped_environments_only_passes_at_once() -> None:
    skipped = UpgradeState.SKIPPED
    soaked = NOW - timedelta(minutes=1)
    decided = _plan(_upgrades([S], [skipped, skipped], [P]), stage=0, passed_at=soaked)
    assert decided.stage_index == 2 and decided.start == [4]
