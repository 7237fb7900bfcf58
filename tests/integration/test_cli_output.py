"""What people read, as a process on SQLite: `rollout show` of a rollout over 500
environments fits a screen, `--all` prints them all, and at 80 columns, piped, no name is
folded mid-word and no escape code is printed; `fleet --watch`, piped, prints per change."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from rollout.store.database import transaction
from rollout.store.models import Page, Upgrade
from tests.conftest import ROLLOUT
from tests.integration.wide_fleet import folded_names, wide_fleet
from tests.waiting import wait_for

ENVIRONMENTS = 520


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    home = tmp_path_factory.mktemp("big")
    names = wide_fleet(home / "fleet.yaml", ENVIRONMENTS)
    for args in (("db", "upgrade"), ("submit", "checkout", "1.1.0")):
        done = run(home, *args)
        assert done.returncode == 0, done.stderr
    return home, names


def run(home: Path, *args: str, columns: int = 80) -> subprocess.CompletedProcess[str]:
    # Piped (capture_output): Rich must see no terminal, and print no colour.
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("ROLLOUT_")},
        "ROLLOUT_DATA_DIR": str(home / "data"),
        "ROLLOUT_CONFIG": str(home / "fleet.yaml"),
        "COLUMNS": str(columns),
    }
    env.pop("FORCE_COLOR", None)
    return subprocess.run([ROLLOUT, *args], env=env, capture_output=True, text=True, timeout=60)


def _plain(result: subprocess.CompletedProcess[str], names: list[str]) -> list[str]:
    assert result.returncode == 0, result.stderr
    assert "\x1b[" not in result.stdout
    assert folded_names(result.stdout, names) == []
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    return lines


def test_show_of_a_rollout_over_500_environments_fits_a_screen(big: tuple[Path, list[str]]) -> None:
    home, names = big
    lines = _plain(run(home, "show", "1"), names)
    assert len(lines) <= 40, "\n".join(lines)
    text = "\n".join(lines)
    assert text.startswith("Rollout 1 · checkout 1.1.0 · team payments · running")
    # The summary first: per stage, counts by state and what holds it.
    assert "1 canary" in text and f"{ENVIRONMENTS} pending" in text
    assert f"stage ×{ENVIRONMENTS}" in text
    # The gate's condition once, not once per environment.
    assert text.count("error_rate < 0.05") == 1
    # The one hold of 520 environments, once, with them.
    waits = [line for line in lines if line.startswith("waits:")]
    assert len(waits) == 1 and "waiting for stage canary" in waits[0]
    assert f"and {ENVIRONMENTS - 4} more" in text
    assert "created 20" in text and " UTC" in text


def test_show_all_prints_every_environment(big: tuple[Path, list[str]]) -> None:
    home, names = big
    lines = _plain(run(home, "show", "1", "--all"), names)
    text = "\n".join(lines)
    assert all(name in text for name in names)
    assert len(lines) > ENVIRONMENTS


def test_list_and_fleet_at_80_columns(big: tuple[Path, list[str]]) -> None:
    home, names = big
    listing = "\n".join(_plain(run(home, "list"), names))
    assert "times in UTC" in listing and "checkout" in listing and "running" in listing
    fleet = "\n".join(_plain(run(home, "fleet"), names))
    # 522 environments do not fit: one column per stage, summed up.
    assert f"production-eu ({ENVIRONMENTS})" in fleet
    assert f"not installed ×{ENVIRONMENTS}, {ENVIRONMENTS} queued" in fleet
    assert "not installed ×2, 2 upgrading" in fleet
    narrowed = "\n".join(_plain(run(home, "fleet", "--environment", "canary-1"), names))
    assert "canary-1" in narrowed and "→ 1.1.0" in narrowed
    wide = "\n".join(_plain(run(home, "fleet", "-o", "wide", "--stage", "canary"), names))
    assert "canary-2" in wide and "production-eu-000" not in wide


def test_pages_and_tokens_at_80_columns(big: tuple[Path, list[str]]) -> None:
    home, names = big
    made = run(
        home,
        "token",
        "create",
        "--scope",
        "pipeline",
        "--service",
        "checkout",
        "--service",
        "search-api",
        "--note",
        "the release pipeline of the payments team",
    )
    assert made.returncode == 0, made.stderr
    tokens = "\n".join(_plain(run(home, "token", "list"), names))
    assert "pipeline" in tokens and "search-api" in tokens and "times in UTC" in tokens
    with transaction(_url(home)) as session:
        upgrade = session.scalars(
            select(Upgrade).where(Upgrade.environment == "production-eu-517")
        ).one()
        session.add(
            Page(
                dedup_key="output-test",
                team="payments",
                severity="P2",
                kind="failure",
                rollout_id=upgrade.rollout_id,
                upgrade_id=upgrade.id,
                service="checkout",
                version="1.1.0",
                environment="production-eu-517",
                stage="production-eu",
                gate="health",
                detail="error_rate 0.2, wanted error_rate < 0.05",
                summary="checkout 1.1.0 in production-eu-517: gate health failed",
                state="open",
                created_at=datetime.now(UTC),
                recipient="Ada Park",
                role="primary",
            )
        )
    pages = "\n".join(_plain(run(home, "pages"), names))
    assert "checkout 1.1.0" in pages and "error_rate" in pages and "Ada" in pages


def _url(home: Path) -> str:
    return f"sqlite:///{(home / 'data' / 'rollout.db').resolve()}"


def test_a_fleet_filter_naming_nothing_is_one_line(big: tuple[Path, list[str]]) -> None:
    home, _ = big
    refused = run(home, "fleet", "--service", "nosuch")
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert refused.stderr.strip() == (
        "error: unknown service 'nosuch' (services: checkout, search-api)"
    )


def test_fleet_watch_piped_prints_once_per_change_until_interrupted(tmp_path: Path) -> None:
    wide_fleet(tmp_path / "fleet.yaml", 2)
    for args in (("db", "upgrade"), ("submit", "checkout", "1.1.0")):
        assert run(tmp_path, *args).returncode == 0
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("ROLLOUT_")},
        "ROLLOUT_DATA_DIR": str(tmp_path / "data"),
        "ROLLOUT_CONFIG": str(tmp_path / "fleet.yaml"),
    }
    args = ["fleet", "--watch", "--interval", "0.2", "-o", "json", "--environment", "canary-1"]
    watcher = subprocess.Popen(
        [ROLLOUT, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    documents: list[dict[str, Any]] = []
    lines: list[str] = []

    def collect() -> None:
        assert watcher.stdout is not None
        for line in watcher.stdout:
            lines.append(line)
            if line == "}\n":  # the end of one JSON document
                documents.append(json.loads("".join(lines)))
                lines.clear()

    reader = threading.Thread(target=collect, daemon=True)
    reader.start()
    try:
        wait_for(lambda: documents, 30, "the first drawing")
        [first] = documents[0]["services"][0]["cells"]
        assert first["mark"] == "in_flight"
        with transaction(_url(tmp_path)) as session:
            upgrade = session.scalars(
                select(Upgrade).where(
                    Upgrade.environment == "canary-1", Upgrade.service == "checkout"
                )
            ).one()
            upgrade.state, upgrade.reason = "rolled_back", "gate health failed"
        wait_for(lambda: len(documents) >= 2, 30, "the drawing after the change")
        [second] = documents[1]["services"][0]["cells"]
        assert (second["mark"], second["reason"]) == ("failed", "gate health failed")
        # Nothing changes any more: nothing more is printed, however many reads pass.
        reads_later = time.monotonic() + 1.0
        wait_for(lambda: time.monotonic() > reads_later, 5, "a few more reads")
        assert len(documents) == 2
    finally:
        watcher.send_signal(signal.SIGINT)
        code = watcher.wait(timeout=15)
    assert code == 0 and "Traceback" not in (watcher.stderr.read() if watcher.stderr else "")
