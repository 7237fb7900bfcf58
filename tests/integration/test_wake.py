"""Waking other rollouts after a batch of steps, on real PostgreSQL: exactly the rollouts an
environment came free for, or whose dependency was installed, are made due, their rows
locked in id order."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import count

import pytest
from sqlalchemy import select, text, update

from rollout.domain.holds import Hold, HoldKind
from rollout.engine.progress import Wakes, wake
from rollout.engine.runtime import Runtime
from rollout.store.database import engine_for, transaction
from rollout.store.models import Release, Rollout, Upgrade
from tests.conftest import fresh_database
from tests.plans import SIMULATED, tiny_plan
from tests.waiting import wait_for

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
_PATCH = count()  # a release is one per service and version


@pytest.fixture
def runtime() -> Iterator[Runtime]:
    with fresh_database("rollout_wake") as url:
        yield Runtime(url, now=lambda: NOW)


def _rollout(
    runtime: Runtime, service: str, state: str = "running", hold: tuple[str, Hold] | None = None
) -> int:
    """A rollout of `service`, not due; `hold`: a pending upgrade in (environment, why)."""
    version = f"2.0.{next(_PATCH)}"
    with transaction(runtime.database_url) as session:
        release = Release(service=service, version=version, state="active", submitted_at=NOW)
        session.add(release)
        session.flush()
        rollout = Rollout(
            release_id=release.id,
            service=service,
            version=version,
            team="team-a",
            state=state,
            plan=tiny_plan("team-a"),
            created_at=NOW,
            updated_at=NOW,
        )
        session.add(rollout)
        session.flush()
        if hold is not None:
            session.add(
                Upgrade(
                    rollout_id=rollout.id,
                    service=service,
                    environment=hold[0],
                    stage_index=0,
                    stage="production",
                    to_version=version,
                    driver=SIMULATED,
                    state="pending",
                    hold_reason=hold[1].text,
                    hold_kind=hold[1].kind,
                    hold_subject=hold[1].subject,
                    created_at=NOW,
                )
            )
        return rollout.id


def _due(runtime: Runtime) -> set[int]:
    with transaction(runtime.database_url) as session:
        return set(session.scalars(select(Rollout.id).where(Rollout.due_at == NOW)))


def test_a_freed_environment_wakes_the_other_live_rollouts_of_its_service(
    runtime: Runtime,
) -> None:
    # One live rollout per service: the others of checkout are superseded, finishing.
    freeing = _rollout(runtime, "checkout", state="superseding")
    superseding = _rollout(runtime, "checkout", state="superseding")
    _rollout(runtime, "checkout", state="succeeded")
    waiting = _rollout(runtime, "checkout")
    _rollout(runtime, "cart", state="paused")
    _rollout(runtime, "search")

    wake(runtime, Wakes(freed={("checkout", freeing), ("cart", 0)}))

    assert _due(runtime) == {waiting, superseding}


def test_an_installed_version_wakes_the_running_rollouts_waiting_for_it_there(
    runtime: Runtime,
) -> None:
    text = "waits for billing-db >= 2.3 in prod-1 (installed 2.1)"
    needs = Hold(HoldKind.DEPENDENCY, "billing-db", text)
    there = _rollout(runtime, "checkout", hold=("prod-1", needs))
    _rollout(runtime, "cart", hold=("prod-2", needs))  # waits elsewhere
    _rollout(runtime, "search", hold=("prod-1", Hold(HoldKind.DEPENDENCY, "billing", "billing")))
    _rollout(runtime, "web", state="paused", hold=("prod-1", needs))
    # Only kind and subject count: a text that reads like a dependency is not one, and a
    # dependency worded otherwise is.
    _rollout(runtime, "shop", hold=("prod-1", Hold(HoldKind.WINDOW, "prod-1", text)))
    reworded = Hold(HoldKind.DEPENDENCY, "billing-db", "needs billing-db 2.3 or newer first")
    also_there = _rollout(runtime, "mail", hold=("prod-1", reworded))
    freeing = _rollout(runtime, "api", state="superseding")
    also = _rollout(runtime, "api")

    wake(runtime, Wakes(freed={("api", freeing)}, installed={("prod-1", "billing-db")}))

    assert _due(runtime) == {there, also_there, also}


def test_a_wake_locks_the_rollouts_in_id_order(runtime: Runtime) -> None:
    # Two wakers that lock the same rollouts in different orders can deadlock; in id order,
    # one waits for the other. Locking in the order PostgreSQL happens to scan the table is
    # not enough: the first rollout, updated, now lies last in the table.
    ids = [_rollout(runtime, "checkout", state="superseding") for _ in range(4)]
    ids.append(_rollout(runtime, "checkout"))
    engine = engine_for(runtime.database_url)
    with engine.begin() as db:
        # An indexed column: a new row version everywhere, not one only its old one points to.
        db.execute(
            update(Rollout).where(Rollout.id == ids[0]).values(due_at=NOW - timedelta(days=1))
        )
    holder = engine.connect()
    holder.begin()
    holder.execute(select(Rollout.id).where(Rollout.id == ids[0]).with_for_update())
    waker = threading.Thread(target=wake, args=(runtime, Wakes(freed={("checkout", 0)})))
    waker.start()
    try:
        wait_for(lambda: _waiting_on_a_lock(runtime), 10, "the wake to wait for the first rollout")
        # Waiting for the first, it has taken none after it.
        with engine.connect() as other:
            other.execute(
                select(Rollout.id).where(Rollout.id == ids[-1]).with_for_update(nowait=True)
            )
            other.rollback()
    finally:
        holder.rollback()
        holder.close()
        waker.join(10)

    assert _due(runtime) == set(ids)


def _waiting_on_a_lock(runtime: Runtime) -> bool:
    with engine_for(runtime.database_url).connect() as db:
        waiting = db.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        ).scalar_one()
    return bool(waiting)
