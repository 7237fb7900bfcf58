"""The CLI on the embedded default (SQLite): bad input gets one line, a non-zero exit, and
leaves nothing half-written."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import func, select

from rollout.store.database import transaction
from rollout.store.models import Release, Rollout, Upgrade
from tests.conftest import FIXTURES, ROLLOUT

DIGEST = "sha256:" + "0f" * 32


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path


def run(home: Path, *args: str, config: Path = FIXTURES / "fleet.yaml"):  # type: ignore[no-untyped-def]
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("ROLLOUT_")},
        "ROLLOUT_DATA_DIR": str(home / "data"),
        "ROLLOUT_CONFIG": str(config),
        "COLUMNS": "200",
    }
    return subprocess.run([ROLLOUT, *args], env=env, capture_output=True, text=True, timeout=60)


def _counts(home: Path) -> tuple[int, int, int]:
    with transaction(f"sqlite:///{(home / 'data' / 'rollout.db').resolve()}") as session:
        return tuple(  # type: ignore[return-value]
            session.scalar(select(func.count()).select_from(t)) for t in (Release, Rollout, Upgrade)
        )


@pytest.fixture
def ready(home: Path) -> Path:
    result = run(home, "db", "upgrade")
    assert result.returncode == 0, result.stderr
    return home


def _one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_submit_then_list_and_show(ready: Path) -> None:
    submitted = run(ready, "submit", "checkout", "1.1.0", "--digest", DIGEST)
    assert submitted.returncode == 0, submitted.stderr
    assert "submitted checkout 1.1.0: rollout 1" in submitted.stdout
    again = run(ready, "submit", "checkout", "1.1.0", "--digest", DIGEST)
    assert "already submitted: rollout 1" in again.stdout
    assert _counts(ready) == (1, 1, 6)
    listing = run(ready, "list", "--service", "checkout")
    assert "checkout" in listing.stdout and "running" in listing.stdout
    shown = run(ready, "show", "1")
    assert "waits: waiting for stage canary: 0 of 1 environments passed" in shown.stdout
    assert DIGEST in shown.stdout


def test_unknown_service(ready: Path) -> None:
    _one_line_error(run(ready, "submit", "nosuch", "1.0.0"), "unknown service 'nosuch'", "checkout")
    assert _counts(ready) == (0, 0, 0)


@pytest.mark.parametrize("version", ["1.0 beta", "_1", "v1;rm -rf /", "x" * 65, ""])
def test_malformed_version(ready: Path, version: str) -> None:
    _one_line_error(run(ready, "submit", "checkout", version), "malformed version")
    assert _counts(ready) == (0, 0, 0)


def test_malformed_digest(ready: Path) -> None:
    _one_line_error(
        run(ready, "submit", "checkout", "1.0.0", "--digest", "md5:abc"), "malformed digest"
    )


def test_the_same_version_with_another_digest_is_refused(ready: Path) -> None:
    assert run(ready, "submit", "checkout", "1.2.0", "--digest", DIGEST).returncode == 0
    other = "sha256:" + "1a" * 32
    _one_line_error(
        run(ready, "submit", "checkout", "1.2.0", "--digest", other),
        "already submitted with digest",
    )
    assert _counts(ready) == (1, 1, 6)


def test_a_broken_config_names_file_line_and_field(ready: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text((FIXTURES / "fleet.yaml").read_text().replace("team: search", "teem: search"))
    result = run(ready, "submit", "checkout", "1.0.0", config=broken)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert f"{broken}:" in result.stderr
    assert "services[1]" in result.stderr and "teem" in result.stderr
    assert _counts(ready) == (0, 0, 0)
    validated = run(ready, "config", "validate", str(broken))
    assert validated.returncode == 1 and "services[1]" in validated.stderr


def test_validate_warns_about_unreachable_teams_and_digests(ready: Path, tmp_path: Path) -> None:
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(
        "teams: [{name: payments}]\nstages: [{name: canary}]\n"
        "environments:\n  - {name: vault-1, stage: canary, driver: {type: simulated}, "
        "labels: {air_gapped: 'true'}}\n"
        "services: [{name: checkout, team: payments}]\n"
    )
    validated = run(ready, "config", "validate", str(fleet))
    assert validated.returncode == 0, validated.stderr
    warnings = [line for line in validated.stderr.splitlines() if line.startswith("warning:")]
    assert any("payments has no rotations" in w for w in warnings), validated.stderr
    assert any("payments has no channels" in w for w in warnings), validated.stderr
    assert any("without --digest is blocked" in w for w in warnings), validated.stderr


def test_unknown_rollout_and_state(ready: Path) -> None:
    _one_line_error(run(ready, "show", "999"), "no rollout 999")
    _one_line_error(run(ready, "list", "--state", "sleepy"), "unknown state 'sleepy'")


def test_a_database_without_schema_says_what_to_do(home: Path) -> None:
    _one_line_error(run(home, "list"), "rollout db upgrade")


def test_who_is_on_call_and_why(ready: Path) -> None:
    # Sunday 2026-03-29 is Berlin's spring-forward day; the daily 09:00 handoff still holds.
    result = run(ready, "oncall", "payments", "--at", "2026-03-29T08:30:00+02:00")
    assert result.returncode == 0, result.stderr
    assert "primary: Ben Okafor — rotation payments-primary: Ben Okafor's shift" in result.stdout
    assert "secondary: Chen Li" in result.stdout and "already primary" in result.stdout
    later = run(ready, "oncall", "payments", "--at", "2026-03-29T09:00:00+02:00")
    assert "primary: Chen Li" in later.stdout
    _one_line_error(run(ready, "oncall", "nobody"), "unknown team 'nobody'")


def test_an_override_wins_over_the_rota(ready: Path) -> None:
    covered = run(
        ready,
        "override",
        "payments",
        "--member",
        "Ada Park",
        "--from",
        "2026-03-29T08:00:00+02:00",
        "--until",
        "2026-03-29T10:00:00+02:00",
    )
    assert covered.returncode == 0, covered.stderr
    assert "Ada Park covers payments's primary" in covered.stdout
    result = run(ready, "oncall", "payments", "--at", "2026-03-29T08:30:00+02:00")
    assert "primary: Ada Park — override" in result.stdout
    after = run(ready, "oncall", "payments", "--at", "2026-03-29T10:30:00+02:00")
    assert "primary: Chen Li" in after.stdout
    _one_line_error(
        run(
            ready,
            "override",
            "payments",
            "--member",
            "Mallory",
            "--from",
            "2026-01-01T00:00Z",
            "--until",
            "2026-01-02T00:00Z",
        ),
        "not a member of team 'payments'",
    )


def test_pages_lists_who_was_paged(ready: Path) -> None:
    result = run(ready, "pages", "--open")
    assert result.returncode == 0, result.stderr
    assert "Pages" in result.stdout
