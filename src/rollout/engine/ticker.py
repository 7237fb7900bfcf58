"""The ticker: claims rows whose due time has come (waits that ended, leases that ran out)
and nudges a worker for each. Safe to run more than one: on PostgreSQL claims skip rows
another ticker holds, and every claim bumps the row's claim number."""

from __future__ import annotations

import logging
import threading

from sqlalchemy import select, update

from rollout.domain.states import RolloutState
from rollout.engine.dispatch import AdvanceNudge, Nudge, StepNudge
from rollout.engine.runtime import Runtime
from rollout.store.database import is_postgresql, transaction
from rollout.store.models import Rollout, Upgrade

log = logging.getLogger(__name__)


def tick(runtime: Runtime) -> int:
    """Claim what is due now; return how many rows were claimed."""
    now = runtime.now()
    lease_end = now + runtime.lease
    postgres = is_postgresql(runtime.database_url)
    nudges: list[Nudge] = []
    with transaction(runtime.database_url) as session:
        due_upgrades = (
            select(Upgrade.id)
            .where(Upgrade.due_at <= now)
            .order_by(Upgrade.due_at)
            .limit(runtime.claim_batch)
        )
        if postgres:
            due_upgrades = due_upgrades.with_for_update(skip_locked=True)
        ids = list(session.scalars(due_upgrades))
        if ids:
            claimed = session.execute(
                update(Upgrade)
                .where(Upgrade.id.in_(ids))
                .values(claim=Upgrade.claim + 1, due_at=lease_end)
                .returning(Upgrade.id, Upgrade.claim)
            ).all()
            nudges += [StepNudge(row.id, row.claim) for row in claimed]

        due_rollouts = (
            select(Rollout.id)
            .where(Rollout.due_at <= now)
            .order_by(Rollout.due_at)
            .limit(runtime.claim_batch)
        )
        if postgres:
            due_rollouts = due_rollouts.with_for_update(skip_locked=True)
        rollout_ids = list(session.scalars(due_rollouts))
        if rollout_ids:
            # The lease: if this nudge is lost, the rollout comes due again.
            session.execute(
                update(Rollout).where(Rollout.id.in_(rollout_ids)).values(due_at=lease_end)
            )
            nudges += [AdvanceNudge(i) for i in rollout_ids]
    runtime.dispatcher.send(nudges)
    return len(nudges)


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


def live_rollouts(runtime: Runtime) -> int:
    with transaction(runtime.database_url) as session:
        states = [s.value for s in RolloutState if not s.final]
        return len(list(session.scalars(select(Rollout.id).where(Rollout.state.in_(states)))))
