"""One jittered backoff for a page's delivery: in the worker's retries and the outbox's."""

from __future__ import annotations

from rollout.paging.delivery import FIRST_BACKOFF, backoff_after


def test_the_outbox_backs_off_exponentially_with_jitter_up_to_its_limit() -> None:
    for attempts in range(1, 8):
        base = FIRST_BACKOFF * 2 ** (attempts - 1)
        waits = {backoff_after(attempts, 300.0) for _ in range(50)}
        assert all(base <= wait <= base + FIRST_BACKOFF for wait in waits), (attempts, waits)
        assert len(waits) > 1, "jittered: workers do not all come back at once"
    assert {backoff_after(30, 300.0) for _ in range(20)} == {300.0}
