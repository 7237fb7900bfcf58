"""Holding the leases of claimed rows while their step does I/O that may outlast a lease."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from sqlalchemy import select, tuple_, update

from rollout.engine.runtime import Runtime
from rollout.store.database import is_postgresql, transaction
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
    postgres = is_postgresql(runtime.database_url)

    def renew() -> None:
        while not stop.wait(every):
            until = runtime.now() + runtime.lease
            ours = tuple_(model.id, model.claim).in_(claims)
            # Never shorten a longer hold; and never wait for a row's lock: its outcome is
            # being written or its rollout planned, and waiting while holding other rows
            # of the batch could deadlock with that. It is renewed next time, if still ours.
            due = select(model.id).where(ours, model.due_at < until).order_by(model.id)
            if postgres:
                due = due.with_for_update(skip_locked=True)
            try:
                with transaction(runtime.database_url) as session:
                    ids = list(session.scalars(due))
                    if ids:
                        session.execute(
                            update(model)
                            .where(model.id.in_(ids), ours)
                            .values(due_at=until)
                            .execution_options(synchronize_session=False)
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
