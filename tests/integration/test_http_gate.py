"""The HTTP gate against a real HTTP server on loopback: status, conditions, no data, errors."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from rollout.domain.gates import Outcome
from rollout.drivers import DeployRequest, DeployStatus, Health
from rollout.gates import GateContext
from rollout.gates.http import measure_http
from rollout.plan import HttpGateSpec

NOW = datetime(2026, 11, 27, tzinfo=UTC)
ANSWERS: dict[str, tuple[int, bytes]] = {
    "/ok": (200, json.dumps({"error_rate": 0.01, "status": "ok"}).encode()),
    "/bad": (200, json.dumps({"error_rate": 0.071}).encode()),
    "/down": (503, b"{}"),
    "/plain": (200, b"all good"),
    "/empty": (200, b"{}"),
}


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        status, body = ANSWERS.get(self.path.split("?")[0], (404, b"{}"))
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


class _RealNetwork:
    """A driver whose probes go over the real network (as every non-simulated one does)."""

    def start(self, request: DeployRequest) -> None: ...

    def status(self, key: str) -> DeployStatus:
        raise NotImplementedError

    def health(self, environment: str, service: str) -> Health:
        return Health.HEALTHY

    def transport(self) -> httpx.BaseTransport | None:
        return None


CONTEXT = GateContext("checkout", "1.2.0", "prod-1", "production", _RealNetwork())


# The limits every gate spec carries; these tests take one measurement.
LIMITS = {
    "initial_delay_s": 0.0,
    "interval_s": 1.0,
    "failure_limit": 0,
    "inconclusive_limit": 0,
    "consecutive_error_limit": 4,
    "consecutive_successes": None,
    "dry_run": False,
    "count": 1,
}


def _spec(url: str, **extra: Any) -> HttpGateSpec:
    return HttpGateSpec.model_validate(
        {"name": "health", "type": "http", **LIMITS} | _fields(url, **extra)
    )


def _fields(url: str, **extra: Any) -> dict[str, Any]:
    return {
        "url": url,
        "method": "GET",
        "expect_status": [200],
        "timeout_s": 2.0,
        "success_condition": "error_rate < 0.05",
        "failure_condition": None,
        "no_data": "error",
        **extra,
    }


def test_a_healthy_answer_passes_with_its_value(server: str) -> None:
    m = measure_http(_spec(f"{server}/ok"), CONTEXT, NOW)
    assert (m.outcome, m.value, m.condition) == (
        Outcome.SUCCESS,
        "error_rate 0.01",
        "error_rate < 0.05",
    )


def test_a_failure_says_the_value_and_the_condition(server: str) -> None:
    m = measure_http(_spec(f"{server}/bad"), CONTEXT, NOW)
    assert m.outcome is Outcome.FAILURE
    assert m.message.startswith("error_rate 0.071, wanted error_rate < 0.05 (http GET ")


def test_a_wrong_status_fails(server: str) -> None:
    m = measure_http(_spec(f"{server}/down"), CONTEXT, NOW)
    assert (m.outcome, m.value) == (Outcome.FAILURE, "status 503")
    assert "wanted status in [200]" in m.message


def test_placeholders_are_filled(server: str) -> None:
    m = measure_http(
        _spec(server + "/ok?svc={service}&v={version}&env={environment}"), CONTEXT, NOW
    )
    assert "svc=checkout&v=1.2.0&env=prod-1" in m.message


@pytest.mark.parametrize(
    ("policy", "outcome"),
    [
        ("error", Outcome.ERROR),
        ("fail", Outcome.FAILURE),
        ("pass", Outcome.SUCCESS),
        ("inconclusive", Outcome.INCONCLUSIVE),
    ],
)
def test_missing_data_follows_the_explicit_policy(
    server: str, policy: str, outcome: Outcome
) -> None:
    assert measure_http(_spec(f"{server}/empty", no_data=policy), CONTEXT, NOW).outcome is outcome
    assert measure_http(_spec(f"{server}/plain", no_data=policy), CONTEXT, NOW).outcome is outcome


def test_matching_neither_condition_is_inconclusive(server: str) -> None:
    spec = _spec(f"{server}/bad", failure_condition="error_rate > 0.1")
    m = measure_http(spec, CONTEXT, NOW)
    assert m.outcome is Outcome.INCONCLUSIVE
    assert "matches neither" in m.message


def test_a_refused_connection_is_an_error_not_a_failure() -> None:
    m = measure_http(_spec("http://127.0.0.1:9/health"), CONTEXT, NOW)
    assert m.outcome is Outcome.ERROR
    assert m.value is None
