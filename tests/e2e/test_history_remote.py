"""The history through a real `rollout api` process on PostgreSQL: `rollout history -o json`
is GET /v1/events's body, remote output equals local output, actions taken with a token
name that token, and a team token sees its team's only."""

from __future__ import annotations

import getpass
import json
import re

import httpx
import pytest

from tests.e2e.test_remote_cli import DIGEST, Api, _refused, api, api_database_url

pytestmark = pytest.mark.e2e
__all__ = ["api", "api_database_url"]  # the fixtures
LOCAL = f"local:{getpass.getuser()}"


def _token(api: Api, *args: str) -> tuple[str, int]:
    made = api.local("token", "create", *args)
    assert made.returncode == 0, made.stderr
    found = re.search(r"token (\d+) created", made.stderr)
    assert found is not None, made.stderr
    return made.stdout.strip(), int(found.group(1))


def _ok(result: object) -> str:
    assert getattr(result, "returncode", 1) == 0, getattr(result, "stderr", "")
    return str(getattr(result, "stdout", ""))


def test_history_json_is_the_events_body_and_names_who_acted(api: Api) -> None:
    pipeline, _ = _token(api, "--scope", "pipeline", "--service", "checkout")
    operator, operator_id = _token(api, "--scope", "operator", "--note", "on-call laptop")
    search, _ = _token(api, "--scope", "team", "--team", "search")
    payments, _ = _token(api, "--scope", "team", "--team", "payments")
    _ok(api.remote(pipeline, "submit", "checkout", "1.1.0", "--digest", DIGEST))

    _ok(api.remote(operator, "pause", "1", "--reason", "change freeze"))
    said = _ok(api.remote(operator, "skip", "1", "staging-2", "--reason", "staging-2 is rebuilt"))
    assert said == "rollout 1: staging-2 skipped: staging-2 is rebuilt\n"
    _ok(api.local("resume", "1"))
    # Refused by the API, not recorded.
    _refused(api.remote(operator, "promote", "1", "--force"), "needs a reason")
    forced = httpx.post(
        f"{api.url}/v1/rollouts/1/promote",
        json={"force": True},
        headers={"Authorization": f"Bearer {operator}"},
    )
    assert forced.status_code == 422, forced.text
    assert forced.json()["detail"] == "body.forced.reason: Field required"
    _refused(
        api.remote(operator, "skip", "1", "nowhere-1", "--reason", "x"),
        "rollout 1 has no upgrade in nowhere-1",
        "HTTP 404",
    )
    _refused(api.remote(search, "skip", "1", "staging-1", "--reason", "x"), "HTTP 403")
    _ok(
        api.remote(
            operator, "promote", "1", "--force", "--reason", "the canary was checked by hand"
        )
    )

    args = ("history", "--rollout", "1", "-o", "json")
    remote, local = api.remote(operator, *args), api.local(*args)
    assert _ok(remote) == _ok(local)
    body = httpx.get(
        f"{api.url}/v1/events",
        params={"rollout": 1, "since": "7d"},
        headers={"Authorization": f"Bearer {operator}"},
    )
    assert body.status_code == 200, body.text
    assert json.loads(remote.stdout) == body.json()

    who = f"token {operator_id} (on-call laptop)"
    actions = [
        (e["action"], e["who"], e["why"]) for e in body.json()["events"] if e["kind"] == "action"
    ]
    assert actions == [
        ("pause", who, "change freeze"),
        ("skip", who, "staging-2 is rebuilt"),
        ("resume", LOCAL, None),
        ("force-promote", who, "the canary was checked by hand"),
    ]
    assert body.json()["events"][0]["kind"] == "release"

    table = _ok(api.remote(operator, "history", "checkout"))
    assert table == _ok(api.local("history", "checkout"))
    assert who in table and "change freeze" in table and "staging-2 is rebuilt" in table

    # A team token sees its own team's history only.
    def events(token: str, **params: object) -> httpx.Response:
        return httpx.get(
            f"{api.url}/v1/events",
            params=params,
            headers={"Authorization": f"Bearer {token}"},
        )

    mine = events(payments, service="checkout").json()["events"]
    assert [e["action"] for e in mine if e["kind"] == "action"] == [a[0] for a in actions]
    assert events(search, service="checkout").json() == {"events": []}
    theirs = events(search, rollout=1)
    assert theirs.status_code == 403 and "belongs to team payments" in theirs.text
    # The tokens made locally are in the fleet's history (an admin's view), never a secret.
    everything = json.dumps(events(operator).json())
    assert "token-create" in everything
    assert all(secret not in everything for secret in (pipeline, operator, search, payments))
