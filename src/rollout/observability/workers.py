"""The Celery side of observability: queue lag from a timestamp each message carries, and
what a pool process must do on the way out (its spans flushed, its live gauges dropped)."""

from __future__ import annotations

import os
import time
from typing import Any

from celery.signals import before_task_publish, task_prerun, worker_process_shutdown

from rollout.observability import metrics, tracing

SENT_AT = "rollout_sent_at"


@before_task_publish.connect
def _stamp(headers: dict[str, object] | None = None, **_: Any) -> None:
    if headers is not None:
        headers[SENT_AT] = time.time()


@task_prerun.connect
def _queue_lag(task: Any = None, **_: Any) -> None:
    request = getattr(task, "request", None)
    sent = getattr(request, SENT_AT, None)
    if sent is None and request is not None:
        sent = (getattr(request, "headers", None) or {}).get(SENT_AT)
    if isinstance(sent, int | float):
        metrics.QUEUE_LAG.labels(task.name).observe(max(time.time() - sent, 0.0))


@worker_process_shutdown.connect
def _pool_process_ends(**_: Any) -> None:
    tracing.flush()
    metrics.process_ended(os.getpid())
