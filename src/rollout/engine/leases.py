"""Holding the leases of claimed rows while their step does I/O that may outlast a lease."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from sqlalchemy import tuple_, update

from rollout.engine.runtime import Runtime
from rollout.store.database import transaction
from rollout.store.models import Delivery, Upgrade

log = logging.getLogger(__name__)

# Renewed this many times per lease: a renewal delayed by a busy database still lands
# well before the lease runs out.
RENEWALS_PER_LEASE = 3


@contextmanager
def holding(
    runtime: Runtime, model: type[Upgrade] | type[Delivery], claims: Sequence[tuple[int, int]]
) -> Iterator[None]:
    """Keep the rows claimed as (id, claim) from coming due while the block runs.

    A send or a driver call may take longer than the lease (a channel's timeout, a slow
    SMTP server, a gate's timeout, a batch of steps one after another). Were its row to come
    due meanwhile, the ticker would hand it to a second worker: the page sent again, and
    this worker's answer dropped by the claim check. So the lease is renewed while the I/O
    runs; a row whose claim moved on is left alone, and a worker that dies stops renewing,
    so its rows still come due a lease later.
    """
    if not claims:
        yield
        return
    stop = threading.Event()
    every = runtime.lease.total_seconds() / RENEWALS_PER_LEASE

    def renew() -> None:
        while not stop.wait(every):
            until = runtime.now() + runtime.lease
            try:
                with transaction(runtime.database_url) as session:
                    session.execute(
                        update(model)
                        .where(
                            tuple_(model.id, model.claim).in_(claims),
                            model.due_at < until,  # never shorten a longer hold
                        )
                        .values(due_at=until)
                    )
            except Exception as error:  # the database restarting: try again next time
                log.warning("renewing %d leases failed: %s", len(claims), error)

    renewal = threading.Thread(target=renew, name="rollout-lease", daemon=True)
    renewal.start()
    try:
        yield
    finally:
        stop.set()
        renewal.join()
