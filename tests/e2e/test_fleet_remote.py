"""`rollout fleet` against a real `rollout api` on PostgreSQL: its JSON is the body of
GET /v1/fleet, remote output equals local output, and the matrix marks what moves, failed,
waits on a constraint or runs a recalled version (rows crafted as the engine writes them)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import httpx
from sqlalchemy import select

from rollout.store.database import transaction
from rollout.store.models import Installation, Release, Upgrade
from tests.e2e.test_remote_cli import Api, api, api_database_url

__all__ = ["api", "api_database_url"]  # the fixtures

FROZEN = "environment staging-2 frozen until 2030-01-01 00:00 UTC: audit"
FAILED = "gate health failed: error_rate 0.2, wanted error_rate < 0.05"


def _craft(api: Api) -> None:
    """checkout 1.1.0 verifying in canary-1, rolled back in staging-1, frozen out of
    staging-2, queued in production; search-api 2.0.0 recalled where it runs (prod-1)."""
    for args in (("submit", "checkout", "1.1.0"), ("submit", "search-api", "2.0.0")):
        done = api.local(*args)
        assert done.returncode == 0, done.stderr
    now = datetime.now(UTC)
    url = api.env["ROLLOUT_DATABASE_URL"]
    with transaction(url) as session:
        upgrades = {
            u.environment: u
            for u in session.scalars(select(Upgrade).where(Upgrade.service == "checkout"))
        }
        upgrades["canary-1"].state = "verifying"
        upgrades["staging-1"].state, upgrades["staging-1"].reason = "rolled_back", FAILED
        staging_2 = upgrades["staging-2"]
        staging_2.hold_kind, staging_2.hold_reason = "freeze", FROZEN
        for environment in ("canary-1", "staging-1", "staging-2", "prod-1"):
            session.add(
                Installation(
                    environment=environment, service="checkout", version="1.0.0", updated_at=now
                )
            )
        session.add(
            Installation(
                environment="prod-1", service="search-api", version="2.0.0", updated_at=now
            )
        )
        release = session.scalars(select(Release).where(Release.service == "search-api")).one()
        release.state, release.reason = "recalled", "leaks memory"


def test_fleet_json_is_the_apis_body_and_remote_prints_what_local_prints(api: Api) -> None:
    _craft(api)
    operator = api.token("--scope", "operator")
    body = httpx.get(
        api.url + "/v1/fleet", headers={"Authorization": f"Bearer {operator}"}, timeout=10
    ).json()
    local = api.local("fleet", "-o", "json")
    assert local.returncode == 0, local.stderr
    assert json.loads(local.stdout) == body
    for args in (
        ("fleet",),
        ("fleet", "-o", "json"),
        ("fleet", "-o", "wide"),
        ("fleet", "--stage", "staging", "--service", "checkout"),
        ("fleet", "--team", "search", "-o", "yaml"),
    ):
        here, there = api.local(*args), api.remote(operator, *args)
        assert there.returncode == 0, there.stderr
        assert there.stdout == here.stdout, args

    cells = {
        (row["service"], c["environment"]): c for row in body["services"] for c in row["cells"]
    }
    assert [s["name"] for s in body["stages"]] == ["canary", "staging", "production"]
    assert cells["checkout", "canary-1"]["mark"] == "in_flight"
    assert cells["checkout", "canary-1"]["to_version"] == "1.1.0"
    assert cells["checkout", "canary-1"]["version"] == "1.0.0"
    assert (cells["checkout", "staging-1"]["mark"], cells["checkout", "staging-1"]["reason"]) == (
        "failed",
        FAILED,
    )
    assert (cells["checkout", "staging-2"]["mark"], cells["checkout", "staging-2"]["reason"]) == (
        "held",
        FROZEN,
    )
    assert cells["checkout", "prod-2"]["mark"] == "queued"
    assert cells["checkout", "prod-2"]["version"] is None
    recalled = cells["search-api", "prod-1"]
    assert (recalled["mark"], recalled["version"], recalled["reason"]) == (
        "recalled",
        "2.0.0",
        "leaks memory",
    )
    # The ledger runs in the canary only: no cell elsewhere.
    assert {e for s, e in cells if s == "ledger"} == {"canary-1"}

    table = api.local("fleet").stdout
    assert "→ 1.1.0" in table and "failed 1.1.0" in table and "held 1.1.0" in table
    assert "recalled" in table
    # Each reason once, with the environments it concerns.
    assert table.count("audit") == 1 and f"checkout 1.1.0 held: {FROZEN} — staging-2" in table
    assert "search-api 2.0.0 recalled: leaks memory — prod-1" in table


def test_a_team_token_sees_its_teams_services_only(api: Api) -> None:
    _craft(api)
    payments = api.token("--scope", "team", "--team", "payments")
    mine = api.remote(payments, "fleet", "-o", "json")
    assert mine.returncode == 0, mine.stderr
    assert [row["service"] for row in json.loads(mine.stdout)["services"]] == ["checkout"]
    other = api.remote(payments, "fleet", "--team", "search")
    assert other.returncode == 1 and "Traceback" not in other.stderr
    assert "HTTP 403" in other.stderr
    unknown = api.remote(payments, "fleet", "--stage", "nosuch")
    assert unknown.stderr.strip() == (
        "error: unknown stage 'nosuch' (stages: canary, staging, production) (HTTP 404)"
    )
