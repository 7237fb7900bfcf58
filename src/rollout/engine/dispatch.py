"""Nudges: after a transaction commits, tell a worker which row to move. A nudge is never
state: a lost one is re-driven by the ticker when the row's lease runs out."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StepNudge:
    upgrade_id: int
    claim: int
    rollout_id: int = 0  # lets a dispatcher batch one rollout's steps into one message


@dataclass(frozen=True)
class AdvanceNudge:
    rollout_id: int


@dataclass(frozen=True)
class DeliverNudge:
    delivery_id: int
    claim: int


@dataclass(frozen=True)
class EscalateNudge:
    page_id: int
    escalations: int  # how many steps were done when it was claimed


Nudge = StepNudge | AdvanceNudge | DeliverNudge | EscalateNudge


class Dispatcher(Protocol):
    # False: nothing is sent, so claimed rows are left due at once for the ticker.
    delivers: bool

    def send(self, nudges: Iterable[Nudge]) -> None: ...

    # Messages sent and not yet taken by a worker: the ticker's backpressure.
    def waiting(self) -> int: ...


class NoDispatch:
    """Sends nothing: the ticker alone drives the rows (the CLI uses it: no broker needed)."""

    delivers = False

    def send(self, nudges: Iterable[Nudge]) -> None:
        return None

    def waiting(self) -> int:
        return 0


class InProcessDispatcher:
    """The embedded broker: a queue drained by worker threads in this process."""

    delivers = True

    def __init__(self, handle: Callable[[Nudge], None], threads: int = 4) -> None:
        self._queue: queue.Queue[Nudge | None] = queue.Queue()
        self._handle = handle
        self._threads = [
            threading.Thread(target=self._work, name=f"rollout-worker-{i}", daemon=True)
            for i in range(threads)
        ]
        for thread in self._threads:
            thread.start()

    def send(self, nudges: Iterable[Nudge]) -> None:
        for nudge in nudges:
            self._queue.put(nudge)

    def waiting(self) -> int:
        return self._queue.qsize()

    def close(self) -> None:
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join(timeout=10)

    def _work(self) -> None:
        while (nudge := self._queue.get()) is not None:
            try:
                self._handle(nudge)
            except Exception:
                # The row's lease runs out and the ticker re-drives it: log, never die.
                log.exception("step failed: %s", nudge)
