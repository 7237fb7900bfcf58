"""The HTTP API in process against the real PostgreSQL: who may do what (every endpoint ×
every kind of caller), idempotent submission, strict input, page actions, operational data
only."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select, text

from rollout.api import create_app
from rollout.config import Fleet, load_fleet
from rollout.domain.audit import Actor
from rollout.engine.runtime import Runtime
from rollout.engine.submission import submit
from rollout.store.database import reading, transaction
from rollout.store.models import (
    AgentDeployment,
    ApiToken,
    Installation,
    Page,
    PageEvent,
    Upgrade,
)
from rollout.store.tokens import Scope, create_token, revoke_token
from tests.conftest import FIXTURES, REDIS, fresh_database

TESTER = Actor.local("tester")

pytestmark = pytest.mark.integration

DIGEST = "sha256:" + "0f" * 32
TABLES = (
    "page_events, api_tokens, pages, measurements, upgrades, rollouts, releases, installations, "
    "agent_deployments, freezes, overrides"
)


@pytest.fixture(scope="session")
def api_database_url() -> Iterator[str]:
    """A database of the API tests' own: no ticker of another test moves these rows."""
    with fresh_database("rollout_api_test") as url:
        yield url


@dataclass
class World:
    """A fleet with two teams' rollouts, a page each, installed versions, and a token of
    every kind."""

    url: str
    fleet: Fleet
    app: FastAPI
    client: TestClient
    tokens: dict[str, str]
    token_ids: dict[str, int]
    rollouts: dict[str, int]
    pages: dict[str, int]

    def call(self, method: str, path: str, who: str | None, body: Any = None) -> Any:
        headers = {} if who is None else {"Authorization": f"Bearer {self.tokens[who]}"}
        return self.client.request(method, path, headers=headers, json=body)


def _page(session: Any, rollout_id: int, team: str, now: datetime) -> int:
    upgrade = session.scalars(select(Upgrade).where(Upgrade.rollout_id == rollout_id)).first()
    page = Page(
        dedup_key=f"rollout-{rollout_id}/health/{upgrade.environment}",
        team=team,
        severity="P3",
        kind="failure",
        rollout_id=rollout_id,
        upgrade_id=upgrade.id,
        service=upgrade.service,
        version=upgrade.to_version,
        environment=upgrade.environment,
        stage=upgrade.stage,
        gate="health",
        detail="error_rate 0.2, wanted error_rate < 0.05",
        summary="gate health failed",
        state="open",
        created_at=now,
    )
    session.add(page)
    session.flush()
    return page.id


def make_world(url: str, **options: Any) -> World:
    with transaction(url) as session:
        session.execute(text(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE"))
    fleet = load_fleet(FIXTURES / "fleet.yaml")
    runtime = Runtime(url)
    rollouts = {
        "checkout": submit(runtime, fleet, "checkout", "1.1.0", DIGEST).rollout_id,
        "search-api": submit(runtime, fleet, "search-api", "2.0.0", DIGEST).rollout_id,
    }
    now = datetime.now(UTC)
    tokens, ids = {}, {}
    grants: dict[str, dict[str, Any]] = {
        "pipeline": {"scope": Scope.PIPELINE, "services": ["checkout"]},
        "payments": {"scope": Scope.TEAM, "team": "payments"},
        "search": {"scope": Scope.TEAM, "team": "search"},
        "operator": {"scope": Scope.OPERATOR},
        "admin": {"scope": Scope.ADMIN},
        "revoked": {"scope": Scope.ADMIN},
        "victim": {"scope": Scope.OPERATOR},  # what the admin revokes in the matrix
        "agent": {"scope": Scope.AGENT, "environments": ["canary-1"]},
    }
    with transaction(url) as session:
        for name, grant in grants.items():
            info, secret = create_token(session, now=now, **grant, actor=TESTER)
            tokens[name], ids[name] = secret, info.id
        revoke_token(session, ids["revoked"], now, actor=TESTER)
        pages = {
            "payments": _page(session, rollouts["checkout"], "payments", now),
            "search": _page(session, rollouts["search-api"], "search", now),
        }
        session.add_all(
            Installation(environment=e, service=s, version="1.0.0", updated_at=now)
            for e in ("canary-1", "prod-1")
            for s in ("checkout", "search-api")
        )
        # A deploy the engine wants in canary-1, as a pull-mode driver records it.
        session.add(
            AgentDeployment(
                key="upgrade-pull-1",
                environment="canary-1",
                service="checkout",
                version="1.1.0",
                phase="running",
                requested_at=now,
            )
        )
    tokens["garbage"] = "rollout_" + "x" * 43
    app = create_app(url, fleet, broker_url=REDIS, **options)
    return World(url, fleet, app, TestClient(app), tokens, ids, rollouts, pages)


@pytest.fixture
def world(api_database_url: str) -> World:
    return make_world(api_database_url)


CALLERS = (
    *("pipeline", "payments", "search", "operator", "admin", "agent"),
    *("revoked", "garbage", None),
)
# An agent token may do nothing but its own environments' agent calls.
NOBODY = {"revoked": 401, "garbage": 401, None: 401, "agent": 403}
AGENT_ONLY = dict.fromkeys(("pipeline", "payments", "search", "operator", "admin", "agent"), 403)
AGENT_ONLY["agent"] = 200
NO_ONE = dict.fromkeys(("pipeline", "payments", "search", "operator", "admin", "agent"), 403)
READ_ALL = {"pipeline": 403, "payments": 200, "search": 200, "operator": 200, "admin": 200}
PAYMENTS_ONLY = {**READ_ALL, "search": 403}
SEARCH_ONLY = {**READ_ALL, "payments": 403}
ADMIN_ONLY = {"pipeline": 403, "payments": 403, "search": 403, "operator": 403, "admin": 200}
OPEN = dict.fromkeys(CALLERS, 200)
STEER = {"pipeline": 403, "payments": 403, "search": 403, "operator": 200, "admin": 200}

# (method, path template, body, the answer per caller); paths name the world's ids.
MATRIX: list[tuple[str, str, Any, dict[Any, int]]] = [
    ("GET", "/healthz", None, OPEN),
    ("GET", "/readyz", None, OPEN),
    (
        "POST",
        "/v1/releases",
        {"service": "checkout", "version": "1.1.0", "digest": DIGEST},
        {**dict.fromkeys(("payments", "search", "operator", "admin"), 403), "pipeline": 200},
    ),
    (
        "POST",
        "/v1/releases",
        {"service": "search-api", "version": "2.0.0", "digest": DIGEST},
        dict.fromkeys(("pipeline", "payments", "search", "operator", "admin"), 403),
    ),
    ("GET", "/v1/rollouts", None, READ_ALL),
    ("GET", "/v1/rollouts?team=payments", None, PAYMENTS_ONLY),
    ("GET", "/v1/rollouts?team=search", None, SEARCH_ONLY),
    # A pipeline reads the rollouts of its own services (checkout), not another's.
    ("GET", "/v1/rollouts/{checkout}", None, {**PAYMENTS_ONLY, "pipeline": 200}),
    ("GET", "/v1/rollouts/{search-api}", None, SEARCH_ONLY),
    ("GET", "/v1/rollouts/{checkout}/status", None, {**PAYMENTS_ONLY, "pipeline": 200}),
    ("GET", "/v1/rollouts/{search-api}/status?within=1m", None, SEARCH_ONLY),
    ("GET", "/v1/releases/checkout/1.1.0/status", None, {**PAYMENTS_ONLY, "pipeline": 200}),
    ("GET", "/v1/releases/search-api/2.0.0/status", None, SEARCH_ONLY),
    ("GET", "/v1/rollouts/{checkout}/events?wait=0s", None, {**PAYMENTS_ONLY, "pipeline": 200}),
    ("GET", "/v1/environments", None, READ_ALL),
    ("GET", "/v1/fleet", None, READ_ALL),
    ("GET", "/v1/fleet?team=payments&stage=production", None, PAYMENTS_ONLY),
    ("GET", "/v1/services", None, READ_ALL),
    ("GET", "/v1/services?team=search", None, SEARCH_ONLY),
    ("GET", "/v1/services/checkout", None, PAYMENTS_ONLY),
    ("GET", "/v1/services/search-api", None, SEARCH_ONLY),
    ("GET", "/v1/teams/payments/oncall", None, PAYMENTS_ONLY),
    ("GET", "/v1/teams/search/oncall?at=2026-03-29T08:30:00%2B02:00", None, SEARCH_ONLY),
    (
        "POST",
        "/v1/teams/payments/overrides",
        {"member": "Ada Park", "starts_at": "2026-03-29T08:00Z", "ends_at": "2026-03-29T10:00Z"},
        {**PAYMENTS_ONLY, "payments": 201, "operator": 201, "admin": 201},
    ),
    ("GET", "/v1/pages", None, READ_ALL),
    ("GET", "/v1/pages?team=payments", None, PAYMENTS_ONLY),
    ("GET", "/v1/pages?open=true", None, READ_ALL),
    ("GET", "/v1/hygiene", None, READ_ALL),
    ("GET", "/v1/hygiene?team=payments&since=2w", None, PAYMENTS_ONLY),
    ("POST", "/v1/pages/{page:payments}/acknowledge", None, PAYMENTS_ONLY),
    ("POST", "/v1/pages/{page:search}/acknowledge", None, SEARCH_ONLY),
    ("POST", "/v1/pages/{page:search}/resolve", None, SEARCH_ONLY),
    ("POST", "/v1/pages/{page:payments}/feedback", {"kind": "not_actionable"}, PAYMENTS_ONLY),
    ("GET", "/v1/config", None, ADMIN_ONLY),
    ("GET", "/v1/tokens", None, ADMIN_ONLY),
    ("POST", "/v1/tokens", {"scope": "operator"}, {**ADMIN_ONLY, "admin": 201}),
    ("POST", "/v1/tokens/{token:victim}/revoke", None, ADMIN_ONLY),
    # Steering: the operator acts, the admin's same request is a no-op (200 again).
    ("POST", "/v1/rollouts/{checkout}/pause", {"reason": "change freeze"}, STEER),
    ("POST", "/v1/rollouts/{checkout}/resume", None, STEER),
    ("POST", "/v1/rollouts/{checkout}/promote", {}, {**STEER, "operator": 409, "admin": 409}),
    ("POST", "/v1/rollouts/{search-api}/abort", {"reason": "wrong build"}, STEER),
    ("POST", "/v1/rollouts/{search-api}/retry", None, STEER),
    (
        "POST",
        "/v1/rollouts/{checkout}/skip",
        {"environment": "nowhere-1", "reason": "typo"},
        {**STEER, "operator": 404, "admin": 404},
    ),
    # The history: a team token sees its own team's.
    ("GET", "/v1/events", None, READ_ALL),
    ("GET", "/v1/events?rollout={checkout}&since=2w", None, PAYMENTS_ONLY),
    # The operator recalls; the admin's same request is a no-op (200 again).
    ("POST", "/v1/releases/recall", {"service": "search-api", "version": "2.0.0"}, STEER),
    # Freezes: the operator freezes, the admin's same request replaces it (201 again).
    (
        "POST",
        "/v1/freezes",
        {"target": "prod-1", "until": "2h", "reason": "audit"},
        {**STEER, "operator": 201, "admin": 201},
    ),
    ("GET", "/v1/freezes", None, READ_ALL),
    ("DELETE", "/v1/freezes/prod-1", None, STEER),
    # Pull-mode agents: only an agent token, and only for its own environments.
    ("GET", "/v1/agents/canary-1/desired", None, AGENT_ONLY),
    ("GET", "/v1/agents/prod-1/desired", None, NO_ONE),
    (
        "POST",
        "/v1/agents/canary-1/reports",
        {"key": "upgrade-pull-1", "phase": "succeeded"},
        AGENT_ONLY,
    ),
    ("POST", "/v1/agents/prod-1/reports", {"key": "upgrade-pull-1", "phase": "failed"}, NO_ONE),
    ("POST", "/v1/agents/canary-1/health", {"services": {"checkout": "healthy"}}, AGENT_ONLY),
    ("POST", "/v1/agents/prod-1/health", {"services": {"checkout": "healthy"}}, NO_ONE),
]


def _path(world: World, template: str) -> str:
    path = template
    for name, rollout_id in world.rollouts.items():
        path = path.replace(f"{{{name}}}", str(rollout_id))
    for team, page_id in world.pages.items():
        path = path.replace(f"{{page:{team}}}", str(page_id))
    for name, token_id in world.token_ids.items():
        path = path.replace(f"{{token:{name}}}", str(token_id))
    return path


def test_the_authorization_matrix(world: World) -> None:
    wrong = []
    for method, template, body, answers in MATRIX:
        expected = {**NOBODY, **answers}
        path = _path(world, template)
        for caller in CALLERS:
            response = world.call(method, path, caller, body)
            if response.status_code != expected[caller]:
                wrong.append(f"{method} {path} as {caller}: {response.status_code} {response.text}")
            if response.status_code >= 400:
                assert isinstance(response.json()["detail"], str) and response.json()["detail"]
            if response.status_code == 401:
                assert response.headers["www-authenticate"] == "Bearer"
    assert wrong == []


def test_every_endpoint_of_the_document_is_in_the_matrix(world: World) -> None:
    documented = {
        (method.upper(), path)
        for path, operations in world.client.get("/openapi.json").json()["paths"].items()
        for method in operations
    }
    templates = {
        (method, template.split("?")[0]
         .replace("/releases/checkout/1.1.0/", "/releases/{service}/{version}/")
         .replace("/releases/search-api/2.0.0/", "/releases/{service}/{version}/")
         .replace("{checkout}", "{rollout_id}").replace("{search-api}", "{rollout_id}")
         .replace("{page:payments}", "{page_id}").replace("{page:search}", "{page_id}")
         .replace("{token:victim}", "{token_id}")
         .replace("/checkout", "/{name}").replace("/search-api", "/{name}")
         .replace("/teams/payments/", "/teams/{team}/").replace("/teams/search/", "/teams/{team}/")
         .replace("/freezes/prod-1", "/freezes/{target}")
         .replace("/agents/canary-1/", "/agents/{environment}/")
         .replace("/agents/prod-1/", "/agents/{environment}/"))
        for method, template, _, _ in MATRIX
    }  # fmt: skip
    assert documented == templates


def test_steering_answers_what_it_did(world: World) -> None:
    checkout = world.rollouts["checkout"]
    paused = world.call("POST", f"/v1/rollouts/{checkout}/pause", "operator", {"reason": "x"})
    assert paused.json() == {
        "rollout_id": checkout,
        "state": "paused",
        "changed": True,
        "message": f"rollout {checkout} paused: paused by operator: x",
        "retried_from": None,
    }
    again = world.call("POST", f"/v1/rollouts/{checkout}/pause", "admin")
    assert again.status_code == 200 and again.json()["changed"] is False
    detail = world.call("GET", f"/v1/rollouts/{checkout}", "operator").json()
    assert detail["state"] == "paused" and detail["reason"] == "paused by operator: x"
    waiting = {u["hold_reason"] for u in detail["upgrades"]}
    assert waiting == {"rollout paused: paused by operator: x"}, "the canary was taken back"

    search = world.rollouts["search-api"]
    aborted = world.call("POST", f"/v1/rollouts/{search}/abort", "operator").json()
    assert (aborted["state"], aborted["message"]) == (
        "failed",
        f"rollout {search} aborted: aborted by operator",
    )
    retried = world.call("POST", f"/v1/rollouts/{search}/retry", "operator").json()
    assert retried["retried_from"] == search and retried["rollout_id"] > search
    assert retried["state"] == "running" and retried["changed"] is True
    again = world.call("POST", f"/v1/rollouts/{search}/retry", "admin").json()
    assert (again["rollout_id"], again["changed"]) == (retried["rollout_id"], False)
    # The same release again is the newest rollout of it.
    body = {"service": "checkout", "version": "1.1.0", "digest": DIGEST}
    assert world.call("POST", "/v1/releases", "pipeline", body).json()["rollout_id"] == checkout


@pytest.mark.parametrize(
    ("action", "body", "status", "fragment"),
    [
        ("resume", None, 200, "running already"),
        ("promote", None, 409, "stage canary has not passed: 0 of 1 environments passed"),
        ("retry", None, 409, "is running: only a failed rollout can be retried"),
        ("pause", {"reason": "x", "force": True}, 422, "body.force: unknown field"),
        ("pause", {"reason": ""}, 422, "body.reason"),
        ("abort", {"reason": "x" * 201}, 422, "body.reason"),
        ("frobnicate", None, 404, "Not Found"),
    ],
)
def test_steering_refusals(
    world: World, action: str, body: Any, status: int, fragment: str
) -> None:
    response = world.call(
        "POST", f"/v1/rollouts/{world.rollouts['checkout']}/{action}", "admin", body
    )
    assert response.status_code == status, response.text
    key = "message" if status == 200 else "detail"
    assert fragment in response.json()[key]


@pytest.mark.parametrize("action", ["pause", "resume", "abort", "retry", "promote"])
def test_steering_an_unknown_rollout_is_404(world: World, action: str) -> None:
    response = world.call("POST", f"/v1/rollouts/999999/{action}", "operator")
    assert response.status_code == 404
    assert response.json()["detail"] == "no rollout 999999"


def test_a_team_reads_only_its_own(world: World) -> None:
    listed = world.call("GET", "/v1/rollouts", "payments").json()["rollouts"]
    assert [r["service"] for r in listed] == ["checkout"]
    pages = world.call("GET", "/v1/pages", "search").json()["pages"]
    assert [p["team"] for p in pages] == ["search"]
    environments = world.call("GET", "/v1/environments", "payments").json()["environments"]
    installed = {i["service"] for e in environments for i in e["installed"]}
    assert installed == {"checkout"}
    everything = world.call("GET", "/v1/environments", "operator").json()["environments"]
    assert {i["service"] for e in everything for i in e["installed"]} == {"checkout", "search-api"}
    assert len(world.call("GET", "/v1/rollouts", "operator").json()["rollouts"]) == 2
    matrix = world.call("GET", "/v1/fleet", "payments").json()["services"]
    assert [row["service"] for row in matrix] == ["checkout"]


def test_a_team_sees_operational_data_never_payload(world: World) -> None:
    detail = world.call("GET", f"/v1/rollouts/{world.rollouts['checkout']}", "payments").json()
    assert detail["service"] == "checkout" and detail["release"]["digest"] == DIGEST
    assert len(detail["upgrades"]) == 6 and detail["pages"][0]["team"] == "payments"
    flat = json.dumps(detail)
    # Drivers, gate URLs and labels stay in the engine's rows.
    for secret_ish in ("driver", "poll_interval", "http://", "labels", "plan"):
        assert secret_ish not in flat, secret_ish
    service = world.call("GET", "/v1/services/checkout", "payments").json()
    assert "http://" not in json.dumps(service)
    assert service["gates"] == [
        {"name": "health", "type": "http"},
        {"name": "soak", "type": "soak"},
    ]


def test_submission_is_idempotent_and_a_digest_clash_is_409(world: World) -> None:
    body = {"service": "checkout", "version": "1.2.0", "digest": DIGEST}
    first = world.call("POST", "/v1/releases", "pipeline", body)
    assert first.status_code == 201, first.text
    assert first.json()["created"] is True
    assert first.json()["superseded"] == [world.rollouts["checkout"]]
    again = world.call("POST", "/v1/releases", "pipeline", body)
    assert again.status_code == 200
    assert again.json()["rollout_id"] == first.json()["rollout_id"]
    assert again.json()["created"] is False
    clash = world.call("POST", "/v1/releases", "pipeline", {**body, "digest": "sha256:" + "a" * 64})
    assert clash.status_code == 409
    assert "already submitted with digest" in clash.json()["detail"]
    listed = world.call("GET", "/v1/rollouts?service=checkout", "operator").json()["rollouts"]
    assert len(listed) == 2


def test_a_service_unknown_to_the_config_is_404(world: World) -> None:
    with transaction(world.url) as session:
        _, secret = create_token(
            session, Scope.PIPELINE, datetime.now(UTC), ["ghost"], actor=TESTER
        )
    response = world.client.post(
        "/v1/releases",
        json={"service": "ghost", "version": "1.0.0"},
        headers={"Authorization": f"Bearer {secret}"},
    )
    assert response.status_code == 404 and "unknown service 'ghost'" in response.json()["detail"]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"service": "checkout", "version": "1.0 beta"}, "body.version"),
        ({"service": "checkout", "version": "x" * 65}, "body.version"),
        ({"service": "Checkout", "version": "1.0.0"}, "body.service"),
        ({"service": "checkout", "version": "1.0.0", "digest": "md5:abc"}, "body.digest"),
        ({"service": "checkout", "version": "1.0.0", "digest": "sha256:" + "A" * 64}, "digest"),
        ({"service": "checkout", "version": "1.0.0", "force": True}, "body.force: unknown field"),
        ({"service": "checkout"}, "body.version: Field required"),
        ([1, 2], "body"),
    ],
)
def test_bad_input_is_422_with_a_message(world: World, body: Any, fragment: str) -> None:
    response = world.call("POST", "/v1/releases", "pipeline", body)
    assert response.status_code == 422
    assert fragment in response.json()["detail"]
    assert len(world.call("GET", "/v1/rollouts", "operator").json()["rollouts"]) == 2


def test_malformed_json_and_unknown_query_parameters(world: World) -> None:
    headers = {
        "Authorization": f"Bearer {world.tokens['pipeline']}",
        "Content-Type": "application/json",
    }
    broken = world.client.post("/v1/releases", content=b'{"service":', headers=headers)
    assert broken.status_code == 422 and "malformed JSON" in broken.json()["detail"]
    unknown = world.call("GET", "/v1/rollouts?servce=checkout", "operator")
    assert unknown.status_code == 422 and "servce" in unknown.json()["detail"]
    bad_state = world.call("GET", "/v1/rollouts?state=sleepy", "operator")
    assert bad_state.status_code == 422 and "query.state" in bad_state.json()["detail"]
    huge_id = world.call("GET", f"/v1/rollouts/{2**40}", "operator")
    assert huge_id.status_code == 422
    assert world.call("GET", "/v1/rollouts/999", "operator").status_code == 404


def test_a_body_over_the_limit_is_413(api_database_url: str) -> None:
    world = make_world(api_database_url, max_body=1024)
    headers = {"Authorization": f"Bearer {world.tokens['pipeline']}"}
    body = {"service": "checkout", "version": "1.0.0", "padding": "x" * 2000}
    announced = world.client.post("/v1/releases", json=body, headers=headers)
    assert announced.status_code == 413 and "over 1024 bytes" in announced.json()["detail"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: the middleware counts
        yield b'{"service": "checkout", "version": "1.0.0", "padding": "'
        yield b"x" * 2000
        yield b'"}'

    streamed = world.client.post("/v1/releases", content=chunks(), headers=headers)
    assert streamed.status_code == 413
    fits = world.call("POST", "/v1/releases", "pipeline", {"service": "checkout", "version": "3"})
    assert fits.status_code == 201


def test_page_actions_change_the_row_once_and_record_who(world: World) -> None:
    page = world.pages["payments"]
    acked = world.call("POST", f"/v1/pages/{page}/acknowledge", "payments")
    assert acked.status_code == 200 and acked.json()["state"] == "acknowledged"
    assert world.call("POST", f"/v1/pages/{page}/acknowledge", "operator").status_code == 200
    resolved = world.call("POST", f"/v1/pages/{page}/resolve", "payments")
    assert resolved.json()["state"] == "resolved"
    late = world.call("POST", f"/v1/pages/{page}/acknowledge", "payments")
    assert late.status_code == 409 and "already resolved" in late.json()["detail"]
    with reading(world.url) as session:
        events = session.scalars(select(PageEvent).where(PageEvent.page_id == page)).all()
        assert [(e.action, e.token_id) for e in events] == [
            ("acknowledged", world.token_ids["payments"]),
            ("resolved", world.token_ids["payments"]),
        ]
        assert session.get(Page, page).state == "resolved"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        ({"kind": "misrouted", "team": "search"}, 200, ""),
        ({"kind": "misrouted"}, 422, "body.misrouted.team: Field required"),
        ({"kind": "misrouted", "team": "nobody"}, 404, "unknown team 'nobody'"),
        ({"kind": "misrouted", "team": "payments"}, 409, "went to team payments already"),
        ({"kind": "not_actionable", "team": "search"}, 422, "team: unknown field"),
        ({"kind": "noisy"}, 422, "does not match any of the expected tags"),
        ({"kind": "not_actionable", "note": "x" * 201}, 422, "not_actionable.note"),
    ],
)
def test_page_feedback(world: World, body: Any, status: int, fragment: str) -> None:
    page = world.pages["payments"]
    response = world.call("POST", f"/v1/pages/{page}/feedback", "payments", body)
    assert response.status_code == status, response.text
    with reading(world.url) as session:
        events = session.scalars(select(PageEvent).where(PageEvent.page_id == page)).all()
    if status == 200:
        # A misroute resolves the page where it went and pages the team it belongs to.
        assert [(e.action, e.misrouted_to) for e in events] == [
            ("misrouted", "search"),
            ("resolved", None),
        ]
        with reading(world.url) as session:
            moved = session.scalars(select(Page).where(Page.dedup_key.endswith("/to-search"))).all()
        assert [(p.team, p.state) for p in moved] == [("search", "open")]
        answer = response.json()
        assert answer["state"] == "resolved" and answer["repaged"]["team"] == "search"
    else:
        assert fragment in response.json()["detail"]
        assert events == []


def test_tokens_are_kept_as_hashes_and_shown_once(world: World) -> None:
    created = world.call("POST", "/v1/tokens", "admin", {"scope": "team", "team": "search"})
    assert created.status_code == 201
    secret = created.json()["secret"]
    assert secret.startswith("rollout_") and len(secret) > 40
    listing = world.call("GET", "/v1/tokens", "admin")
    assert secret not in listing.text
    assert all(world.tokens[n] not in listing.text for n in ("admin", "pipeline"))
    with reading(world.url) as session:
        rows = session.scalars(select(ApiToken)).all()
        assert all(secret not in repr(vars(row)) for row in rows)
    headers = {"Authorization": f"Bearer {secret}"}
    assert world.client.get("/v1/pages", headers=headers).status_code == 200
    token_id = created.json()["token"]["id"]
    assert world.call("POST", f"/v1/tokens/{token_id}/revoke", "admin").status_code == 200
    refused = world.client.get("/v1/pages", headers=headers)
    assert refused.status_code == 401 and "revoked" in refused.json()["detail"]


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        ({"scope": "pipeline"}, 422, "services: Field required"),
        ({"scope": "pipeline", "services": []}, 422, "at least 1 item"),
        ({"scope": "pipeline", "services": ["ghost"]}, 404, "unknown service(s): ghost"),
        ({"scope": "team"}, 422, "team: Field required"),
        ({"scope": "team", "team": "nobody"}, 404, "unknown team 'nobody'"),
        ({"scope": "team", "team": "payments", "services": ["checkout"]}, 422, "unknown field"),
        ({"scope": "operator", "team": "payments"}, 422, "team: unknown field"),
        ({"scope": "root"}, 422, "body"),
    ],
)
def test_a_token_grant_must_make_sense(world: World, body: Any, status: int, fragment: str) -> None:
    response = world.call("POST", "/v1/tokens", "admin", body)
    assert response.status_code == status
    assert fragment in response.json()["detail"]


def test_malformed_authorization_headers(world: World) -> None:
    for header in ("Basic abc", "Bearer", "Bearer ", world.tokens["admin"], "Bearer nope"):
        response = world.client.get("/v1/tokens", headers={"Authorization": header})
        assert response.status_code == 401, header
        assert world.tokens["admin"] not in response.text


def test_readiness_names_what_is_down(api_database_url: str) -> None:
    fleet = load_fleet(FIXTURES / "fleet.yaml")
    ready = TestClient(create_app(api_database_url, fleet, broker_url=REDIS)).get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "database": "ok", "broker": "ok"}
    dead = "redis://127.0.0.1:1/0"
    down = TestClient(create_app(api_database_url, fleet, broker_url=dead)).get("/readyz")
    assert down.status_code == 503
    assert down.json()["database"] == "ok" and down.json()["broker"].startswith("unreachable")
    assert down.headers["Retry-After"].isdigit()


def test_a_database_outage_is_503_with_retry_after() -> None:
    nowhere = "postgresql+psycopg://rollout@127.0.0.1:1/rollout"
    client = TestClient(create_app(nowhere, load_fleet(FIXTURES / "fleet.yaml")))
    down = client.get("/v1/pages", headers={"Authorization": "Bearer rollout_" + "x" * 43})
    assert down.status_code == 503, down.text
    assert down.json() == {"detail": "the database is unavailable; try again"}
    # A client that honours it backs off instead of hammering a database on its way back.
    assert int(down.headers["Retry-After"]) > 0


def test_a_revoked_token_is_refused_without_naming_it(world: World) -> None:
    headers = {"Authorization": f"Bearer {world.tokens['revoked']}"}
    refused = world.client.get("/v1/pages", headers=headers)
    assert refused.status_code == 401
    assert refused.json() == {"detail": "revoked token"}
    assert str(world.token_ids["revoked"]) not in refused.text


def test_who_is_on_call_over_the_api(world: World) -> None:
    at = "2026-03-29T08:30:00+02:00"
    answer = world.call("GET", f"/v1/teams/payments/oncall?at={at.replace('+', '%2B')}", "payments")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["primary"]["member"] == "Ben Okafor" and body["primary"]["role"] == "primary"
    assert body["secondary"]["member"] == "Chen Li"
    assert "rotation payments-primary" in body["primary"]["reason"]
    naive = world.call("GET", "/v1/teams/payments/oncall?at=2026-03-29T08:30:00", "payments")
    assert naive.status_code == 422 and "zone" in naive.json()["detail"]
    assert world.call("GET", "/v1/teams/nobody/oncall", "operator").status_code == 404


def test_the_admin_reads_the_config_without_secret_values(world: World) -> None:
    answer = world.call("GET", "/v1/config", "admin")
    assert answer.status_code == 200
    config = answer.json()
    assert [s["name"] for s in config["services"]] == [s.name for s in world.fleet.services]
    channels = [c for t in config["teams"] for c in t["channels"]]
    assert channels and all(c["url"] == {"env": "ROLLOUT_TEST_PAGE_HOOK"} for c in channels)


def test_freezes_over_the_api(world: World) -> None:
    created = world.call(
        "POST", "/v1/freezes", "operator", {"target": "checkout", "until": "2h", "reason": "audit"}
    )
    assert created.status_code == 201, created.text
    frozen = created.json()
    assert (frozen["kind"], frozen["target"], frozen["reason"]) == ("service", "checkout", "audit")
    until = datetime.fromisoformat(frozen["until"])
    assert 7190 < (until - datetime.now(UTC)).total_seconds() <= 7200
    assert frozen["message"].startswith("service checkout frozen until ")

    listed = world.call("GET", "/v1/freezes", "search").json()["freezes"]
    assert [(f["kind"], f["target"]) for f in listed] == [("service", "checkout")]

    refusals = [
        ({"target": "prod-9", "until": "2h", "reason": "x"}, 404, "unknown environment or service"),
        ({"target": "prod-1", "until": "2020-01-01T00:00:00Z", "reason": "x"}, 409, "not in the"),
        ({"target": "prod-1", "until": "0s", "reason": "x"}, 409, "0s is not in the future"),
        ({"target": "prod-1", "until": "-2h", "reason": "x"}, 422, "body.until"),
        ({"target": "prod-1", "until": "soon", "reason": "x"}, 422, "body.until"),
        ({"target": "prod-1", "until": "2h", "reason": "   "}, 422, "body.reason"),
        ({"target": "prod-1", "until": "2h"}, 422, "body.reason"),
    ]
    for body, status, fragment in refusals:
        refused = world.call("POST", "/v1/freezes", "operator", body)
        assert refused.status_code == status, (body, refused.text)
        assert fragment in refused.json()["detail"], (body, refused.text)
    naive = world.call(
        "POST",
        "/v1/freezes",
        "operator",
        {"target": "prod-1", "until": "2999-01-01T00:00", "reason": "x"},
    )
    assert naive.json()["until"].startswith("2999-01-01T00:00:00"), naive.text  # UTC

    lifted = world.call("DELETE", "/v1/freezes/checkout", "operator").json()
    assert lifted == {"changed": True, "message": "service checkout unfrozen"}
    again = world.call("DELETE", "/v1/freezes/checkout", "operator").json()
    assert again == {"changed": False, "message": "checkout was not frozen"}
    listed = world.call("GET", "/v1/freezes", "operator").json()["freezes"]
    assert [f["target"] for f in listed] == ["prod-1"]


@pytest.mark.parametrize(
    ("path", "body", "status", "fragment"),
    [
        ("/v1/hygiene?since=0s", None, 422, "query.since: String should match pattern"),
        ("/v1/hygiene?team=nobody", None, 404, "unknown team 'nobody'"),
        (
            "/v1/teams/payments/overrides",
            {"member": "Ada Park", "starts_at": "2026-03-29T10:00", "ends_at": "2026-03-29T12:00"},
            422,
            "with their zone",
        ),
        (
            "/v1/teams/payments/overrides",
            {
                "member": "Ada Park",
                "starts_at": "2026-03-29T10:00Z",
                "ends_at": "2026-03-29T09:00Z",
            },
            422,
            "ends_at must be after starts_at",
        ),
        (
            "/v1/teams/payments/overrides",
            {
                "member": "Dana Cruz",
                "starts_at": "2026-03-29T08:00Z",
                "ends_at": "2026-03-29T09:00Z",
            },
            422,
            "'Dana Cruz' is not a member of team 'payments'",
        ),
        (
            "/v1/teams/nobody/overrides",
            {
                "member": "Ada Park",
                "starts_at": "2026-03-29T08:00Z",
                "ends_at": "2026-03-29T09:00Z",
            },
            404,
            "unknown team 'nobody'",
        ),
    ],
)
def test_hygiene_and_override_refusals(
    world: World, path: str, body: Any, status: int, fragment: str
) -> None:
    response = world.call("GET" if body is None else "POST", path, "operator", body)
    assert response.status_code == status, response.text
    assert fragment in response.json()["detail"]


def test_pages_say_whom_they_reached_and_open_leaves_out_resolved_ones(world: World) -> None:
    page = world.pages["payments"]
    assert world.call("POST", f"/v1/pages/{page}/resolve", "operator").status_code == 200
    listed = world.call("GET", "/v1/pages", "operator").json()["pages"]
    assert {p["id"] for p in listed} == set(world.pages.values())
    assert all(set(p) >= {"recipient", "role", "deliveries"} for p in listed)
    still = world.call("GET", "/v1/pages?open=true", "operator").json()["pages"]
    assert [p["id"] for p in still] == [world.pages["search"]]
