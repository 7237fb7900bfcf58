"""Waking other rollouts after a batch of steps, on real PostgreSQL: exactly the rollouts an
environment came free for, or whose dependency was installed, are made due; and wakes
running at once over the same rollouts do not deadlock."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from itertools import count

import pytest
from sqlalchemy import select

from rollout.domain.constraints import dependency_prefix
from rollout.engine.progress import Wakes, wake
from rollout.engine.runtime import Runtime
from rollout.store.database import transaction
from rollout.store.models import Release, Rollout, Upgrade
from tests.conftest import fresh_database

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
_PATCH = count()  # a release is one per service and version


@pytest.fixture
def runtime() -> Iterator[Runtime]:
    with fresh_database("rollout_wake") as url:
        yield Runtime(url, url, now=lambda: NOW)


def _rollout(
    runtime: Runtime, service: str, state: str = "running", hold: tuple[str, str] | None = None
) -> int:
    """A rollout of `service`, not due; `hold`: a pending upgrade in (environment, reason)."""
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
            plan={},
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
                    driver={"type": "simulated"},
                    state="pending",
                    hold_reason=hold[1],
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
    freeing = _rollout(runtime, "checkout")
    waiting = _rollout(runtime, "checkout")
    superseding = _rollout(runtime, "checkout", state="superseding")
    _rollout(runtime, "checkout", state="succeeded")
    _rollout(runtime, "checkout", state="paused")
    _rollout(runtime, "search")

    wake(runtime, Wakes(freed={("checkout", freeing)}))

    assert _due(runtime) == {waiting, superseding}


def test_an_installed_version_wakes_the_running_rollouts_waiting_for_it_there(
    runtime: Runtime,
) -> None:
    needs = dependency_prefix("billing-db") + ">= 2.3 in prod-1 (installed 2.1)"
    there = _rollout(runtime, "checkout", hold=("prod-1", needs))
    _rollout(runtime, "cart", hold=("prod-2", needs))  # waits elsewhere
    _rollout(runtime, "search", hold=("prod-1", dependency_prefix("billing") + ">= 1"))
    _rollout(runtime, "web", state="paused", hold=("prod-1", needs))
    freeing = _rollout(runtime, "api")
    also = _rollout(runtime, "api")

    wake(runtime, Wakes(freed={("api", freeing)}, installed={("prod-1", "billing-db")}))

    assert _due(runtime) == {there, also}


def test_wakes_of_the_same_rollouts_at_once_do_not_deadlock(runtime: Runtime) -> None:
    ids = [_rollout(runtime, f"svc-{i % 5}") for i in range(60)]
    services = sorted({f"svc-{i % 5}" for i in range(60)})

    def waking(n: int) -> None:
        # Each names the same rollouts in its own order; PostgreSQL would abort one of two
        # statements locking them in opposite orders.
        mine = services[n % 5 :] + services[: n % 5]
        for _ in range(20):
            wake(runtime, Wakes(freed={(service, ids[n]) for service in mine}))

    with ThreadPoolExecutor(6) as pool:
        list(pool.map(waking, range(6)))

    assert _due(runtime) == set(ids)
