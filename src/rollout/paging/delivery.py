"""Delivering a page with retries: backoff with jitter, Retry-After honoured, never lost."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    wait_exponential,
    wait_random,
)
from tenacity.wait import wait_base

from rollout.paging.channels import (
    Action,
    Channel,
    PageMessage,
    PermanentDeliveryError,
    RetryableDeliveryError,
)

log = logging.getLogger(__name__)

# The first backoff; it doubles from there, plus up to as much again of jitter, so that a
# receiver's outage does not bring every worker back to it in the same instant.
FIRST_BACKOFF = 0.5


def backoff(max_wait: float) -> wait_base:
    """The one backoff policy of a page's delivery, in the worker and in the outbox alike:
    exponential from FIRST_BACKOFF, with jitter, at most `max_wait`."""
    return wait_exponential(multiplier=FIRST_BACKOFF, max=max_wait) + wait_random(0, FIRST_BACKOFF)


def backoff_after(attempts: int, max_wait: float) -> float:
    """How long the outbox waits after a delivery's `attempts`-th failed attempt."""
    state = RetryCallState(Retrying(), None, (), {})
    state.attempt_number = max(attempts, 1)
    return min(backoff(max_wait)(state), max_wait)


class DeliveryStatus(StrEnum):
    DELIVERED = "delivered"
    FAILED = "failed"  # permanently: a 4xx or a bad config; a person must act, retrying won't
    RETRY_LATER = "retry_later"  # gave up for now: the outbox reschedules the row


@dataclass(frozen=True)
class DeliveryOutcome:
    """How a delivery ended; its error text carries no secret."""

    status: DeliveryStatus
    attempts: int
    error: str | None = None
    # For RETRY_LATER: the wait the receiver asked for, if it did; the outbox's due time.
    retry_after: float | None = None

    @property
    def delivered(self) -> bool:
        return self.status is DeliveryStatus.DELIVERED


def deliver_with_retries(
    channel: Channel,
    message: PageMessage,
    action: Action,
    *,
    attempts: int = 6,
    max_wait: float = 60.0,
    sleep: Callable[[float], None] = time.sleep,
) -> DeliveryOutcome:
    """Try up to `attempts` times; wait out a Retry-After exactly, otherwise back off.

    A Retry-After longer than `max_wait` ends the attempts at once: waiting less would only
    be refused again, and holding a worker that long helps nobody, so the outbox row is
    rescheduled for then (`retry_after` says when).
    """
    if attempts < 1:
        raise ValueError("attempts must be at least 1")
    policy = backoff(max_wait)
    tried = 0

    def asked(state: RetryCallState) -> float | None:
        error = state.outcome.exception() if state.outcome is not None else None
        return error.retry_after if isinstance(error, RetryableDeliveryError) else None

    def wait(state: RetryCallState) -> float:
        retry_after = asked(state)
        return min(retry_after if retry_after is not None else policy(state), max_wait)

    def stop(state: RetryCallState) -> bool:
        retry_after = asked(state)
        too_long = retry_after is not None and retry_after > max_wait
        return state.attempt_number >= attempts or too_long

    def note(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome is not None else None
        wait_s = state.next_action.sleep if state.next_action is not None else 0.0
        log.warning(
            "page %s (%s) via %s: attempt %d failed, next in %.1fs: %s",
            message.dedup_key,
            action.value,
            channel.name,
            state.attempt_number,
            wait_s,
            error,
        )

    def attempt() -> None:
        nonlocal tried
        tried += 1
        channel.deliver(message, action)

    retrying = Retrying(
        stop=stop,
        wait=wait,
        retry=retry_if_exception_type(RetryableDeliveryError),
        sleep=sleep,
        before_sleep=note,
        reraise=True,
    )
    try:
        retrying(attempt)
    except RetryableDeliveryError as error:
        return DeliveryOutcome(DeliveryStatus.RETRY_LATER, tried, str(error), error.retry_after)
    except PermanentDeliveryError as error:
        return DeliveryOutcome(DeliveryStatus.FAILED, tried, str(error))
    return DeliveryOutcome(DeliveryStatus.DELIVERED, tried)
