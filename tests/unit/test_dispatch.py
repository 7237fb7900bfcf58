"""Nudges become messages: steps batched by rollout, the same for Celery and the embedded
engine."""

from __future__ import annotations

import threading

from rollout.engine.dispatch import (
    STEP_BATCH,
    AdvanceNudge,
    DeliverNudge,
    InProcessDispatcher,
    Message,
    StepBatch,
    StepNudge,
    messages,
)


def test_steps_are_batched_by_rollout_and_other_nudges_pass_as_they_are() -> None:
    steps = [StepNudge(upgrade, 1, rollout) for upgrade in range(40, 0, -1) for rollout in (2, 1)]
    deliver, advance = DeliverNudge(7, 3), AdvanceNudge(2)
    sent = messages([deliver, *steps, advance])
    batches = [m for m in sent if isinstance(m, StepBatch)]
    assert [len(b.claims) for b in batches] == [STEP_BATCH] * 3 + [80 - 3 * STEP_BATCH]
    # One rollout's steps together, in upgrade order; every step once.
    stepped = [claim for b in batches for claim in b.claims]
    assert sorted(stepped) == sorted((n.upgrade_id, n.claim) for n in steps)
    assert batches[0].claims[:2] == ((1, 1), (2, 1))
    assert sent[len(batches) :] == [deliver, advance]


def test_the_embedded_dispatcher_hands_its_workers_the_same_messages() -> None:
    handled: list[Message] = []
    done = threading.Event()

    def handle(message: Message) -> None:
        handled.append(message)
        if len(handled) == 2:
            done.set()

    dispatcher = InProcessDispatcher(handle, threads=1)
    try:
        dispatcher.send([StepNudge(1, 1, 9), StepNudge(2, 1, 9), AdvanceNudge(9)])
        assert done.wait(10)
    finally:
        dispatcher.close()
    assert handled == [StepBatch(((1, 1), (2, 1))), AdvanceNudge(9)]
