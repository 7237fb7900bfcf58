"""`rollout hygiene` on SQLite: pages and their feedback in the database become the report."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner, Result

from rollout.cli.hygiene import hygiene
from rollout.settings import get_settings
from rollout.store.database import migrate, transaction
from rollout.store.models import ApiToken, Page, PageEvent, Release, Rollout, Upgrade
from tests.conftest import FIXTURES
from tests.plans import SIMULATED, tiny_plan

runner = CliRunner()


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh, migrated SQLite database in tmp_path, and the settings pointing at it."""
    for name in [n for n in os.environ if n.startswith("ROLLOUT_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("ROLLOUT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("ROLLOUT_CONFIG", str(FIXTURES / "fleet.yaml"))
    # Wide enough that no table cell folds onto a second line.
    monkeypatch.setenv("COLUMNS", "200")
    get_settings.cache_clear()
    url = get_settings().resolved_database_url()
    migrate(url)
    yield url
    get_settings.cache_clear()


def _app() -> typer.Typer:
    app = typer.Typer()
    app.command()(hygiene)
    return app


def invoke(*args: str) -> Result:
    return runner.invoke(_app(), list(args))


def _seed(url: str) -> None:
    """Payments' checkout pages Ada (Berlin) at 23:30 UTC, past midnight for her; search pages
    Ben (New York) at 23:30 UTC, early evening for him."""
    now = datetime.now(UTC)
    night = datetime.combine((now - timedelta(days=3)).date(), time(23, 30), UTC)
    noon = night.replace(hour=12, minute=0)
    long_ago = night - timedelta(days=10)
    with transaction(url) as session:
        token = ApiToken(secret_hash="0" * 64, scope="admin", services=[], created_at=now)
        release = Release(service="checkout", version="2.0.0", state="accepted", submitted_at=now)
        session.add_all([token, release])
        session.flush()
        rollout = Rollout(
            release_id=release.id,
            service="checkout",
            version="2.0.0",
            team="payments",
            state="failed",
            plan=tiny_plan("payments", stages=("canary",)),
            created_at=now,
            updated_at=now,
        )
        session.add(rollout)
        session.flush()
        upgrade = Upgrade(
            rollout_id=rollout.id,
            service="checkout",
            environment="canary-1",
            stage_index=0,
            stage="canary",
            to_version="2.0.0",
            driver=SIMULATED,
            state="failed",
            created_at=now,
        )
        session.add(upgrade)
        session.flush()

        def page(
            key: int, at: datetime, team: str, service: str, gate: str, recipient: str | None
        ) -> Page:
            row = Page(
                dedup_key=f"page-{key}",
                team=team,
                severity="P2",
                kind="gate_failed",
                rollout_id=rollout.id,
                upgrade_id=upgrade.id,
                service=service,
                version="2.0.0",
                environment="canary-1",
                stage="canary",
                gate=gate,
                detail="error_rate 0.2, wanted error_rate < 0.05",
                summary="checkout failed",
                state="open",
                created_at=at,
                recipient=recipient,
                role="primary" if recipient else None,
            )
            session.add(row)
            session.flush()
            return row

        def event(row: Page, action: str, after: int, to: str | None = None) -> None:
            session.add(
                PageEvent(
                    page_id=row.id,
                    action=action,
                    misrouted_to=to,
                    token_id=token.id,
                    at=row.created_at + timedelta(seconds=after),
                )
            )

        health = [page(i, night, "payments", "checkout", "health", "Ada Park") for i in range(3)]
        health.append(page(3, noon, "payments", "checkout", "health", "Ada Park"))
        for row, after in zip(health, (60, 180, 300), strict=False):
            event(row, "acknowledged", after)
        event(health[0], "acknowledged", 900)  # the first acknowledgement is the one timed
        event(health[2], "not_actionable", 3600)
        event(health[3], "not_actionable", 3600)
        # Sent to the whole team, and not theirs: judged in payments' first member's zone.
        for key in (4, 5):
            event(
                page(key, night, "payments", "checkout", "soak", None), "misrouted", 600, "search"
            )
        for key in (6, 7):
            row = page(key, night, "search", "search-api", "health", "Ben Okafor")
            event(row, "acknowledged", 120)
            event(row, "resolved", 1200)
        page(8, long_ago, "payments", "checkout", "health", "Ada Park")


def _row(output: str, first: str) -> list[str]:
    for line in output.splitlines():
        cells = [c.strip() for c in line.split("│")[1:-1]]
        if cells and cells[0] == first:
            return cells
    raise AssertionError(f"no row {first!r} in:\n{output}")


def test_the_report_as_tables(database: str) -> None:
    _seed(database)
    result = invoke("--since", "1w")
    assert result.exit_code == 0, result.output
    out = result.output
    # team, pages, night, acked, median ack, misrouted, not actionable, night budget
    assert _row(out, "payments") == ["payments", "6", "5", "3/6", "3m", "2 (33%)", "2 (33%)", "2"]
    assert _row(out, "search") == ["search", "2", "0", "2/2", "2m", "0 (0%)", "0 (0%)", "2"]
    assert _row(out, "checkout/health") == [
        "checkout/health", "4", "3", "3/4", "3m", "0 (0%)", "2 (50%)"
    ]  # fmt: skip
    assert _row(out, "checkout/soak") == [
        "checkout/soak", "2", "2", "0/2", "—", "2 (100%)", "0 (0%)"
    ]  # fmt: skip
    assert _row(out, "search-api/health")[1:3] == ["2", "0"]
    assert (
        "noisy_gate: gate checkout/health pages without cause: 2 of 4 pages (50%) were marked "
        "not actionable" in out
    )
    assert (
        "misrouted_ownership: checkout pages team payments, but 2 of 6 pages (33%) were marked "
        "misrouted, most to search (2)" in out
    )
    assert (
        "night_budget: team payments was paged at night 5 times in 7 days, over its budget of 2 "
        "(2 a week)" in out
    )
    assert "note: payments: 2 page(s) had no recipient of known zone" in out
    assert "Europe/Berlin" in out
    assert "team search" not in out


def test_the_default_window_is_thirty_days_and_json_has_every_key(database: str) -> None:
    _seed(database)
    result = invoke("--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert set(report) == {
        "since",
        "until",
        "night_budget_per_week",
        "teams",
        "gates",
        "findings",
        "notes",
    }
    tally_keys = {
        "pages",
        "night_pages",
        "acknowledged",
        "median_ack_seconds",
        "misrouted",
        "misroute_rate",
        "not_actionable",
        "false_positive_rate",
    }
    teams = {t["team"]: t for t in report["teams"]}
    assert set(teams["payments"]) == {"team", "night_budget", "zone_assumed", *tally_keys}
    # The page ten days old counts now: 7 pages, 6 at night.
    assert (teams["payments"]["pages"], teams["payments"]["night_pages"]) == (7, 6)
    assert teams["payments"]["median_ack_seconds"] == 180
    assert teams["payments"]["misroute_rate"] == pytest.approx(2 / 7)
    assert teams["payments"]["night_budget"] == pytest.approx(60 / 7)
    assert teams["payments"]["zone_assumed"] == 2
    assert teams["search"]["median_ack_seconds"] == 120
    gates = {(g["service"], g["gate"]): g for g in report["gates"]}
    assert set(gates[("checkout", "health")]) == {"service", "gate", *tally_keys}
    assert gates[("checkout", "health")]["false_positive_rate"] == pytest.approx(2 / 5)
    # 2 of 5 is below half; 6 night pages are within 30 days' budget; 2 of 7 is below 30 %.
    assert report["findings"] == []
    assert len(report["notes"]) == 1


def test_one_team(database: str) -> None:
    _seed(database)
    result = invoke("--team", "search", "--since", "2w", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert [t["team"] for t in report["teams"]] == ["search"]
    assert [(g["service"], g["gate"]) for g in report["gates"]] == [("search-api", "health")]


def test_the_night_budget_is_an_option(database: str) -> None:
    _seed(database)
    result = invoke("--since", "1w", "--night-budget", "5", "--json")
    assert result.exit_code == 0, result.output
    kinds = {f["kind"] for f in json.loads(result.output)["findings"]}
    assert kinds == {"noisy_gate", "misrouted_ownership"}


def test_an_empty_database_reports_every_team_with_nothing_found(database: str) -> None:
    result = invoke()
    assert result.exit_code == 0, result.output
    assert _row(result.output, "payments")[1:3] == ["0", "0"]
    assert "Findings\n  none" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "soon"], "--since: invalid time 'soon'"),
        (["--since", "0d"], "--since: '0d' is not in the past"),
        (["--team", "nosuch"], "unknown team 'nosuch'"),
    ],
)
def test_bad_input_is_one_line(database: str, args: list[str], message: str) -> None:
    result = invoke(*args)
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output
