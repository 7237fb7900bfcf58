"""`rollout history` on the embedded default (SQLite), as a process: the actions people took
with who (the local user) and why, oldest first; a refused action records nothing."""

from __future__ import annotations

import getpass
import json
from pathlib import Path

from sqlalchemy import func, select

from rollout.store.database import transaction
from rollout.store.models import Event
from tests.integration.test_cli import _one_line_error, home, ready, run

__all__ = ["home", "ready"]  # the fixtures
LOCAL = f"local:{getpass.getuser()}"


def _ok(home: Path, *args: str) -> str:
    result = run(home, *args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def _events(home: Path) -> int:
    with transaction(f"sqlite:///{(home / 'data' / 'rollout.db').resolve()}") as session:
        return int(session.scalar(select(func.count()).select_from(Event)) or 0)


def test_history_shows_who_did_what_and_why_oldest_first(ready: Path) -> None:
    _ok(ready, "submit", "checkout", "1.1.0")
    _ok(ready, "pause", "1", "--reason", "change freeze")
    _ok(ready, "skip", "1", "staging-2", "--reason", "staging-2 is rebuilt")
    _ok(ready, "resume", "1")
    _ok(ready, "abort", "1", "--reason", "wrong build")
    assert _events(ready) == 4

    # Refused: the rollout is halted; nothing is recorded.
    _one_line_error(run(ready, "pause", "1", "--reason", "late"), "only a running rollout")
    _one_line_error(run(ready, "promote", "1", "--force"), "needs a reason (--reason)")
    _one_line_error(run(ready, "skip", "1", "prod-1", "--reason", "x"), "only a running or paused")
    assert _events(ready) == 4

    found = json.loads(_ok(ready, "history", "--rollout", "1", "-o", "json"))["events"]
    actions = [(e["action"], e["who"], e["why"]) for e in found if e["kind"] == "action"]
    assert actions == [
        ("pause", LOCAL, "change freeze"),
        ("skip", LOCAL, "staging-2 is rebuilt"),
        ("resume", LOCAL, None),
        ("abort", LOCAL, "wrong build"),
    ]
    times = [e["at"] for e in found]
    assert times == sorted(times)
    kinds = [e["kind"] for e in found]
    assert kinds[0] == "release" and kinds[-1] == "rollout"
    assert found[-1]["what"] == "rollout 1 of checkout 1.1.0 failed"
    assert found[-1]["why"] == "aborted by operator: wrong build"

    table = _ok(ready, "history", "checkout")
    lines = [line for line in table.splitlines() if LOCAL in line]
    assert len(lines) == 4
    assert "rollout 1 paused: paused by operator: change freeze" in lines[0]
    assert "staging-2 skipped" in lines[1] and "staging-2 is rebuilt" in lines[1]
    # Every time carries its zone.
    assert all("+" in line.split()[1] or "-" in line.split()[1][10:] for line in lines)

    shown = json.loads(_ok(ready, "show", "1", "-o", "json"))
    assert [a["action"] for a in shown["actions"]] == ["pause", "skip", "resume", "abort"]
    assert shown["actions"] == [e for e in found if e["kind"] == "action"]


def test_history_refuses_bad_input_in_one_line(ready: Path) -> None:
    _one_line_error(run(ready, "history", "--since", "yesterday"), "since")
    _one_line_error(run(ready, "history", "--rollout", "7"), "no rollout 7")
    _one_line_error(run(ready, "history", "checkout", "--rollout", "1"), "not both")
    empty = _ok(ready, "history", "--since", "1h")
    assert "nothing happened in the last 1h" in empty


def test_freezes_overrides_tokens_and_recalls_are_recorded_and_secrets_are_not(
    ready: Path,
) -> None:
    _ok(ready, "submit", "checkout", "1.1.0")
    _ok(ready, "freeze", "checkout", "--until", "2h", "--reason", "quarter close")
    _ok(ready, "unfreeze", "checkout")
    _ok(ready, "unfreeze", "checkout")  # nothing to lift: nothing recorded
    span = ("--from", "2026-03-29T08:00:00+02:00", "--until", "2026-03-29T10:00:00+02:00")
    _ok(ready, "override", "payments", "--member", "Ada Park", *span)
    made = run(ready, "token", "create", "--scope", "operator", "--note", "laptop")
    assert made.returncode == 0, made.stderr
    secret = made.stdout.strip()
    _ok(ready, "token", "revoke", "1")
    _ok(ready, "token", "revoke", "1")  # revoked already: nothing recorded
    _ok(ready, "recall", "checkout", "1.1.0", "--reason", "leaks memory")
    _one_line_error(run(ready, "recall", "checkout", "9.9.9"), "no release checkout 9.9.9")

    printed = _ok(ready, "history", "-o", "json")
    assert secret not in printed
    found = [e for e in json.loads(printed)["events"] if e["kind"] == "action"]
    assert [(e["action"], e["who"], e["why"]) for e in found] == [
        ("freeze", LOCAL, "quarter close"),
        ("unfreeze", LOCAL, None),
        ("override", LOCAL, None),
        ("token-create", LOCAL, "laptop"),
        ("token-revoke", LOCAL, None),
        ("recall", LOCAL, "leaks memory"),
    ]
    assert found[3]["what"] == "operator token 1 created"
    assert found[2]["what"].startswith("override 1: Ada Park covers payments's primary from ")
    # A service's freeze and recall are in its history; a token is nobody's service.
    mine = json.loads(_ok(ready, "history", "checkout", "-o", "json"))["events"]
    assert [e["action"] for e in mine if e["kind"] == "action"] == [
        "freeze",
        "unfreeze",
        "recall",
    ]
