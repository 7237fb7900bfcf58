"""The CLI's one time rule as a process: a time without a zone is the reader's (TZ) in every
command, `--utc` makes it UTC, and a bad time is one line naming the option; --version and
shell completion."""

from __future__ import annotations

import json
import os
import subprocess
from importlib.metadata import version
from pathlib import Path

import pytest

from tests.conftest import FIXTURES, ROLLOUT


def run(home: Path, *args: str, tz: str = "Europe/Paris") -> subprocess.CompletedProcess[str]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("ROLLOUT_")},
        "ROLLOUT_DATA_DIR": str(home / "data"),
        "ROLLOUT_CONFIG": str(FIXTURES / "fleet.yaml"),
        "COLUMNS": "200",
        "TZ": tz,
    }
    return subprocess.run([ROLLOUT, *args], env=env, capture_output=True, text=True, timeout=60)


@pytest.fixture
def ready(tmp_path: Path) -> Path:
    result = run(tmp_path, "db", "upgrade")
    assert result.returncode == 0, result.stderr
    return tmp_path


def _one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> str:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def test_freeze_reads_a_zoneless_time_in_the_readers_zone(ready: Path) -> None:
    frozen = run(ready, "freeze", "prod-1", "--until", "2030-01-01T10:00", "--reason", "audit")
    assert frozen.returncode == 0, frozen.stderr
    # Paris is +01:00 in January: the engine's message is in UTC, the table in the reader's.
    assert frozen.stdout == "environment prod-1 frozen until 2030-01-01 09:00:00 UTC: audit\n"
    assert "2030-01-01 10:00:00 CET" in run(ready, "freezes").stdout
    assert "2030-01-01 09:00:00 UTC" in run(ready, "--utc", "freezes").stdout
    in_tokyo = run(ready, "freezes", tz="Asia/Tokyo").stdout
    assert "2030-01-01 18:00:00 JST" in in_tokyo
    listed = json.loads(run(ready, "freezes", "-o", "json").stdout)
    assert listed["freezes"][0]["until"] == "2030-01-01T09:00:00Z"

    again = run(ready, "--utc", "freeze", "prod-1", "--until", "2030-01-01T10:00", "--reason", "a")
    assert again.stdout == "environment prod-1 frozen until 2030-01-01 10:00:00 UTC: a\n"


def test_override_and_oncall_read_the_same_zone(ready: Path) -> None:
    covered = run(
        ready,
        "override",
        "payments",
        "--member",
        "Ada Park",
        "--from",
        "2030-03-31T08:00",
        "--until",
        "2030-03-31T10:00",
    )
    assert covered.returncode == 0, covered.stderr
    assert covered.stdout == (
        "override 1: Ada Park covers payments's primary from 2030-03-31 08:00 CEST to "
        "2030-03-31 10:00 CEST\n"
    )
    # The same instant typed three ways is the same answer.
    answers = [
        run(ready, "oncall", "payments", "--at", at, "-o", "json")
        for at in ("2030-03-31T08:30", "2030-03-31T06:30Z", "2030-03-31T02:30-04:00")
    ]
    assert all(a.returncode == 0 for a in answers), [a.stderr for a in answers]
    assert len({a.stdout for a in answers}) == 1
    assert json.loads(answers[0].stdout)["primary"]["member"] == "Ada Park"
    table = run(ready, "oncall", "payments", "--at", "2030-03-31T08:30")
    assert table.stdout.startswith("On call for payments at 2030-03-31 08:30 CEST\n")
    utc = run(ready, "--utc", "oncall", "payments", "--at", "2030-03-31T06:30")
    assert utc.stdout.startswith("On call for payments at 2030-03-31 06:30 UTC\n")
    assert utc.stdout.splitlines()[1:] == table.stdout.splitlines()[1:]


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (("oncall", "payments", "--at", "2030-03-31T02:30"), ("--at: ", "does not exist")),
        (("oncall", "payments", "--at", "2030-10-27T02:30"), ("--at: ", "happens twice")),
        (("oncall", "payments", "--at", "soon"), ("--at: invalid time 'soon'",)),
        (
            ("override", "payments", "--member", "Ada Park", "--from", "x", "--until", "2h"),
            ("--from: invalid time 'x'",),
        ),
        (
            ("override", "payments", "--member", "Ada Park", "--from", "2h", "--until", "1h"),
            ("--until must be after --from",),
        ),
        (("freeze", "prod-1", "--until", "Friday", "--reason", "x"), ("--until: ", "'Friday'")),
        (("hygiene", "--since", "2099-01-01T00:00Z"), ("--since: ", "is not in the past")),
    ],
)
def test_a_bad_time_is_one_line_naming_the_option(
    ready: Path, args: tuple[str, ...], fragments: tuple[str, ...]
) -> None:
    _one_line_error(run(ready, *args), *fragments)


def test_a_long_bad_time_is_cut_in_the_error(ready: Path) -> None:
    line = _one_line_error(
        run(ready, "freeze", "prod-1", "--until", "9" * 10_000, "--reason", "x"), "--until: "
    )
    assert len(line) < 250


def test_hygiene_since_takes_a_time_as_well_as_a_duration(ready: Path) -> None:
    by_time = run(ready, "hygiene", "--since", "2026-01-01T00:00Z", "-o", "json")
    assert by_time.returncode == 0, by_time.stderr
    assert json.loads(by_time.stdout)["since"].startswith("2026-01-01T00:00")
    header = run(ready, "hygiene", "--since", "2026-01-01T01:00").stdout.splitlines()[0]
    assert header.startswith("Paging hygiene, 2026-01-01 01:00 CET to ")


def test_version_is_the_packages() -> None:
    result = subprocess.run([ROLLOUT, "--version"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"rollout {version('rollout')}\n"


def test_shell_completion_completes_commands() -> None:
    shown = subprocess.run(
        [ROLLOUT, "--show-completion", "bash"], capture_output=True, text=True, timeout=60
    )
    assert shown.returncode == 0, shown.stderr
    assert "_ROLLOUT_COMPLETE=complete_bash" in shown.stdout
    env = {**os.environ, "_ROLLOUT_COMPLETE": "complete_bash", "COMP_WORDS": "rollout fre"}
    completed = subprocess.run(
        [ROLLOUT], env={**env, "COMP_CWORD": "1"}, capture_output=True, text=True, timeout=60
    )
    assert completed.stdout.split() == ["freeze", "freezes"]
