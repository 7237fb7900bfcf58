"""The webhook gate against a real HTTP judge on loopback: pass, fail with body, errors."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from rollout.domain.gates import Outcome
from rollout.drivers import DeployRequest, DeployStatus, Health
from rollout.engine.backends import Backends
from rollout.gates import GateContext
from rollout.observability import tracing
from rollout.plan import WebhookGateSpec

NOW = datetime(2026, 11, 27, tzinfo=UTC)
RECEIVED: list[tuple[str, dict[str, Any], str | None]] = []
RELEASE = threading.Event()

# The real gates, as a worker measures with them.
measure = Backends.real("sqlite://", "sqlite://").measure


class _Judge(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        RECEIVED.append((self.path, body, self.headers.get("authorization")))
        if self.path == "/slow":
            RELEASE.wait(10)
        status, text = {
            "/approve": (204, b""),
            "/reject": (409, b"error budget exhausted: 0.071 > 0.05 " + b"x" * 2000),
        }.get(self.path, (404, b"no such judge"))
        self.send_response(status)
        self.send_header("content-length", str(len(text)))
        self.end_headers()
        self.wfile.write(text)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def judge() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Judge)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    RELEASE.set()
    httpd.shutdown()


class _NoDriver:
    def start(self, request: DeployRequest) -> None: ...

    def status(self, key: str) -> DeployStatus:
        raise NotImplementedError

    def health(self, environment: str, service: str) -> Health:
        return Health.UNKNOWN

    def transport(self) -> httpx.BaseTransport | None:
        # A mock that answers everything: the judge must not be asked through it.
        return httpx.MockTransport(lambda request: httpx.Response(200))


CONTEXT = GateContext("checkout", "1.2.0", "prod-1", "production", _NoDriver())


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


def _spec(url: str | None, **extra: Any) -> WebhookGateSpec:
    return WebhookGateSpec.model_validate(
        {"name": "judge", "type": "webhook", "url": url, "url_env": None, "token_env": None}
        | {"timeout_s": 2.0, **LIMITS, **extra}
    )


def test_a_2xx_passes_and_the_judge_is_told_what_it_judges(judge: str) -> None:
    RECEIVED.clear()
    m = measure(_spec(f"{judge}/approve"), CONTEXT, NOW)
    assert (m.outcome, m.value, m.condition) == (Outcome.SUCCESS, "status 204", "status in 2xx")
    path, body, _ = RECEIVED[-1]
    assert path == "/approve"
    assert body == {
        "service": "checkout",
        "version": "1.2.0",
        "environment": "prod-1",
        "stage": "production",
        "gate": "judge",
    }


def test_anything_else_fails_with_the_body_cut_short(judge: str) -> None:
    m = measure(_spec(f"{judge}/reject"), CONTEXT, NOW)
    assert (m.outcome, m.value) == (Outcome.FAILURE, "status 409")
    assert "error budget exhausted: 0.071 > 0.05" in m.message
    assert m.message.startswith("status 409, wanted status in 2xx (webhook POST http://")
    body = m.message.split(": ", 1)[1]
    assert len(body) < 600 and body.endswith("…")


def test_a_timeout_and_a_refusal_are_errors_not_failures(judge: str) -> None:
    RELEASE.clear()
    try:
        m = measure(_spec(f"{judge}/slow", timeout_s=0.3), CONTEXT, NOW)
    finally:
        RELEASE.set()
    assert (m.outcome, m.value) == (Outcome.ERROR, None)
    refused = measure(_spec("http://127.0.0.1:9/judge"), CONTEXT, NOW)
    assert (refused.outcome, refused.value) == (Outcome.ERROR, None)


def test_a_secret_url_and_token_come_from_the_environment_and_are_never_shown(
    judge: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret_url = f"{judge}/reject?token=s3cr3t-url-token"
    monkeypatch.setenv("JUDGE_URL", secret_url)
    monkeypatch.setenv("JUDGE_TOKEN", "s3cr3t-bearer")
    RECEIVED.clear()
    m = measure(_spec(None, url_env="JUDGE_URL", token_env="JUDGE_TOKEN"), CONTEXT, NOW)
    assert m.outcome is Outcome.FAILURE
    assert RECEIVED[-1][2] == "Bearer s3cr3t-bearer"
    assert "$JUDGE_URL" in m.message
    assert "s3cr3t" not in m.message

    monkeypatch.delenv("JUDGE_URL")
    unset = measure(_spec(None, url_env="JUDGE_URL"), CONTEXT, NOW)
    assert unset.outcome is Outcome.ERROR
    assert "JUDGE_URL (url_env) is not set" in unset.message


def test_a_secret_url_is_in_no_span_of_the_call(
    judge: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A judge whose path is its key, as a hosted webhook's often is.
    monkeypatch.setenv("JUDGE_URL", f"{judge}/judges/s3cr3t-judge-path")
    monkeypatch.setenv("JUDGE_TOKEN", "s3cr3t-bearer")
    exporter = InMemorySpanExporter()
    tracing.configure("test", exporter, batch=False, sql=False)
    try:
        with tracing.span("gate.measure", {}):
            measure(_spec(None, url_env="JUDGE_URL", token_env="JUDGE_TOKEN"), CONTEXT, NOW)
    finally:
        tracing.shutdown()
    finished = exporter.get_finished_spans()
    assert any(s.name == "POST" for s in finished), [s.name for s in finished]
    for span in finished:
        said = repr(dict(span.attributes or {})) + repr([e.attributes for e in span.events])
        assert "s3cr3t" not in said, (span.name, said)
