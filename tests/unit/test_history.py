"""The history's derived facts: when a rollout's stages passed, read off its upgrades."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from rollout.api.schemas import RolloutDetailView
from rollout.api.schemas.history import EventView
from rollout.cli.history import action_lines
from rollout.cli.zone import shown
from rollout.domain.audit import Actor
from rollout.domain.history import StagePassed, UpgradeFact, stage_passages
from rollout.domain.planning import StagePlan
from rollout.domain.states import UpgradeState

T0 = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
STAGES = [StagePlan("canary"), StagePlan("staging", promote_share=0.5), StagePlan("production")]
S, P, K = UpgradeState.SUCCEEDED, UpgradeState.PENDING, UpgradeState.SKIPPED


def _at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def test_a_stage_passed_when_the_last_success_its_share_needed_finished() -> None:
    upgrades = [
        UpgradeFact(0, S, _at(5)),
        # staging needs 1 of 2: the first success is the passage, the later one is not.
        UpgradeFact(1, S, _at(12)),
        UpgradeFact(1, S, _at(9)),
        UpgradeFact(2, S, _at(20)),
        UpgradeFact(2, P, None),
    ]
    assert list(stage_passages(STAGES, upgrades, stage_index=2)) == [
        StagePassed(0, "canary", _at(5), 1, 1),
        StagePassed(1, "staging", _at(9), 1, 2),
    ]


def test_a_skipped_environment_is_not_counted_and_a_forced_stage_has_no_passage() -> None:
    upgrades = [
        UpgradeFact(0, S, _at(3)),
        UpgradeFact(0, K, _at(4)),
        # production was entered by force: nothing passed there.
        UpgradeFact(2, P, None),
    ]
    found = list(stage_passages(STAGES, upgrades, stage_index=2))
    assert found == [StagePassed(0, "canary", _at(3), 1, 1)]


def test_stages_not_reached_have_no_passage() -> None:
    upgrades = [UpgradeFact(0, S, _at(1)), UpgradeFact(1, S, _at(2))]
    assert [p.stage for p in stage_passages(STAGES, upgrades, stage_index=0)] == ["canary"]


def test_an_actor_names_its_token_by_id_and_note_or_the_local_user() -> None:
    assert Actor.token(3, "ci deploy") == Actor("token 3 (ci deploy)", 3)
    assert Actor.token(4, None) == Actor("token 4", 4)
    assert Actor.local("alice") == Actor("local:alice", None)


def test_a_rollouts_actions_print_as_lines_with_zone_who_what_and_why() -> None:
    def action(minutes: int, who: str, what: str, why: str | None) -> EventView:
        return EventView(
            at=_at(minutes),
            kind="action",
            action="pause",
            who=who,
            what=what,
            why=why,
            service="checkout",
            rollout_id=4,
            subject=None,
        )

    view = RolloutDetailView.model_construct(
        actions=[
            action(0, "token 3 (ci)", "rollout 4 paused: paused by operator: freeze", "freeze"),
            action(5, "local:alice", "rollout 4: stage canary promoted", "checked by hand"),
        ]
    )
    lines = action_lines(view)
    assert [line.split("  ", 1)[1] for line in lines] == [
        "token 3 (ci): rollout 4 paused: paused by operator: freeze",
        "local:alice: rollout 4: stage canary promoted (why: checked by hand)",
    ]
    # The time is the reader's, named: the rule every table follows (rollout.cli.zone).
    assert lines[0].split("  ", 1)[0] == shown(T0, seconds=True)
    assert lines[0].split("  ", 1)[0].split()[-1].isalpha(), "the zone is named"
