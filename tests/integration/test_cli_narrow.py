"""Tables at 80 columns, piped: no escape codes, no line past 80, and no name folded mid-word
(a name that does not fit ends in an ellipsis) in freezes, hygiene and oncall."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROLLOUT

TEAM = "payments-platform-reliability"
ENVIRONMENT = "production-europe-west-frankfurt-1"
SERVICE = "checkout-payment-authorisation-gateway"
MEMBERS = ("Alexandrina Montgomery-Fitzwilliam", "Bartholomew Okonkwo-Nakamura", "Chen Li")
NAMES = (TEAM, ENVIRONMENT, SERVICE, *MEMBERS, f"{TEAM}-primary", f"{TEAM}-secondary")

FLEET = f"""\
teams:
  - name: {TEAM}
    members:
      - {{name: {MEMBERS[0]}, timezone: Europe/Berlin}}
      - {{name: {MEMBERS[1]}, timezone: America/New_York}}
      - {{name: {MEMBERS[2]}, timezone: Asia/Singapore}}
    rotations:
      primary:
        members: [{", ".join(MEMBERS)}]
        shift: 1d
        start: 2026-01-05
        timezone: Europe/Berlin
      secondary:
        members: [{", ".join(reversed(MEMBERS))}]
        shift: 7d
        start: 2026-01-05
        timezone: Europe/Berlin
    channels:
      - {{type: webhook, url: {{env: ROLLOUT_TEST_PAGE_HOOK}}}}
stages:
  - name: production
environments:
  - name: {ENVIRONMENT}
    stage: production
    driver: {{type: simulated}}
services:
  - name: {SERVICE}
    team: {TEAM}
"""


@pytest.fixture
def home(tmp_path: Path) -> Path:
    (tmp_path / "fleet.yaml").write_text(FLEET)
    assert run(tmp_path, "db", "upgrade").returncode == 0
    return tmp_path


def run(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("ROLLOUT_", "COLUMNS"))},
        "ROLLOUT_DATA_DIR": str(home / "data"),
        "ROLLOUT_CONFIG": str(home / "fleet.yaml"),
        "ROLLOUT_TEST_PAGE_HOOK": "http://127.0.0.1:1/hook",
        "COLUMNS": "80",
        "TZ": "Europe/Berlin",
    }
    # capture_output: stdout is a pipe, as in `rollout freezes | less`.
    return subprocess.run([ROLLOUT, *args], env=env, capture_output=True, text=True, timeout=60)


def folds(text: str) -> list[str]:
    """Every piece of a name that a line or a table cell ends with, cut inside a word."""
    found = []
    for line in text.splitlines():
        for cell in re.split(r"[│┃]", line):
            end = cell.rstrip()
            for name in NAMES:
                for k in range(3, len(name)):
                    piece = name[:k]
                    starts_word = end[: -len(piece)][-1:] in ("", " ")
                    if end.endswith(piece) and starts_word and name[k] != " " != piece[-1]:
                        found.append(f"{piece!r} of {name!r} in {line!r}")
    return found


def narrow(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    assert "\x1b" not in result.stdout, "no escape codes into a pipe"
    assert all(len(line) <= 80 for line in result.stdout.splitlines()), result.stdout
    assert folds(result.stdout) == [], result.stdout
    return result.stdout


def test_tables_fit_80_columns_without_folding_names(home: Path) -> None:
    reason = "quarterly audit of the card authorisation gateway by the external auditors"
    for target in (ENVIRONMENT, SERVICE):
        frozen = run(home, "freeze", target, "--until", "2030-01-01T10:00", "--reason", reason)
        assert frozen.returncode == 0, frozen.stderr
    freezes = narrow(run(home, "freezes"))
    assert "2030-01-01 10:00:00 CET" in freezes, "times are never cut"
    assert "external auditors" in freezes, "the reason wraps between words"

    on_call = narrow(run(home, "oncall", TEAM, "--at", "2030-01-01T10:00"))
    assert on_call.startswith(f"On call for {TEAM} at 2030-01-01 10:00 CET\n")

    report = narrow(run(home, "hygiene"))
    for header in ("pages", "night", "acked", "median", "misrouted", "actionable", "budget"):
        assert header in report, "headers wrap between words, never cut"


def test_the_fold_check_finds_a_fold() -> None:
    assert folds(f"│ {ENVIRONMENT[:14]} │\n│ {ENVIRONMENT[14:]} │") != []
    assert folds(f"│ {ENVIRONMENT[:14]}… │") == []
    assert folds("  secondary: Alexandrina\nMontgomery-Fitzwilliam") == []
