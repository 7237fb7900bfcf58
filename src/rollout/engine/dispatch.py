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

# Steps per message: one message, one read and one write per rollout for the lot. Small
# enough that both workers share a rollout's stage and a failure's rollback waits for few.
STEP_BATCH = 25


@dataclass(frozen=True)
class StepBatch:
    """Upgrades stepped together by one worker: (upgrade id, claim) pairs, one rollout's
    next to each other."""

    claims: tuple[tuple[int, int], ...]


# What a worker is handed: the nudges with every step batched.
Message = StepBatch | AdvanceNudge | DeliverNudge | EscalateNudge


def messages(nudges: Iterable[Nudge]) -> list[Message]:
    """The messages that carry `nudges`: steps batched by rollout, every other nudge as it
    is. Celery and the embedded engine send the same ones, so the demo runs the batch path
    the real stack runs."""
    nudges = list(nudges)
    stepping = sorted(
        (n for n in nudges if isinstance(n, StepNudge)), key=lambda n: (n.rollout_id, n.upgrade_id)
    )
    batched: list[Message] = [
        StepBatch(tuple((n.upgrade_id, n.claim) for n in stepping[start : start + STEP_BATCH]))
        for start in range(0, len(stepping), STEP_BATCH)
    ]
    return batched + [n for n in nudges if not isinstance(n, StepNudge)]


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

    def __init__(self, handle: Callable[[Message], None], threads: int = 4) -> None:
        self._queue: queue.Queue[Message | None] = queue.Queue()
        self._handle = handle
        self._threads = [
            threading.Thread(target=self._work, name=f"rollout-worker-{i}", daemon=True)
            for i in range(threads)
        ]
        for thread in self._threads:
            thread.start()

    def send(self, nudges: Iterable[Nudge]) -> None:
        for message in messages(nudges):
            self._queue.put(message)

    def waiting(self) -> int:
        return self._queue.qsize()

    def close(self) -> None:
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join(timeout=10)

    def _work(self) -> None:
        while (message := self._queue.get()) is not None:
            try:
                self._handle(message)
            except Exception:
                # The row's lease runs out and the ticker re-drives it: log, never die.
                log.exception("step failed: %s", message)
