"""The Celery app: two tasks, each keyed by the row it moves. Every setting that makes
"at least once, and idempotent" true is here, with its reason."""

from __future__ import annotations

from functools import cache
from typing import Any

from celery import Celery
from celery.signals import worker_process_init

from rollout.engine.broker import transport_for
from rollout.engine.dispatch import DeliverNudge, EscalateNudge, Message, StepBatch, messages
from rollout.engine.progress import advance
from rollout.engine.runtime import Runtime
from rollout.engine.steps import step, steps
from rollout.observability import workers as _observed  # noqa: F401 (connects its signals)
from rollout.paging.outbox import deliver, escalate
from rollout.settings import get_settings
from rollout.store.database import engine_for, session_factory

QUEUE = "rollout"

app = Celery("rollout")
app.conf.update(
    broker_url=get_settings().broker_url,
    # kombu's Redis transport with the repair that lets a worker outlive a Redis restart
    # (engine/broker.py says what Celery 5.7 does wrong there).
    broker_transport=transport_for(get_settings().broker_url),
    task_default_queue=QUEUE,
    # Every setting below serves one promise: at-least-once delivery of nudges to steps that
    # are idempotent and claim-checked. tests/e2e/test_faults.py kills workers, restarts
    # Redis and PostgreSQL under 2,000 upgrades and checks that nothing is lost or doubled.
    # Acknowledge after the task ran, so a worker killed mid-task leaves its message to
    # another worker...
    task_acks_late=True,
    # ...and also when the pool process itself dies (celery #1628).
    task_reject_on_worker_lost=True,
    # Steps are short; a small prefetch keeps messages with idle workers, not busy ones.
    worker_prefetch_multiplier=4,
    # Nothing reads task results: state is in the database.
    task_ignore_result=True,
    # Longer than any message is held unacknowledged (a prefetched wait plus the longest
    # step: gate and channel timeouts of seconds), so Redis never re-delivers one that is
    # still running; a message lost with a worker, or with a Redis restart (unacked ones
    # die with it), is re-driven by the ticker when its row's lease runs out, not by this.
    broker_transport_options={"visibility_timeout": 3600},
    # A worker outlives a broker restart: it waits for Redis at start and reconnects for as
    # long as it takes, never exiting after a count of tries.
    broker_connection_retry_on_startup=True,
    broker_connection_max_retries=None,
    # On a lost broker connection the running tasks' messages can no longer be acknowledged
    # and come round again: stop them rather than run them twice at once (Celery 6 default).
    worker_cancel_long_running_tasks_on_connection_loss=True,
    worker_hijack_root_logger=False,
)


class CeleryDispatcher:
    delivers = True

    def send(self, nudges: Any) -> None:
        batched = messages(nudges)
        if not batched:
            return
        with app.producer_or_acquire() as producer:
            for message in batched:
                self._send_one(message, producer)

    def waiting(self) -> int:
        with app.connection_or_acquire() as connection:
            declared = connection.default_channel.queue_declare(queue=QUEUE)
            return int(declared.message_count)

    def _send_one(self, message: Message, producer: Any) -> None:
        args: tuple[object, ...]
        if isinstance(message, StepBatch):
            name, args = "rollout.steps", (list(message.claims),)
        elif isinstance(message, DeliverNudge):
            name, args = "rollout.deliver", (message.delivery_id, message.claim)
        elif isinstance(message, EscalateNudge):
            name, args = "rollout.escalate", (message.page_id, message.escalations)
        else:
            name, args = "rollout.advance", (message.rollout_id,)
        app.send_task(name, args, queue=QUEUE, producer=producer)


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


@app.task(name="rollout.steps")
def steps_task(claims: list[list[int]]) -> None:
    """A batch of (upgrade id, claim) pairs, stepped together (JSON makes tuples lists)."""
    steps(runtime(), [(upgrade_id, claim) for upgrade_id, claim in claims])


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
