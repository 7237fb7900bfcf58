"""The pure summing-up behind `rollout fleet` and `rollout show`: a cell's mark, a stage in a
few words, a measured value as a number, a rollout's story kept short."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from rich.console import Console

from rollout.api.schemas import (
    GateView,
    PageView,
    ReleaseView,
    RolloutDetailView,
    StageView,
    UpgradeView,
)
from rollout.api.schemas.fleet import FleetCell, FleetRow, FleetStage, FleetView
from rollout.cli.matrix import fits, fleet_matrix, messages
from rollout.cli.render import rollout_story
from rollout.cli.story import MAX_MESSAGES, MAX_ROWS, names, summarise
from rollout.domain.fleet import CellFact, LastUpgrade, Mark, mark_of, stage_summary
from rollout.domain.gates import reading
from rollout.domain.states import ReleaseState, RolloutState, UpgradeState

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def _last(
    state: UpgradeState, rollout: RolloutState = RolloutState.RUNNING, hold: str | None = None
) -> LastUpgrade:
    return LastUpgrade(state=state, rollout_state=rollout, to_version="2.0.0", hold_kind=hold)


@pytest.mark.parametrize(
    ("last", "release", "mark"),
    [
        (None, None, None),
        (_last(UpgradeState.SUCCEEDED), None, None),
        (_last(UpgradeState.CANCELLED, RolloutState.FAILED), None, None),
        (_last(UpgradeState.VERIFYING), None, Mark.IN_FLIGHT),
        (_last(UpgradeState.AWAITING_DECISION, RolloutState.PAUSED), None, Mark.IN_FLIGHT),
        (_last(UpgradeState.ROLLED_BACK, RolloutState.FAILED), None, Mark.FAILED),
        (_last(UpgradeState.ROLLING_BACK, RolloutState.FAILING), None, Mark.FAILED),
        (_last(UpgradeState.BLOCKED, RolloutState.FAILED), None, Mark.FAILED),
        (_last(UpgradeState.PENDING, hold="window"), None, Mark.HELD),
        (_last(UpgradeState.PENDING, hold="stage"), None, Mark.QUEUED),
        (_last(UpgradeState.PENDING, hold="parallelism"), None, Mark.QUEUED),
        # A halted rollout's pending upgrades will never start: nothing waits there.
        (_last(UpgradeState.PENDING, RolloutState.FAILING, hold="window"), None, None),
        (_last(UpgradeState.SUCCEEDED), ReleaseState.RECALLED, Mark.RECALLED),
        # Rolling a recalled version off is the recall, not a failure.
        (_last(UpgradeState.ROLLING_BACK), ReleaseState.RECALLED, Mark.RECALLED),
        # What moves wins over the recall of what runs.
        (_last(UpgradeState.DEPLOYING), ReleaseState.RECALLED, Mark.IN_FLIGHT),
    ],
)
def test_a_cells_mark(
    last: LastUpgrade | None, release: ReleaseState | None, mark: Mark | None
) -> None:
    assert mark_of(last, release)[0] is mark


def test_a_stage_in_a_few_words() -> None:
    cells = [CellFact("4.0.18", None)] * 47 + [CellFact("4.0.18", Mark.FAILED)]
    cells += [CellFact("4.0.17", None), CellFact("4.0.17", Mark.HELD), CellFact(None, None)]
    assert stage_summary(cells) == "4.0.18 ×48, 4.0.17 ×2, not installed ×1, 1 failed, 1 held"
    assert stage_summary([CellFact("1.0.0", Mark.IN_FLIGHT)]) == "1.0.0, 1 upgrading"
    assert stage_summary([]) == ""


@pytest.mark.parametrize(
    ("stored", "metric", "number"),
    [
        ("error_rate 0.071", "error_rate", 0.071),
        ("status 503", "status", 503.0),
        ("0.5", None, 0.5),
        ("health ok", "health", None),
        ("error_rate 0.01, latency_ms 12", "error_rate", None),
        ("value NaN", "value", None),
        (None, None, None),
        ("", None, None),
    ],
)
def test_a_measurement_as_a_number(
    stored: str | None, metric: str | None, number: float | None
) -> None:
    assert reading(stored) == (metric, number)


def _upgrade(n: int, state: str, stage: int = 1, **extra: str | None) -> UpgradeView:
    return UpgradeView(
        id=n,
        environment=f"prod-{n:03d}",
        stage_index=stage,
        stage="production" if stage else "canary",
        state=state,
        from_version="1.0.0",
        to_version="1.1.0",
        reason=extra.get("reason"),
        hold_reason=extra.get("hold_reason"),
        hold_kind=extra.get("hold_kind"),
        gates=[],
    )


def _detail(upgrades: list[UpgradeView], state: str = "running") -> RolloutDetailView:
    return RolloutDetailView(
        id=7,
        service="checkout",
        version="1.1.0",
        team="payments",
        state=state,
        reason=None,
        stage_index=1,
        stages=[
            StageView(name="canary", soak_s=0, promote_share=1),
            StageView(name="production", soak_s=60, promote_share=1),
        ],
        release=ReleaseView(id=1, state="active", digest=None, reason=None, submitted_at=NOW),
        upgrades=upgrades,
        pages=[],
        created_at=NOW,
        updated_at=NOW,
        finished_at=None,
    )


def test_a_big_rollouts_story_keeps_what_is_not_done_and_says_each_message_once() -> None:
    upgrades = [_upgrade(0, "succeeded", stage=0)]
    upgrades += [_upgrade(n, "succeeded") for n in range(1, 300)]
    upgrades += [_upgrade(n, "verifying") for n in range(300, 330)]
    window = "no maintenance window open in the environment"
    upgrades += [
        _upgrade(n, "pending", hold_reason=window, hold_kind="window") for n in range(330, 500)
    ]
    upgrades += [
        _upgrade(n, "rolled_back", reason=f"gate health failed in prod-{n}")
        for n in range(500, 520)
    ]
    upgrades[310].gates.append(
        GateView(
            name="health",
            metric="error_rate",
            value=0.2,
            observed="error_rate 0.2",
            condition="error_rate < 0.05",
            outcome="failure",
            taken=1,
            failures=1,
            errors=0,
            last_at=NOW,
        )
    )
    story = summarise(_detail(upgrades))
    production = story.stages[1]
    assert production.status == "current"
    assert production.states == [
        ("succeeded", 299),
        ("pending", 170),
        ("verifying", 30),
        ("rolled_back", 20),
    ]
    assert production.holds == [("window", 170)]
    assert story.done == 300
    # Pending upgrades are their message, not rows; the rest is cut at MAX_ROWS.
    assert len(story.rows) == MAX_ROWS and story.hidden_rows == 50 - MAX_ROWS
    # Cut, the failures are what stays, in rollout order.
    assert [u.environment for u in story.rows] == [f"prod-{n}" for n in range(500, 500 + MAX_ROWS)]
    assert production.failing_gates == [("health", 1)]
    first = story.messages[0]
    assert (first.kind, first.text, len(first.environments)) == ("waits", window, 170)
    assert len(story.messages) == MAX_MESSAGES and story.hidden_messages == 21 - MAX_MESSAGES

    everything = summarise(_detail(upgrades), everything=True)
    assert len(everything.rows) == len(upgrades) and everything.hidden_rows == 0
    assert everything.hidden_messages == 0 and everything.done == 0


def test_environments_are_named_briefly() -> None:
    listed = [f"prod-{n}" for n in range(10)]
    assert names(listed) == "prod-0, prod-1, prod-2, prod-3 and 6 more"
    assert names(listed[:5]) == "prod-0, prod-1, prod-2, prod-3, prod-4"
    assert names(listed, everything=True).count(",") == 9


def _view(environments: int) -> FleetView:
    envs = [f"production-eu-{n:03d}" for n in range(environments)]
    cells = [
        FleetCell(
            environment=e,
            stage="production",
            version="1.0.0",
            mark=Mark.HELD if n % 2 else None,
            to_version="1.1.0" if n % 2 else None,
            rollout_id=3 if n % 2 else None,
            state="pending" if n % 2 else None,
            reason="frozen until 18:00 UTC: audit" if n % 2 else None,
        )
        for n, e in enumerate(envs)
    ]
    return FleetView(
        stages=[FleetStage(name="production", environments=envs)],
        services=[FleetRow(service="checkout", team="payments", cells=cells)],
    )


def test_the_matrix_sums_up_a_fleet_that_does_not_fit() -> None:
    assert fits(_view(3), 80) and not fits(_view(4), 80)
    # One reason, once, with the environments it holds.
    assert messages(_view(6)) == [
        "checkout 1.1.0 held: frozen until 18:00 UTC: audit — "
        "production-eu-001, production-eu-003, production-eu-005"
    ]
    console = Console(width=80, record=True)
    console.print(fleet_matrix(_view(40), wide=False, width=80))
    text = console.export_text()
    assert "1.0.0 ×40, 20 held" in text and "production-eu-000" not in text
    console = Console(width=80, record=True)
    console.print(fleet_matrix(_view(40), wide=True, width=80))
    wide = console.export_text()
    assert all(f"production-eu-{n:03d}" in wide for n in range(40))
    assert max(len(line) for line in wide.splitlines()) <= 80


def _gate(name: str, value: float, outcome: str) -> GateView:
    return GateView(
        name=name,
        metric="error_rate",
        value=value,
        observed=f"error_rate {value}",
        condition="error_rate < 0.05",
        outcome=outcome,
        taken=3,
        failures=int(outcome == "failure"),
        errors=0,
        last_at=NOW,
    )


def _page(n: int) -> PageView:
    return PageView(
        id=n,
        team="payments",
        severity="P2",
        kind="failure",
        state="open",
        rollout_id=7,
        service="checkout",
        version="1.1.0",
        environment=f"prod-{n:03d}",
        stage="production",
        gate="health",
        detail="error_rate 0.2, wanted error_rate < 0.05",
        summary=f"checkout 1.1.0 in prod-{n:03d} (production): gate health failed: error_rate "
        "0.2, wanted error_rate < 0.05. Rolled back to 1.0.0.",
        created_at=NOW,
    )


def test_a_failing_rollout_over_500_environments_prints_about_40_lines_at_80_columns() -> None:
    upgrades = [_upgrade(n, "succeeded") for n in range(0, 250)]
    for n in range(250, 300):
        upgrade = _upgrade(n, "verifying")
        upgrade.gates.extend([_gate("health", 0.01, "success"), _gate("latency", 0.02, "success")])
        upgrades.append(upgrade)
    for n in range(300, 330):
        upgrade = _upgrade(n, "rolled_back", reason=f"gate health failed in prod-{n:03d}: 0.2")
        upgrade.gates.append(_gate("health", 0.2, "failure"))
        upgrades.append(upgrade)
    upgrades += [
        _upgrade(n, "pending", hold_reason=f"no window open in prod-{n:03d} until Mon 02:00")
        for n in range(330, 520)
    ]
    detail = _detail(upgrades, state="failing")
    detail.pages.extend(_page(n) for n in range(300, 330))
    console = Console(width=80, record=True)
    console.print(rollout_story(detail))
    lines = console.export_text().splitlines()
    assert len(lines) <= 42, "\n".join(lines)
    assert "rollout show 7 --all" in lines[-1]
    console = Console(width=80, record=True)
    console.print(rollout_story(detail, everything=True))
    every = console.export_text()
    assert all(f"prod-{n:03d}" in every for n in range(520))


def test_a_soaking_stage_says_how_long_is_left() -> None:
    detail = _detail([_upgrade(n, "succeeded") for n in range(3)])
    detail.soak_ends_at = datetime.now(UTC) + timedelta(minutes=5, seconds=30)
    console = Console(width=80, record=True)
    console.print(rollout_story(detail))
    [production] = [line for line in console.export_text().splitlines() if "2 production" in line]
    assert re.search(r"│ 5m[23]\ds left", production), production
    assert "3 succeeded" in production
