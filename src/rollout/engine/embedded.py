"""The embedded engine: worker threads and a ticker thread in this process, no broker."""

from __future__ import annotations

import threading
from types import TracebackType

from rollout.engine.dispatch import (
    AdvanceNudge,
    DeliverNudge,
    EscalateNudge,
    InProcessDispatcher,
    Nudge,
    StepNudge,
)
from rollout.engine.outbox import deliver, escalate
from rollout.engine.progress import advance
from rollout.engine.runtime import Runtime
from rollout.engine.steps import step
from rollout.engine.ticker import run_ticker


class EmbeddedEngine:
    """Runs the same steps as the Celery workers, on threads; used by `rollout demo`."""

    def __init__(
        self,
        database_url: str,
        simulator_url: str,
        threads: int = 4,
        tick_seconds: float = 0.05,
    ) -> None:
        self.runtime = Runtime(database_url, simulator_url)
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

    def _handle(self, nudge: Nudge) -> None:
        if isinstance(nudge, StepNudge):
            step(self.runtime, nudge.upgrade_id, nudge.claim)
        elif isinstance(nudge, AdvanceNudge):
            advance(self.runtime, nudge.rollout_id)
        elif isinstance(nudge, DeliverNudge):
            deliver(self.runtime, nudge.delivery_id, nudge.claim)
        elif isinstance(nudge, EscalateNudge):
            escalate(self.runtime, nudge.page_id, nudge.escalations)

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
