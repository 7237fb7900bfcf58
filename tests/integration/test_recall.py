"""A recall on the real cluster: every environment running the release rolls off to its last
good version at once, nothing new starts, nobody is paged, and it cannot come back."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from rollout.config import Fault, Fleet
from rollout.domain.audit import Actor
from rollout.drivers.simulated import SimulatedFleet
from rollout.engine.recall import recall
from rollout.engine.runtime import Runtime
from rollout.engine.submission import SubmitError, submit
from rollout.store.database import transaction
from rollout.store.models import Installation, Page, Release, Rollout, Upgrade
from tests.conftest import Cluster
from tests.waiting import wait_for

TESTER = Actor.local("tester")

pytestmark = pytest.mark.integration


def _states(cluster: Cluster, rollout_id: int) -> dict[str, str]:
    with transaction(cluster.database_url) as session:
        rows = session.scalars(select(Upgrade).where(Upgrade.rollout_id == rollout_id))
        return {u.environment: u.state for u in rows}


def test_a_recalled_release_rolls_off_everywhere_and_stays_out(
    cluster: Cluster, fleet: Fleet, simulator: SimulatedFleet, runtime: Runtime
) -> None:
    done = submit(runtime, fleet, "checkout", "9.0.0")
    wait_for(
        lambda: set(_states(cluster, done.rollout_id).values()) == {"succeeded"},
        60,
        "9.0.0 everywhere",
    )
    recalled = recall(runtime, "checkout", "9.0.0", "leaks memory", actor=TESTER)
    assert recalled.changed and len(recalled.rolling_off) == 6

    wait_for(
        lambda: set(_states(cluster, done.rollout_id).values()) == {"rolled_back"},
        60,
        "every environment rolled off",
    )
    installed = simulator.installed_versions()
    assert {installed[(e.name, "checkout")] for e in fleet.environments} == {"1.0.0"}
    with transaction(cluster.database_url) as session:
        release = session.get(Release, done.release_id)
        engine_view = {
            i.version
            for i in session.scalars(select(Installation).where(Installation.service == "checkout"))
        }
        pages = list(session.scalars(select(Page)))
    assert release is not None and release.state == "recalled"
    assert release.reason == "recalled: leaks memory"
    assert engine_view == {"1.0.0"}
    assert pages == []  # a recall is a decision, not an incident: nobody is woken
    records = simulator.deploy_records()
    assert all(effects == 1 for _, effects in records.values())
    assert sum(key.endswith("-rollback") for key in records) == 6

    assert not recall(runtime, "checkout", "9.0.0", actor=TESTER).changed
    with pytest.raises(SubmitError, match="recalled"):
        submit(runtime, fleet, "checkout", "9.0.0")


def test_a_recall_halts_a_rollout_in_flight(
    cluster: Cluster, fleet: Fleet, simulator: SimulatedFleet, runtime: Runtime
) -> None:
    simulator.inject(Fault(service="search-api", version="9.1.0", deploy_seconds=1.0))
    done = submit(runtime, fleet, "search-api", "9.1.0")
    wait_for(
        lambda: _states(cluster, done.rollout_id).get("canary-1") == "deploying",
        30,
        "the canary to deploy",
    )
    recall(runtime, "search-api", "9.1.0", actor=TESTER)

    def finished() -> Rollout | None:
        with transaction(cluster.database_url) as session:
            rollout = session.get(Rollout, done.rollout_id)
            return rollout if rollout is not None and rollout.state == "failed" else None

    wait_for(finished, 60, "the recalled rollout to finish")
    states = _states(cluster, done.rollout_id)
    # The canary passed its gates after the recall, and rolled off all the same.
    assert states["canary-1"] == "rolled_back"
    assert {s for env, s in states.items() if env != "canary-1"} == {"cancelled"}
    assert simulator.installed_versions()[("canary-1", "search-api")] == "1.0.0"
