"""Observability end to end. In one process (the API under TestClient, the embedded engine
running the same step code as the workers) the SDK's in-memory exporter sees the whole span
tree of a rollout whose gate fails. Across processes (`rollout api`, a prefork `rollout
worker` and `rollout ticker`, exporting OTLP to a receiver this test runs) the API call and
the page delivery share one trace id, and each process's /metrics shows what the run did."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from sqlalchemy import select

from rollout.api import create_app
from rollout.config import Fault, Fleet, load_fleet
from rollout.drivers.simulated import simulated_fleet
from rollout.engine.embedded import EmbeddedEngine
from rollout.observability import tracing
from rollout.store.database import reading, transaction
from rollout.store.models import Delivery, Installation, Rollout, Upgrade
from rollout.store.tokens import Scope, create_token
from tests.conftest import FIXTURES, PageReceiver, fresh_database
from tests.waiting import wait_for

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
        _, secret = create_token(session, Scope.PIPELINE, now, [BAD[0]])
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
        with EmbeddedEngine(url, url, threads=2, tick_seconds=0.05):
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
