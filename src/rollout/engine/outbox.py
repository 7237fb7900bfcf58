"""Pages on their way out: who gets a page (the on-call at that moment), the delivery rows
written with it, and the step that sends one delivery and records how it went."""

from __future__ import annotations

import logging
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from rollout.domain.oncall import Member, Rotation, route, who_is_on_call
from rollout.engine.runtime import Runtime
from rollout.paging import (
    Action,
    DeliveryStatus,
    PageMessage,
    channel_from_config,
    deliver_with_retries,
)
from rollout.store.database import reading, transaction
from rollout.store.models import Delivery, Page, Rollout

log = logging.getLogger(__name__)

# A receiver that is down is asked again after 1, 2, 4 … seconds, at most every 5 minutes;
# the row stays pending until it answers: a page is never dropped.
MAX_BACKOFF_S = 300.0


def _rotation(name: str, spec: dict[str, Any]) -> Rotation:
    return Rotation(
        name=name,
        members=tuple(Member(m["name"], ZoneInfo(m["timezone"])) for m in spec["members"]),
        shift=timedelta(seconds=spec["shift_s"]),
        handoff=time.fromisoformat(spec["handoff"]),
        start=date.fromisoformat(spec["start"]),
        timezone=ZoneInfo(spec["timezone"]),
    )


def address(session: Session, page: Page, paging: dict[str, Any], now: datetime) -> None:
    """Name the page's recipient and write one pending delivery per channel of the team, in
    the caller's transaction (the one that records the failure)."""
    rotations = paging.get("rotations")
    if rotations:
        team = paging["team"]
        on_call = who_is_on_call(
            _rotation(f"{team}-primary", rotations["primary"]),
            _rotation(f"{team}-secondary", rotations["secondary"]),
            now,
        )
        busy_with_p0 = session.scalar(
            select(Page.id)
            .where(
                Page.team == page.team,
                Page.severity == "P0",
                Page.state == "open",
                Page.recipient == on_call.primary.member.name,
            )
            .limit(1)
        )
        chosen = route(page.severity, now, on_call, busy_with_p0 is not None)
        page.recipient, page.role = chosen.member.name, str(chosen.role)
    session.flush()  # the page's id, for its deliveries
    for index, channel in enumerate(paging.get("channels", [])):
        session.add(
            Delivery(
                page_id=page.id,
                channel=f"{index}:{channel['type']}",
                action=Action.TRIGGER,
                state="pending",
                attempts=0,
                claim=0,
                due_at=now,
                created_at=now,
            )
        )


def message_of(page: Page, rollout_id: int) -> PageMessage:
    return PageMessage(
        dedup_key=page.dedup_key,
        team=page.team,
        severity=page.severity,
        kind=page.kind,
        service=page.service,
        version=page.version,
        environment=page.environment,
        stage=page.stage,
        gate=page.gate,
        detail=page.detail,
        summary=page.summary,
        recipient=page.recipient,
        link=f"rollout show {rollout_id}",
        created_at=page.created_at,
    )


def deliver(runtime: Runtime, delivery_id: int, claim: int) -> None:
    """Send one delivery once; record delivered, failed for good, or due again later."""
    with reading(runtime.database_url) as session:
        row = session.execute(
            select(Delivery, Page, Rollout.plan)
            .join(Page, Page.id == Delivery.page_id)
            .join(Rollout, Rollout.id == Page.rollout_id)
            .where(Delivery.id == delivery_id, Delivery.claim == claim)
        ).first()
        if row is None or row.Delivery.state != "pending":
            return  # a duplicate or stale nudge
        delivery, page, plan = row.Delivery, row.Page, row.plan
        message = message_of(page, page.rollout_id)
    index = int(delivery.channel.split(":", 1)[0])
    spec = plan["paging"]["channels"][index]
    outcome = deliver_with_retries(
        channel_from_config(spec), message, Action(delivery.action), attempts=1
    )
    now = runtime.now()
    values: dict[str, Any] = {"claim": claim + 1, "attempts": delivery.attempts + 1}
    if outcome.status is DeliveryStatus.DELIVERED:
        values.update(state="delivered", delivered_at=now, due_at=None, last_error=None)
    elif outcome.status is DeliveryStatus.FAILED:
        values.update(state="failed", due_at=None, last_error=outcome.error)
        log.warning("page %s via %s failed for good: %s", page.id, delivery.channel, outcome.error)
    else:
        wait = outcome.retry_after or min(MAX_BACKOFF_S, 2.0**delivery.attempts)
        values.update(due_at=now + timedelta(seconds=wait), last_error=outcome.error)
    with transaction(runtime.database_url) as session:
        session.execute(
            update(Delivery)
            .where(Delivery.id == delivery_id, Delivery.claim == claim)
            .values(**values)
        )
