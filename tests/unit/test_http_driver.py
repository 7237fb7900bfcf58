"""The http driver's answers to what an agent says: retries on 5xx and lost connections
within its time budget, a 4xx as the agent's refusal, the token never in a message."""

from __future__ import annotations

import time

import httpx
import pytest

from rollout.drivers import DeployPhase, DeployRequest, DriverError, Health
from rollout.drivers.http import HttpDriver, HttpSpec
from rollout.secrets import SecretRef

REQUEST = DeployRequest("upgrade-7", "prod-1", "checkout", "2.0.0")


def _driver(answers: list[httpx.Response | Exception], seen: list[httpx.Request]) -> HttpDriver:
    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    spec = HttpSpec("http://prod-1.agents:8480", SecretRef(env="AGENT_TOKEN"), 2.0)
    return HttpDriver(spec, transport=httpx.MockTransport(handle))


@pytest.fixture(autouse=True)
def token(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("AGENT_TOKEN", "tok-123-secret")
    return "tok-123-secret"


def test_5xx_and_lost_connections_are_retried_then_the_deploy_is_asked_once() -> None:
    seen: list[httpx.Request] = []
    driver = _driver(
        [
            httpx.ConnectError("refused"),
            httpx.Response(503, json={"detail": "restarting"}),
            httpx.Response(201, json={"key": "upgrade-7", "phase": "running"}),
        ],
        seen,
    )
    driver.start(REQUEST)
    assert len(seen) == 3
    assert seen[-1].headers["authorization"] == "Bearer tok-123-secret"
    assert seen[-1].url == "http://prod-1.agents:8480/deployments"
    assert b'"key":"upgrade-7"' in seen[-1].content.replace(b" ", b"")


def test_a_4xx_is_the_agents_refusal_and_is_not_retried() -> None:
    seen: list[httpx.Request] = []
    driver = _driver([httpx.Response(409, json={"detail": "key taken by 1.0.0"})], seen)
    with pytest.raises(DriverError, match=r"refused deploy upgrade-7: 409 key taken by 1\.0\.0"):
        driver.start(REQUEST)
    assert len(seen) == 1
    status = _driver([httpx.Response(400, json={"detail": "bad key"})], seen).status("x")
    assert (status.phase, status.message) == (DeployPhase.FAILED, "the agent refused: 400 bad key")


def test_retries_stop_within_the_budget_and_the_token_stays_out(token: str) -> None:
    seen: list[httpx.Request] = []
    driver = _driver([httpx.Response(500, text=f"oops {token}")] * 10, seen)
    started = time.monotonic()
    with pytest.raises(DriverError) as caught:
        driver.status("upgrade-7")
    assert time.monotonic() - started < 2.5
    assert 1 < len(seen) <= 4
    assert "answered 500" in str(caught.value)
    assert token not in str(caught.value)


def test_phases_and_health_are_read_from_the_answers() -> None:
    seen: list[httpx.Request] = []
    answers: list[httpx.Response | Exception] = [
        httpx.Response(200, json={"phase": "succeeded", "message": "exit code 0"}),
        httpx.Response(200, json={"phase": "exploded"}),
        httpx.Response(503, json={"status": "unhealthy"}),
        httpx.Response(404, json={"detail": "never deployed"}),
    ]
    driver = _driver(answers, seen)
    status = driver.status("upgrade-7")
    assert (status.phase, status.message) == (DeployPhase.SUCCEEDED, "exit code 0")
    with pytest.raises(DriverError, match="unknown phase 'exploded'"):
        driver.status("upgrade-7")
    assert driver.health("prod-1", "checkout") is Health.UNHEALTHY
    assert driver.health("prod-1", "billing") is Health.UNKNOWN
    assert seen[-1].url.path == "/health/billing"


def test_a_missing_token_is_said_by_where_it_was_looked_for(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("AGENT_TOKEN")
    with pytest.raises(DriverError, match="environment variable AGENT_TOKEN"):
        _driver([], []).start(REQUEST)
