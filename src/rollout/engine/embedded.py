"""The embedded engine: worker threads and a ticker thread in this process, no broker."""

from __future__ import annotations

import threading
from types import TracebackType

from rollout.engine.dispatch import (
    AdvanceNudge,
    DeliverNudge,
    EscalateNudge,
    InProcessDispatcher,
    Message,
    StepBatch,
)
from rollout.engine.progress import advance
from rollout.engine.runtime import Runtime
from rollout.engine.steps import steps
from rollout.engine.ticker import run_ticker
from rollout.paging.outbox import deliver, escalate


class EmbeddedEngine:
    """Runs the same steps as the Celery workers, batched as theirs are, on threads; used by
    `rollout demo`."""

    def __init__(self, runtime: Runtime, threads: int = 4, tick_seconds: float = 0.05) -> None:
        self.runtime = runtime
        self._dispatcher = InProcessDispatcher(self._handle, threads)
        self.runtime.dispatcher = self._dispatcher
        self._stop = threading.Event()
        self._ticker = threading.Thread(
            target=run_ticker,
            args=(self.runtime, tick_seconds, self._stop),
            name="rollout-ticker",
            daemon=True,
        )
        self._ticker.start()

    def _handle(self, message: Message) -> None:
        if isinstance(message, StepBatch):
            steps(self.runtime, list(message.claims))
        elif isinstance(message, AdvanceNudge):
            advance(self.runtime, message.rollout_id)
        elif isinstance(message, DeliverNudge):
            deliver(self.runtime, message.delivery_id, message.claim)
        elif isinstance(message, EscalateNudge):
            escalate(self.runtime, message.page_id, message.escalations)

    def close(self) -> None:
        self._stop.set()
        self._ticker.join(timeout=10)
        self._dispatcher.close()

    def __enter__(self) -> EmbeddedEngine:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
