"""The ticker: claims rows whose due time has come (waits that ended, leases that ran out)
and nudges a worker for each. Safe to run more than one: on PostgreSQL claims skip rows
another ticker holds, and every claim bumps the row's claim number."""

from __future__ import annotations

import logging
import threading
from datetime import datetime
from typing import Any

from sqlalchemy import Select, select, update
from sqlalchemy.orm import Session

from rollout.engine.dispatch import (
    AdvanceNudge,
    DeliverNudge,
    EscalateNudge,
    Nudge,
    StepNudge,
)
from rollout.engine.runtime import Runtime
from rollout.observability import events
from rollout.store.database import is_postgresql, transaction
from rollout.store.models import Delivery, Page, Rollout, Upgrade

log = logging.getLogger(__name__)


def tick(runtime: Runtime) -> int:
    """Claim what is due now; return how many rows were claimed."""
    now = runtime.now()
    lease_end = now + runtime.lease
    postgres = is_postgresql(runtime.database_url)
    nudges: list[Nudge] = []
    with transaction(runtime.database_url) as session:
        ids = _due(session, Upgrade, now, runtime.claim_batch, postgres)
        if ids:
            claimed = session.execute(
                update(Upgrade)
                .where(Upgrade.id.in_(ids))
                .values(claim=Upgrade.claim + 1, due_at=lease_end)
                .returning(Upgrade.id, Upgrade.claim)
            ).all()
            nudges += [StepNudge(row.id, row.claim) for row in claimed]
        delivery_ids = _due(session, Delivery, now, runtime.claim_batch, postgres)
        if delivery_ids:
            sent = session.execute(
                update(Delivery)
                .where(Delivery.id.in_(delivery_ids))
                .values(claim=Delivery.claim + 1, due_at=lease_end)
                .returning(Delivery.id, Delivery.claim)
            ).all()
            nudges += [DeliverNudge(row.id, row.claim) for row in sent]
        escalating = session.execute(
            _due_query(Page, Page.escalate_at, now, runtime.claim_batch, postgres).add_columns(
                Page.escalations
            )
        ).all()
        if escalating:
            session.execute(
                update(Page)
                .where(Page.id.in_([row.id for row in escalating]))
                .values(escalate_at=lease_end)
            )
            nudges += [EscalateNudge(row.id, row.escalations) for row in escalating]
        rollout_ids = _due(session, Rollout, now, runtime.claim_batch, postgres)
        if rollout_ids:
            # The lease: if this nudge is lost, the rollout comes due again.
            session.execute(
                update(Rollout).where(Rollout.id.in_(rollout_ids)).values(due_at=lease_end)
            )
            nudges += [AdvanceNudge(i) for i in rollout_ids]
    runtime.dispatcher.send(nudges)
    return len(nudges)


def _due_query(
    model: type[Upgrade] | type[Rollout] | type[Delivery] | type[Page],
    due: Any,
    now: datetime,
    limit: int,
    postgres: bool,
) -> Select[Any]:
    """Rows due now, oldest first; on PostgreSQL rows another ticker holds are skipped."""
    query = select(model.id).where(due <= now).order_by(due).limit(limit)
    if postgres:
        query = query.with_for_update(skip_locked=True)
    return query


def _due(
    session: Session,
    model: type[Upgrade] | type[Rollout] | type[Delivery],
    now: datetime,
    limit: int,
    postgres: bool,
) -> list[int]:
    rows = session.execute(
        _due_query(model, model.due_at, now, limit, postgres).add_columns(model.due_at)
    ).all()
    if rows:  # oldest first: how late this tick is for the row that waited longest
        events.ticker_claimed(model.__tablename__, rows[0].due_at, now)
    return [row.id for row in rows]


def run_ticker(runtime: Runtime, interval: float, stop: threading.Event) -> None:
    """Tick until stopped; a full batch means more is due, so go again at once."""
    while not stop.is_set():
        try:
            claimed = tick(runtime)
        except Exception:
            # The database restarting must not kill the ticker: log and try again.
            log.exception("tick failed")
            claimed = 0
        if claimed < runtime.claim_batch:
            stop.wait(interval)
