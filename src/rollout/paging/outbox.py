"""Pages on their way out: who gets a page (the on-call at that moment), the delivery rows
written with it, and the step that sends one delivery and records how it went."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from rollout.domain.oncall import (
    Member,
    OnCall,
    Override,
    Rotation,
    rest_after_page,
    route,
    who_is_on_call,
)
from rollout.engine.leases import holding
from rollout.engine.runtime import Runtime
from rollout.observability import events
from rollout.paging import (
    Action,
    DeliveryStatus,
    PageMessage,
    backoff_after,
    deliver_with_retries,
)
from rollout.plan.channels import ChannelSpec, EmailChannelSpec, SlackChannelSpec
from rollout.plan.models import MemberSpec, PagingSpec, RotationSpec
from rollout.store.database import reading, transaction
from rollout.store.models import Delivery, DeliveryChannel, Page, Rollout
from rollout.store.models import Override as OverrideRow

log = logging.getLogger(__name__)

# A receiver that is down is asked again after 1, 2, 4 … seconds, at most every 5 minutes;
# the row stays pending until it answers: a page is never dropped.
MAX_BACKOFF_S = 300.0
# The rest rule looks at P0 pages this far back: a night page rests someone until 06:00 the
# next day, at most about 30 hours later.
REST_LOOKBACK = timedelta(hours=36)


def _rotation(name: str, spec: RotationSpec) -> Rotation:
    return Rotation(
        name=name,
        members=tuple(Member(m.name, ZoneInfo(m.timezone)) for m in spec.members),
        shift=spec.shift,
        handoff=spec.handoff,
        start=spec.start,
        timezone=ZoneInfo(spec.timezone),
    )


# What a page to another team (the NOC, or the right team after a misroute) repeats.
SAME_FACTS = (
    "severity",
    "kind",
    "rollout_id",
    "upgrade_id",
    "service",
    "version",
    "environment",
    "stage",
    "gate",
    "detail",
    "summary",
)


def on_call_now(session: Session, paging: PagingSpec, now: datetime) -> OnCall | None:
    """Who is on call for the team right now: its rotations, the overrides set from the CLI,
    and the rest rule applied to the P0 pages it sent in the last two nights."""
    rotations = paging.rotations
    if rotations is None:
        return None
    team = paging.team
    zones = {m.name: ZoneInfo(m.timezone) for m in paging.members}
    overrides = [
        Override(
            rotation=f"{team}-{row.role}",
            member=Member(row.member, ZoneInfo(row.timezone)),
            start=row.starts_at,
            end=row.ends_at,
            replaces=row.replaces,
        )
        for row in session.scalars(
            select(OverrideRow).where(
                OverrideRow.team == team,
                OverrideRow.starts_at <= now,
                OverrideRow.ends_at > now,
            )
        )
    ]
    rests = []
    for name, paged_at in session.execute(
        select(Page.recipient, Page.created_at).where(
            Page.team == team,
            Page.severity == "P0",
            Page.recipient.is_not(None),
            Page.created_at > now - REST_LOOKBACK,
        )
    ):
        rest = rest_after_page(Member(name, zones.get(name, ZoneInfo("UTC"))), paged_at, "P0")
        if rest is not None and rest.end > now:
            rests.append(rest)
    return who_is_on_call(
        _rotation(f"{team}-primary", rotations.primary),
        _rotation(f"{team}-secondary", rotations.secondary),
        now,
        overrides,
        rests,
    )


def address(session: Session, page: Page, paging: PagingSpec, now: datetime) -> None:
    """Name the page's recipient, start its escalation timer, and write one pending delivery
    per channel of the team, in the caller's transaction (the one that records the failure)."""
    on_call = on_call_now(session, paging, now)
    if on_call is not None:
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
        page.escalate_at = _next_escalation(paging, page.created_at, 0)
    session.flush()  # the page's id, for its deliveries
    _deliveries(session, page, paging, Action.TRIGGER, now)


def addressed(
    channel: ChannelSpec, recipient: str | None, contact: MemberSpec | None
) -> DeliveryChannel:
    """The team's channel, pointed at the person on call where the channel can: email to
    their address, a Slack mention of them; other channels carry their name."""
    if contact is not None and isinstance(channel, EmailChannelSpec) and contact.email:
        channel = channel.model_copy(update={"recipients": (contact.email,)})
    mention = None
    if contact is not None and isinstance(channel, SlackChannelSpec) and contact.slack:
        handle = contact.slack
        mention = handle if handle.startswith("@") else f"<@{handle}>"
    return DeliveryChannel(spec=channel, recipient=recipient, mention=mention)


def _deliveries(
    session: Session, page: Page, paging: PagingSpec, action: str, now: datetime
) -> None:
    contact = paging.member(page.recipient)
    for index, channel in enumerate(paging.channels):
        session.add(
            Delivery(
                page_id=page.id,
                channel=f"{index}:{channel.type}",
                action=action,
                channel_spec=addressed(channel, page.recipient, contact),
                state="pending",
                attempts=0,
                claim=0,
                due_at=now,
                created_at=now,
            )
        )


def _next_escalation(paging: PagingSpec, opened_at: datetime, done: int) -> datetime | None:
    steps = paging.escalation
    if done >= len(steps):
        return None
    return opened_at + steps[done].after


def escalate(runtime: Runtime, page_id: int, done: int) -> None:
    """An unacknowledged page goes to the next target of its team's escalation policy."""
    with transaction(runtime.database_url) as session:
        row = session.execute(
            select(Page, Rollout.plan)
            .join(Rollout, Rollout.id == Page.rollout_id)
            .where(Page.id == page_id)
        ).first()
        if row is None:
            return
        page, plan = row.Page, row.plan
        if page.escalations != done:
            return  # another worker escalated it first and set the next timer
        if page.state != "open":
            page.escalate_at = None  # acknowledged or resolved: nobody else needs waking
            return
        paging = plan.paging
        steps = paging.escalation
        if done >= len(steps):
            page.escalate_at = None
            return
        now = runtime.now()
        target = steps[done].to
        on_call = on_call_now(session, paging, now)
        if target == "secondary" and on_call is not None:
            # A page routed to the secondary in the first place escalates to the primary.
            other = on_call.secondary
            if page.recipient == other.member.name:
                other = on_call.primary
            page.recipient, page.role = other.member.name, str(other.role)
        else:
            page.recipient, page.role = None, "team"
        page.escalations = done + 1
        page.escalate_at = _next_escalation(paging, page.created_at, done + 1)
        _deliveries(session, page, paging, f"escalate-{done + 1}", now)


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
            select(Delivery, Page, Rollout.traceparent)
            .join(Page, Page.id == Delivery.page_id)
            .join(Rollout, Rollout.id == Page.rollout_id)
            .where(Delivery.id == delivery_id, Delivery.claim == claim)
        ).first()
        if row is None or row.Delivery.state != "pending":
            return  # a duplicate or stale nudge
        delivery, page = row.Delivery, row.Page
        message = message_of(page, page.rollout_id)
    # Take it before sending, as a deploy is taken before the driver is asked: a nudge that
    # waited in the queue past its lease must not send while the ticker hands the row to
    # another worker (both would send, and the first's answer would be dropped: a resend);
    # and the lease now counts from the send, not from the claim.
    with transaction(runtime.database_url) as session:
        taken = session.execute(
            update(Delivery)
            .where(Delivery.id == delivery_id, Delivery.claim == claim)
            .values(claim=claim + 1, due_at=runtime.now() + runtime.lease)
        )
        if taken.rowcount != 1:  # type: ignore[attr-defined]
            return
    # The send may outlast the lease (a channel's timeout is its own): held till it ends.
    with (
        holding(runtime, Delivery, [(delivery_id, claim + 1)]),
        events.delivering(row.traceparent, page, delivery) as delivered,
    ):
        _send(runtime, delivery, page, message, claim + 1, delivered)


def _send(
    runtime: Runtime,
    delivery: Delivery,
    page: Page,
    message: PageMessage,
    claim: int,
    delivered: Callable[[str, datetime], None],
) -> None:
    delivery_id = delivery.id
    sent = delivery.channel_spec
    if sent is None:  # no row has been written without one since migration 0005
        raise ValueError(f"delivery {delivery_id} names no channel")
    if sent.recipient_kept:
        message = replace(message, recipient=sent.recipient)
    if sent.mention is not None:
        message = replace(message, recipient=f"{message.recipient} ({sent.mention})")
    # An escalation is a new trigger of the same page, now naming the next person.
    action = Action.TRIGGER if delivery.action.startswith("escalate") else Action(delivery.action)
    channel = runtime.backends.channel(sent.spec)
    outcome = deliver_with_retries(channel, message, action, attempts=1)
    now = runtime.now()
    values: dict[str, Any] = {"claim": claim + 1, "attempts": delivery.attempts + 1}
    if outcome.status is DeliveryStatus.DELIVERED:
        values.update(state="delivered", delivered_at=now, due_at=None, last_error=None)
    elif outcome.status is DeliveryStatus.FAILED:
        values.update(state="failed", due_at=None, last_error=outcome.error)
        log.warning("page %s via %s failed for good: %s", page.id, delivery.channel, outcome.error)
    else:
        # The receiver's Retry-After, else the same jittered backoff as in-process retries.
        wait = outcome.retry_after or backoff_after(delivery.attempts + 1, MAX_BACKOFF_S)
        values.update(due_at=now + timedelta(seconds=wait), last_error=outcome.error)
    with transaction(runtime.database_url) as session:
        session.execute(
            update(Delivery)
            .where(Delivery.id == delivery_id, Delivery.claim == claim)
            .values(**values)
        )
    delivered(values.get("state", "retrying"), now)
