"""The Celery app: two tasks, each keyed by the row it moves. Every setting that makes
"at least once, and idempotent" true is here, with its reason."""

from __future__ import annotations

from functools import cache
from typing import Any

from celery import Celery
from celery.signals import worker_process_init

from rollout.engine.dispatch import DeliverNudge, EscalateNudge, StepNudge
from rollout.engine.outbox import deliver, escalate
from rollout.engine.progress import advance
from rollout.engine.runtime import Runtime
from rollout.engine.steps import step
from rollout.observability import workers as _observed  # noqa: F401 (connects its signals)
from rollout.settings import get_settings
from rollout.store.database import engine_for, session_factory

QUEUE = "rollout"

app = Celery("rollout")
app.conf.update(
    broker_url=get_settings().broker_url,
    task_default_queue=QUEUE,
    # Acknowledge after the task ran, so a worker killed mid-task leaves its message to
    # another worker...
    task_acks_late=True,
    # ...and also when the pool process itself dies (celery #1628).
    task_reject_on_worker_lost=True,
    # Steps are short; a small prefetch keeps messages with idle workers, not busy ones.
    worker_prefetch_multiplier=4,
    # Nothing reads task results: state is in the database.
    task_ignore_result=True,
    # Waits live in the database, never in countdowns; the ticker re-drives lost messages,
    # so Redis' own redelivery may stay slow.
    broker_transport_options={"visibility_timeout": 3600},
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)


class CeleryDispatcher:
    delivers = True

    def send(self, nudges: Any) -> None:
        for nudge in nudges:
            if isinstance(nudge, StepNudge):
                app.send_task("rollout.step", (nudge.upgrade_id, nudge.claim), queue=QUEUE)
            elif isinstance(nudge, DeliverNudge):
                app.send_task("rollout.deliver", (nudge.delivery_id, nudge.claim), queue=QUEUE)
            elif isinstance(nudge, EscalateNudge):
                app.send_task("rollout.escalate", (nudge.page_id, nudge.escalations), queue=QUEUE)
            else:
                app.send_task("rollout.advance", (nudge.rollout_id,), queue=QUEUE)


@cache
def runtime() -> Runtime:
    return Runtime.from_settings(dispatcher=CeleryDispatcher())


@worker_process_init.connect
def _fresh_connections(**_: Any) -> None:
    # A forked pool process must not share the parent's database sockets.
    engine_for.cache_clear()
    session_factory.cache_clear()
    runtime.cache_clear()


@app.task(name="rollout.step")
def step_task(upgrade_id: int, claim: int) -> None:
    step(runtime(), upgrade_id, claim)


@app.task(name="rollout.deliver")
def deliver_task(delivery_id: int, claim: int) -> None:
    deliver(runtime(), delivery_id, claim)


@app.task(name="rollout.escalate")
def escalate_task(page_id: int, escalations: int) -> None:
    escalate(runtime(), page_id, escalations)


@app.task(name="rollout.advance")
def advance_task(rollout_id: int) -> None:
    advance(runtime(), rollout_id)


@app.task(name="rollout.noop")
def noop_task() -> None:
    """An empty task: the benchmark's measure of what the broker and workers cost alone."""
