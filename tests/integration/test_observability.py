"""Observability end to end. In one process (the API under TestClient, the embedded engine
running the same step code as the workers) the SDK's in-memory exporter sees the whole span
tree of a rollout whose gate fails. Across processes (`rollout api`, a prefork `rollout
worker` and `rollout ticker`, exporting OTLP to a receiver this test runs) the API call and
the page delivery share one trace id, and each process's /metrics shows what the run did."""

from __future__ import annotations

import gzip
import json
import os
import re
import socket
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from rollout.api import create_app
from rollout.config import Fault, Fleet, load_fleet
from rollout.domain.audit import Actor
from rollout.drivers.simulated import simulated_fleet
from rollout.engine.backends import Backends
from rollout.engine.embedded import EmbeddedEngine
from rollout.engine.runtime import Runtime
from rollout.observability import tracing
from rollout.store.database import reading, transaction
from rollout.store.models import Delivery, Installation, Rollout, Upgrade
from rollout.store.tokens import Scope, create_token
from tests.conftest import FIXTURES, Cluster, PageReceiver, fresh_database
from tests.waiting import wait_for

TESTER = Actor.local("tester")

pytestmark = pytest.mark.integration

BAD = ("search-api", "2.0.0")


def _prepare(url: str, fleet: Fleet) -> str:
    """Every service on 1.0.0 everywhere, search-api 2.0.0 unhealthy; a pipeline token."""
    simulator = simulated_fleet(url)
    simulator.reset()
    pairs = {
        (environment.name, service.name): "1.0.0"
        for service in fleet.services
        for environment in fleet.environments_of(service)
    }
    simulator.install(pairs)
    simulator.inject(Fault(service=BAD[0], version=BAD[1], health="unhealthy"))
    now = datetime.now(UTC)
    with transaction(url) as session:
        session.add_all(
            Installation(environment=e, service=s, version=v, updated_at=now)
            for (e, s), v in pairs.items()
        )
        _, secret = create_token(session, Scope.PIPELINE, now, [BAD[0]], actor=TESTER)
    return secret


def _settled(url: str, rollout_id: int) -> bool:
    """The rollout failed and every page delivery of it went out."""
    with reading(url) as session:
        rollout = session.get(Rollout, rollout_id)
        pending = session.scalars(select(Delivery.id).where(Delivery.state == "pending")).all()
        delivered = session.scalars(select(Delivery.id).where(Delivery.state == "delivered"))
        return rollout is not None and rollout.state == "failed" and not pending and any(delivered)


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    tracing.configure("test", exporter, batch=False)
    try:
        yield exporter
    finally:
        tracing.shutdown()


def test_one_rollout_is_one_trace_from_the_api_call_to_the_page(
    spans: InMemorySpanExporter, page_receiver: PageReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ROLLOUT_TEST_PAGE_HOOK", page_receiver.url)
    page_receiver.reset()
    fleet = load_fleet(FIXTURES / "fleet.yaml")
    with fresh_database("rollout_trace_test") as url:
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
        with reading(url) as session:
            canary = session.scalars(
                select(Upgrade).where(
                    Upgrade.rollout_id == rollout_id, Upgrade.environment == "canary-1"
                )
            ).one()
            stored = session.get(Rollout, rollout_id)
            assert stored is not None
            traceparent = stored.traceparent

    finished = spans.get_finished_spans()
    by_id = {span.context.span_id: span for span in finished}

    def named(name: str, **attributes: Any) -> list[ReadableSpan]:
        return [
            s
            for s in finished
            if s.name == name
            and all((s.attributes or {}).get(k) == v for k, v in attributes.items())
        ]

    def parent_of(span: ReadableSpan) -> ReadableSpan:
        assert span.parent is not None, f"{span.name} has no parent"
        return by_id[span.parent.span_id]

    # The API call: a server span, and the submission under it.
    server = [s for s in finished if s.kind is SpanKind.SERVER and "/v1/releases" in s.name]
    assert len(server) == 1, [s.name for s in finished if s.kind is SpanKind.SERVER]
    trace_id = server[0].context.trace_id
    (submit,) = named("rollout.submit", **{"rollout.id": rollout_id})
    assert submit.context.trace_id == trace_id
    assert parent_of(submit).context.trace_id == trace_id
    # What is stored on the row is the submission's span: the root of all that follows.
    assert traceparent is not None
    assert traceparent.startswith(f"00-{trace_id:032x}-{submit.context.span_id:016x}-")

    # The failed upgrade: its span under the submission, with the facts and an error.
    canary_facts = {"rollout.upgrade.id": canary.id}
    (upgrade,) = named("upgrade", **canary_facts)
    assert parent_of(upgrade) is submit
    attributes = upgrade.attributes or {}
    assert attributes["rollout.service"] == "search-api"
    assert attributes["rollout.version"] == "2.0.0"
    assert attributes["rollout.environment"] == "canary-1"
    assert attributes["rollout.stage"] == "canary"
    assert attributes["rollout.upgrade.result"] == "rolled_back"
    assert upgrade.status.status_code is StatusCode.ERROR

    # Its steps, each a child of the upgrade's span though written long before it.
    steps = [s for s in finished if s.name.startswith("step ") and s.parent is not None]
    canary_steps = [s for s in steps if (s.attributes or {}).get("rollout.upgrade.id") == canary.id]
    assert {s.name for s in canary_steps} >= {"step deploy", "step rollback"}
    assert all(parent_of(s) is upgrade for s in canary_steps)

    # The failed gate measurement, inside a step of that upgrade.
    failed_gates = [
        s
        for s in named("gate.measure", **canary_facts, **{"rollout.gate": "health"})
        if (s.attributes or {}).get("rollout.gate.outcome") == "failure"
    ]
    assert failed_gates, "no failed health measurement was traced"
    assert all(parent_of(s) in canary_steps for s in failed_gates)
    assert failed_gates[0].status.status_code is StatusCode.ERROR
    assert (failed_gates[0].attributes or {})["rollout.gate.value"] == pytest.approx(0.2)

    # The rollback: its own span under the upgrade's.
    (rollback,) = named("rollback", **canary_facts)
    assert parent_of(rollback) is upgrade

    # The page to the owning team: delivered, under the upgrade, and its HTTP call under it.
    deliveries = named("page.deliver", **canary_facts, **{"rollout.page.team": "search"})
    assert [(d.attributes or {}).get("rollout.page.result") for d in deliveries] == ["delivered"]
    (delivery,) = deliveries
    assert parent_of(delivery) is upgrade
    assert (delivery.attributes or {})["rollout.page.severity"] == "P3"
    assert (delivery.attributes or {})["rollout.page.channel"] == "webhook"
    calls = [
        s for s in finished if s.parent is not None and s.parent.span_id == delivery.context.span_id
    ]
    assert any(s.kind is SpanKind.CLIENT and "POST" in s.name for s in calls), [
        s.name for s in calls
    ]

    # One trace from the API call to the page: everything about this rollout is in it.
    about_rollout = [s for s in finished if (s.attributes or {}).get("rollout.id") == rollout_id]
    assert len(about_rollout) > 8
    assert {s.context.trace_id for s in about_rollout} == {trace_id}
    # And the database calls of a step hang under that step.
    assert any(
        s.parent is not None and by_id.get(s.parent.span_id) in canary_steps
        for s in finished
        if s.kind is SpanKind.CLIENT and "SELECT" in s.name.upper()
    )


@dataclass(frozen=True)
class ReceivedSpan:
    process: str  # the resource's service.name
    name: str
    kind: int
    trace_id: str
    span_id: str
    parent_id: str
    attributes: dict[str, Any]


class OtlpReceiver:
    """An OTLP/HTTP trace endpoint (protobuf, as the exporter sends it) keeping every span."""

    def __init__(self) -> None:
        self.spans: list[ReceivedSpan] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                if self.headers.get("content-encoding") == "gzip":
                    body = gzip.decompress(body)
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                with receiver.lock:
                    receiver.spans += _spans_of(request)
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def received(self) -> list[ReceivedSpan]:
        with self.lock:
            return list(self.spans)


def _value(any_value: Any) -> Any:
    kind = any_value.WhichOneof("value")
    return None if kind is None else getattr(any_value, kind)


def _spans_of(request: ExportTraceServiceRequest) -> list[ReceivedSpan]:
    spans = []
    for resource_spans in request.resource_spans:
        resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                spans.append(
                    ReceivedSpan(
                        process=str(resource.get("service.name")),
                        name=span.name,
                        kind=span.kind,
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        parent_id=span.parent_span_id.hex(),
                        attributes={a.key: _value(a.value) for a in span.attributes},
                    )
                )
    return spans


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[str]:
    """A Redis of this test's own: its workers must not share a queue with the session's."""
    port = _free_port()
    server = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(tmp_path),
        ],
        stdout=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: _answers(port), 20, "the private Redis to answer")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        server.terminate()
        server.wait(timeout=10)


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as connection:
            connection.sendall(b"PING\r\n")
            return connection.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _scrape(port: int) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _sample(
    scraped: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    """The sum of the samples of `name` whose labels include `labels` (0 when none)."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in scraped.items() if n == name and wanted <= ls)


def test_the_trace_crosses_processes_and_each_process_counts_what_it_did(
    private_redis: str, page_receiver: PageReceiver, tmp_path: Path
) -> None:
    page_receiver.reset()
    otlp = OtlpReceiver()
    fleet = load_fleet(FIXTURES / "fleet.yaml")
    api_port, worker_port, ticker_port = _free_port(), _free_port(), _free_port()
    with fresh_database("rollout_otel_test") as url:
        secret = _prepare(url, fleet)
        env = {
            **os.environ,
            "ROLLOUT_DATABASE_URL": url,
            "ROLLOUT_SIMULATOR_URL": url,
            "ROLLOUT_BROKER_URL": private_redis,
            "ROLLOUT_CONFIG": str(FIXTURES / "fleet.yaml"),
            "ROLLOUT_LEASE_SECONDS": "5",
            "ROLLOUT_TICK_SECONDS": "0.05",
            "ROLLOUT_TEST_PAGE_HOOK": page_receiver.url,
            "ROLLOUT_LOG_FORMAT": "json",
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_ENDPOINT": otlp.url,
            # Export within a tenth of a second, not the default five.
            "OTEL_BSP_SCHEDULE_DELAY": "100",
            # For `rollout submit`: through the API, as a pipeline does.
            "ROLLOUT_API_URL": f"http://127.0.0.1:{api_port}",
            "ROLLOUT_TOKEN": secret,
        }
        cluster = Cluster(env, url, tmp_path)
        try:
            cluster.start(
                "worker", "worker", "--concurrency", "2", "--metrics-port", str(worker_port)
            )
            cluster.start("ticker", "ticker", "--metrics-port", str(ticker_port))
            cluster.start("api", "api", "--port", str(api_port))
            wait_for(lambda: "ready." in cluster.log("worker"), 60, "the worker to be ready")
            wait_for(lambda: _up(api_port), 30, "the API to answer")
            wait_for(lambda: _up(ticker_port), 30, "the ticker's /metrics")
            before = _scrape(worker_port)

            # As a pipeline submits: the CLI through the API (its trace context in a header).
            submitted = cluster.rollout("submit", *BAD)
            assert submitted.returncode == 0, submitted.stdout + submitted.stderr
            found = re.search(r"rollout (\d+)", submitted.stdout)
            assert found is not None, submitted.stdout
            rollout_id = int(found.group(1))
            wait_for(lambda: _settled(url, rollout_id), 90, "the rollout to fail and page")

            def delivered_span() -> list[ReceivedSpan]:
                return [
                    s
                    for s in otlp.received()
                    if s.name == "page.deliver"
                    and s.attributes.get("rollout.page.team") == "search"
                ]

            (delivery,) = wait_for(delivered_span, 30, "the page delivery's span")
            wait_for(
                lambda: any(s.name == "upgrade" for s in otlp.received()), 30, "the upgrade's span"
            )
            spans = otlp.received()
            api_metrics, worker_metrics = _scrape(api_port), _scrape(worker_port)
            ticker_metrics = _scrape(ticker_port)
            worker_log, api_log = cluster.log("worker"), cluster.log("api")
        finally:
            cluster.stop()

    # One trace id from the pipeline's call, through the API process's server span, to the
    # worker's page delivery.
    (server,) = [
        s for s in spans if s.process == "rollout-api" and s.kind == 2 and "/v1/releases" in s.name
    ]
    trace = server.trace_id
    (call,) = [s for s in spans if s.process == "rollout-cli" and s.kind == 3]  # CLIENT
    assert (call.trace_id, call.span_id) == (trace, server.parent_id)
    assert delivery.trace_id == trace
    assert delivery.process == "rollout-worker"
    in_trace = {(s.process, s.name) for s in spans if s.trace_id == trace}
    assert {
        ("rollout-api", "rollout.submit"),
        ("rollout-worker", "step deploy"),
        ("rollout-worker", "gate.measure"),
        ("rollout-worker", "step rollback"),
        ("rollout-worker", "rollback"),
        ("rollout-worker", "upgrade"),
        ("rollout-worker", "page.deliver"),
    } <= in_trace, in_trace
    # Celery's own task spans are there too (each task its own trace, linked to the step).
    assert any(s.process == "rollout-worker" and s.name.startswith("run/rollout.") for s in spans)

    # The API counted the submission; the worker (two pool processes, one /metrics) what the
    # run did; the ticker how late it claimed.
    assert _sample(api_metrics, "rollout_submissions_total", result="created") == 1
    moved = {
        ("rollout_upgrades_total", (("result", "rolled_back"), ("stage", "canary"))),
        ("rollout_gate_measurements_total", (("gate", "health"), ("outcome", "failure"))),
        ("rollout_rollbacks_total", (("stage", "canary"), ("cause", "failure"))),
        (
            "rollout_pages_total",
            (
                ("team", "search"),
                ("severity", "P3"),
                ("channel", "webhook"),
                ("result", "delivered"),
            ),
        ),
        ("rollout_failure_to_page_seconds_count", (("team", "search"),)),
        ("rollout_queue_lag_seconds_count", (("task", "rollout.steps"),)),
    }
    for name, labels in moved:
        assert _sample(before, name, **dict(labels)) == 0, name
        assert _sample(worker_metrics, name, **dict(labels)) >= 1, (name, labels)
    assert _sample(
        worker_metrics, "rollout_gate_value", gate="health", service="search-api", stage="canary"
    ) == pytest.approx(0.2)
    assert _sample(ticker_metrics, "rollout_ticker_lag_seconds_count", kind="upgrades") >= 1
    # No label carries the page hook's URL (a secret) or a reason.
    for scraped in (api_metrics, worker_metrics, ticker_metrics):
        labels = {value for (_, ls) in scraped for _, value in ls}
        assert not any("127.0.0.1" in v or "error_rate" in v for v in labels), labels

    # The worker's JSON log lines about the rollout carry its ids and the trace id.
    about = [line for line in _json_lines(worker_log) if line.get("rollout_id") == rollout_id]
    assert about, worker_log[-2000:]
    assert all(line.get("upgrade_id") and line.get("trace_id") == trace for line in about)
    assert any("gate health on canary-1: failure" in line["message"] for line in about)
    # The page went to a URL given by reference, a secret: it is in no log line.
    assert page_receiver.url.split("/hook")[0] not in worker_log
    # The API's own lines (uvicorn's access log too) are JSON as well.
    assert any("POST /v1/releases" in line.get("message", "") for line in _json_lines(api_log))


def _up(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _json_lines(log: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.splitlines() if line.startswith("{")]
