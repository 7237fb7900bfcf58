"""Pages reach the owning team's on-call through the team's channel, from the outbox, on real
workers: exactly once, even when the receiver fails with 500 and 429 for a while."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from rollout.config import Fault, Fleet
from rollout.domain.oncall import Member, Rotation, route, who_is_on_call
from rollout.drivers.simulated import SimulatedFleet
from rollout.engine.runtime import Runtime
from rollout.engine.submission import submit
from rollout.store.database import transaction
from rollout.store.models import Delivery, Page
from tests.conftest import Cluster, PageReceiver
from tests.waiting import wait_for

pytestmark = pytest.mark.integration


def _page(cluster: Cluster, rollout_id: int) -> Page:
    def written() -> Page | None:
        with transaction(cluster.database_url) as session:
            return session.scalars(
                select(Page).where(Page.rollout_id == rollout_id).order_by(Page.id)
            ).first()

    return wait_for(written, 60, f"a page for rollout {rollout_id}")


def _deliveries(cluster: Cluster, page_id: int) -> list[Delivery]:
    with transaction(cluster.database_url) as session:
        return list(session.scalars(select(Delivery).where(Delivery.page_id == page_id)))


def _expected_recipient(fleet: Fleet, page: Page) -> str:
    team = fleet.team(page.team)
    assert team.rotations is not None

    def rotation(name: str, role: str) -> Rotation:
        spec = getattr(team.rotations, role)
        return Rotation(
            name,
            tuple(Member(m, team.member(m).zone) for m in spec.members),
            spec.shift,
            spec.handoff,
            spec.start,
            ZoneInfo(spec.timezone),
        )

    on_call = who_is_on_call(rotation("p", "primary"), rotation("s", "secondary"), page.created_at)
    return route(page.severity, page.created_at, on_call, False).member.name


def test_a_failed_gate_pages_the_on_call_through_the_teams_channel(
    cluster: Cluster,
    fleet: Fleet,
    simulator: SimulatedFleet,
    runtime: Runtime,
    page_receiver: PageReceiver,
) -> None:
    page_receiver.reset()
    simulator.inject(Fault(service="checkout", version="7.0.0", health="unhealthy"))
    submitted = submit(runtime, fleet, "checkout", "7.0.0")
    page = _page(cluster, submitted.rollout_id)

    assert page.recipient == _expected_recipient(fleet, page)
    received = wait_for(lambda: page_receiver.pages(page.dedup_key), 30, "the webhook to get it")
    assert len(received) == 1
    body = received[0]
    assert body["action"] == "trigger"
    assert (body["team"], body["severity"], body["environment"], body["gate"]) == (
        "payments",
        "P3",
        "canary-1",
        "health",
    )
    assert body["recipient"] == page.recipient
    assert "error_rate 0.2, wanted error_rate < 0.05" in body["detail"]
    [delivery] = wait_for(
        lambda: [d for d in _deliveries(cluster, page.id) if d.state == "delivered"],
        30,
        "the delivery to be recorded",
    )
    assert (delivery.action, delivery.attempts, delivery.channel) == ("trigger", 1, "0:webhook")
    # canary-1 is air-gapped: the operations rotation (the NOC) is paged with the same facts.
    [noc] = wait_for(lambda: page_receiver.pages(f"{page.dedup_key}/noc"), 30, "the NOC's page")
    assert noc["team"] == "noc" and noc["detail"] == body["detail"]
    assert noc["recipient"] in {"Jo Park", "Kim Lund", "Lee Chan"}


def test_a_receiver_failing_for_a_while_gets_the_page_exactly_once(
    cluster: Cluster,
    fleet: Fleet,
    simulator: SimulatedFleet,
    runtime: Runtime,
    page_receiver: PageReceiver,
) -> None:
    page_receiver.reset(refusals=[(500, {}), (500, {}), (429, {"Retry-After": "1"})])
    simulator.inject(Fault(service="search-api", version="7.0.0", health="unhealthy"))
    submitted = submit(runtime, fleet, "search-api", "7.0.0")
    _page(cluster, submitted.rollout_id)
    with transaction(cluster.database_url) as session:
        # The team's page and, canary-1 being air-gapped, the NOC's: both share the refusals.
        pages = list(session.scalars(select(Page).where(Page.rollout_id == submitted.rollout_id)))
    assert len(pages) == 2

    def all_delivered() -> list[Delivery]:
        sent = [d for p in pages for d in _deliveries(cluster, p.id)]
        return sent if sent and all(d.state == "delivered" for d in sent) else []

    deliveries = wait_for(all_delivered, 60, "every page to get through once it recovers")
    assert page_receiver.refusals == []
    # Three refusals, then one accepted request per page: nothing lost, nothing twice.
    assert sum(d.attempts for d in deliveries) == 3 + len(deliveries)
    for page in pages:
        assert len(page_receiver.pages(page.dedup_key)) == 1
    assert all(d.due_at is None for d in deliveries)


def test_an_unacknowledged_page_escalates_to_the_secondary_then_the_team(
    cluster: Cluster,
    fleet: Fleet,
    simulator: SimulatedFleet,
    runtime: Runtime,
    page_receiver: PageReceiver,
) -> None:
    page_receiver.reset()
    simulator.inject(Fault(service="ledger", version="7.0.0", health="unhealthy"))
    submitted = submit(runtime, fleet, "ledger", "7.0.0")
    page = _page(cluster, submitted.rollout_id)
    first = page.recipient

    def escalated_twice() -> Page | None:
        with transaction(cluster.database_url) as session:
            now = session.get(Page, page.id)
            return now if now is not None and now.escalations == 2 else None

    done = wait_for(escalated_twice, 30, "both escalation steps")
    assert done.escalate_at is None and done.role == "team" and done.recipient is None
    received = wait_for(
        lambda: (
            len(page_receiver.pages(page.dedup_key)) == 3 and page_receiver.pages(page.dedup_key)
        ),
        30,
        "the first page and both escalations at the webhook",
    )
    recipients = [body["recipient"] for body in received]
    assert recipients[0] == first
    assert recipients[1] not in (None, first)  # the secondary, by name
    assert recipients[2] is None  # the whole team
    actions = sorted(d.action for d in _deliveries(cluster, page.id))
    assert actions == ["escalate-1", "escalate-2", "trigger"]


def test_a_page_retried_after_its_escalation_still_names_whom_it_was_for(
    cluster: Cluster,
    fleet: Fleet,
    simulator: SimulatedFleet,
    runtime: Runtime,
    page_receiver: PageReceiver,
) -> None:
    # The fault suite found it: the first page, refused until both escalations had gone out,
    # was sent naming the page's latest recipient (the whole team), so it carried the second
    # escalation's Idempotency-Key and a receiver keeping keys dropped one of the two.
    refused = (429, {"Retry-After": "4"})
    page_receiver.reset(refusals=[refused, refused])  # the team's first page and the NOC's
    simulator.inject(Fault(service="ledger", version="7.1.0", health="unhealthy"))
    submitted = submit(runtime, fleet, "ledger", "7.1.0")
    page = _page(cluster, submitted.rollout_id)
    first = page.recipient  # read before its first escalation, a second later

    received = wait_for(
        lambda: (
            len(page_receiver.pages(page.dedup_key)) == 3 and page_receiver.pages(page.dedup_key)
        ),
        30,
        "both escalations, then the first page once the receiver takes it",
    )
    recipients = [body["recipient"] for body in received]
    assert recipients[1:] == [None, first]  # the team's escalation, then the late first page
    assert recipients[0] not in (None, first)  # the secondary's escalation, by name
