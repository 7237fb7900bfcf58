"""Answering pages from the CLI on the real cluster: acknowledge stops escalation and tells
the channel; a misroute resolves the page and pages the right team; a false positive is
recorded."""

from __future__ import annotations

import getpass

import pytest
from sqlalchemy import select

from rollout.config import Fault, Fleet
from rollout.drivers.simulated import SimulatedFleet
from rollout.engine.runtime import Runtime
from rollout.engine.submission import submit
from rollout.store.database import transaction
from rollout.store.models import Event, Page, PageEvent
from tests.conftest import Cluster, PageReceiver
from tests.waiting import wait_for

pytestmark = pytest.mark.integration
LOCAL = f"local:{getpass.getuser()}"


def _first_page(cluster: Cluster, service: str) -> Page:
    def written() -> Page | None:
        with transaction(cluster.database_url) as session:
            return session.scalars(
                select(Page).where(Page.service == service).order_by(Page.id)
            ).first()

    return wait_for(written, 60, f"a page for {service}")


def _page(cluster: Cluster, page_id: int) -> Page:
    with transaction(cluster.database_url) as session:
        page = session.get(Page, page_id)
        assert page is not None
        return page


def _answers(cluster: Cluster, page_id: int) -> list[tuple[str, str, str, str | None]]:
    with transaction(cluster.database_url) as session:
        rows = session.scalars(
            select(Event).where(Event.subject == f"page {page_id}").order_by(Event.id)
        )
        return [(e.action, e.actor, e.message, e.reason) for e in rows]


def _actions(receiver: PageReceiver, dedup_key: str) -> list[str]:
    return [body["action"] for body in receiver.pages(dedup_key)]


def test_acknowledge_then_resolve_reach_the_channel_and_stop_escalation(
    cluster: Cluster,
    fleet: Fleet,
    simulator: SimulatedFleet,
    runtime: Runtime,
    page_receiver: PageReceiver,
) -> None:
    page_receiver.reset()
    simulator.inject(Fault(service="checkout", version="8.0.0", health="unhealthy"))
    submit(runtime, fleet, "checkout", "8.0.0")
    page = _first_page(cluster, "checkout")
    assert page.escalate_at is not None

    acked = cluster.rollout("ack", str(page.id))
    assert acked.returncode == 0, acked.stderr
    assert "it is acknowledged" in acked.stdout
    assert _page(cluster, page.id).escalate_at is None
    wait_for(
        lambda: _actions(page_receiver, page.dedup_key) == ["trigger", "acknowledge"],
        30,
        "the acknowledgement at the webhook",
    )
    assert cluster.rollout("ack", str(page.id)).returncode == 0  # again: no change
    resolved = cluster.rollout("resolve", str(page.id))
    assert resolved.returncode == 0, resolved.stderr
    wait_for(
        lambda: _actions(page_receiver, page.dedup_key) == ["trigger", "acknowledge", "resolve"],
        30,
        "the resolution at the webhook",
    )
    late = cluster.rollout("ack", str(page.id))
    assert late.returncode == 1 and "already resolved" in late.stderr
    # The audit trail: the two answers that changed the page, the repeat and the refusal not.
    assert _answers(cluster, page.id) == [
        ("acknowledge", LOCAL, f"page {page.id} acknowledged", None),
        ("resolve", LOCAL, f"page {page.id} resolved", None),
    ]


def test_a_misrouted_page_goes_to_the_right_team_and_is_recorded(
    cluster: Cluster,
    fleet: Fleet,
    simulator: SimulatedFleet,
    runtime: Runtime,
    page_receiver: PageReceiver,
) -> None:
    page_receiver.reset()
    simulator.inject(Fault(service="checkout", version="8.1.0", health="unhealthy"))
    submit(runtime, fleet, "checkout", "8.1.0")
    page = _first_page(cluster, "checkout")

    moved = cluster.rollout("misrouted", str(page.id), "--to", "search", "--note", "their API")
    assert moved.returncode == 0, moved.stderr
    assert "team search paged" in moved.stdout
    assert _page(cluster, page.id).state == "resolved"
    with transaction(cluster.database_url) as session:
        again = session.scalars(select(Page).where(Page.team == "search")).one()
        events = [(e.action, e.misrouted_to) for e in session.scalars(select(PageEvent))]
    assert again.dedup_key == f"{page.dedup_key}/to-search"
    assert again.recipient in {"Dana Cruz", "Eli Novak", "Fay Moreau"}
    assert ("misrouted", "search") in events and ("resolved", None) in events
    got = wait_for(
        lambda: page_receiver.pages(again.dedup_key), 30, "the right team's page at the webhook"
    )
    assert got[0]["team"] == "search" and got[0]["action"] == "trigger"
    same = cluster.rollout("misrouted", str(page.id), "--to", "payments")
    assert same.returncode == 1 and "went to team payments already" in same.stderr


def test_a_false_positive_is_resolved_with_its_reason(
    cluster: Cluster, fleet: Fleet, simulator: SimulatedFleet, runtime: Runtime
) -> None:
    simulator.inject(Fault(service="checkout", version="8.2.0", health="unhealthy"))
    submit(runtime, fleet, "checkout", "8.2.0")
    page = _first_page(cluster, "checkout")
    result = cluster.rollout("not-actionable", str(page.id), "--reason", "probe flapped")
    assert result.returncode == 0, result.stderr
    with transaction(cluster.database_url) as session:
        notes = [
            (e.action, e.note, e.actor)
            for e in session.scalars(select(PageEvent).where(PageEvent.page_id == page.id))
        ]
    assert notes[0][:2] == ("not_actionable", "probe flapped")
    assert notes[0][2] == LOCAL
    assert _answers(cluster, page.id) == [
        ("not-actionable", LOCAL, f"page {page.id} not actionable", "probe flapped")
    ]
    assert _page(cluster, page.id).state == "resolved"
    assert cluster.rollout("ack", "999999").stderr.strip() == "error: no page 999999"
