"""Secrets reach no trace and no log line: a page's webhook URL (its path is the secret, as
Slack's is) is in no span the delivery wrote, and a token put in a query string is in neither
the API's server span nor its access log, in process or in a real `rollout api`."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from rollout.api import create_app
from rollout.config import load_fleet
from rollout.engine.backends import Backends
from rollout.engine.embedded import EmbeddedEngine
from rollout.engine.runtime import Runtime
from rollout.observability import tracing
from tests.conftest import FIXTURES, Cluster, PageReceiver, fresh_database
from tests.integration.test_observability import BAD, _free_port, _prepare, _settled
from tests.waiting import wait_for

pytestmark = pytest.mark.integration

HOOK_SECRET = "T0SECRET/B0SECRET/xoxb-page-secret"
QUERY_TOKEN = "rollout_querystringsecret0123456789"


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    tracing.configure("test", exporter, batch=False)
    try:
        yield exporter
    finally:
        tracing.shutdown()


def _strings(span: ReadableSpan) -> list[str]:
    """Everything a span says in words: its name, status and every attribute."""
    attributes = [span.attributes or {}]
    attributes += [event.attributes or {} for event in span.events]
    attributes += [link.attributes or {} for link in span.links]
    said = [span.name, span.status.description or ""]
    for each in attributes:
        for value in each.values():
            said += [str(v) for v in value] if isinstance(value, tuple) else [str(value)]
    return said


def test_no_span_carries_a_webhook_secret_or_a_query_token(
    spans: InMemorySpanExporter, page_receiver: PageReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The team's webhook, read from the environment as the config asks: its path is the key.
    monkeypatch.setenv("ROLLOUT_TEST_PAGE_HOOK", f"{page_receiver.url}/{HOOK_SECRET}")
    page_receiver.reset()
    fleet = load_fleet(FIXTURES / "fleet.yaml")
    with fresh_database("rollout_secret_trace_test") as url:
        secret = _prepare(url, fleet)
        client = TestClient(create_app(url, fleet))
        with EmbeddedEngine(Runtime(url, Backends.real(url, url)), threads=2, tick_seconds=0.05):
            answer = client.post(
                "/v1/releases",
                json={"service": BAD[0], "version": BAD[1]},
                headers={"Authorization": f"Bearer {secret}"},
            )
            assert answer.status_code == 201, answer.text
            rollout_id = answer.json()["rollout_id"]
            wait_for(lambda: _settled(url, rollout_id), 60, "the rollout to fail and page")
        refused = client.get("/v1/rollouts", params={"token": QUERY_TOKEN})
        assert refused.status_code == 422
    assert page_receiver.accepted, "the page never reached the webhook"

    finished = spans.get_finished_spans()
    for span in finished:
        for said in _strings(span):
            assert "xoxb-page-secret" not in said and "B0SECRET" not in said, (span.name, said)
            assert QUERY_TOKEN not in said, (span.name, said)
    # The delivery's HTTP call is still traced, to the right host.
    deliveries = {s.context.span_id for s in finished if s.name == "page.deliver"}
    calls = [
        s
        for s in finished
        if s.kind is SpanKind.CLIENT
        and s.name == "POST"
        and s.parent is not None
        and s.parent.span_id in deliveries
    ]
    host = page_receiver.url.removesuffix("/hook")
    assert calls and all(f"{host}/" in " ".join(_strings(call)) for call in calls)
    # So is the refused request, under its route.
    assert any(s.kind is SpanKind.SERVER and "/v1/rollouts" in s.name for s in finished)


def test_the_api_process_writes_no_query_token_to_its_access_log_or_traces(
    tmp_path: Path,
) -> None:
    port = _free_port()
    with fresh_database("rollout_secret_log_test") as url:
        env = {
            **os.environ,
            "ROLLOUT_DATABASE_URL": url,
            "ROLLOUT_CONFIG": str(FIXTURES / "fleet.yaml"),
            # Spans to stdout, beside the log lines: both are looked through.
            "OTEL_TRACES_EXPORTER": "console",
            "OTEL_BSP_SCHEDULE_DELAY": "100",
        }
        cluster = Cluster(env, url, tmp_path)
        try:
            cluster.start("api", "api", "--port", str(port))
            wait_for(lambda: _answers(port), 30, "the API to answer")
            base = f"http://127.0.0.1:{port}"
            refused = httpx.get(f"{base}/v1/rollouts?limit=5&token={QUERY_TOKEN}", timeout=5)
            assert refused.status_code == 422
            assert QUERY_TOKEN not in refused.text
            wait_for(
                lambda: "GET /v1/rollouts?" in cluster.log("api"), 30, "the request's access line"
            )
            wait_for(
                lambda: '"name": "GET /v1/rollouts"' in cluster.log("api"),
                30,
                "the request's server span",
            )
            log = cluster.log("api")
        finally:
            cluster.stop()
    assert QUERY_TOKEN not in log, log[-3000:]
    # What is kept is still worth reading: the path, and parameters that hold no secret.
    assert "GET /v1/rollouts?limit=5&token=***" in log


def _answers(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
