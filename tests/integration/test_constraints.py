"""Constraints on the real cluster: a freeze holds an upgrade until it is lifted, a closed
maintenance window holds one until the ticker wakes it at the opening, and a dependency holds
one until the required service is upgraded in that environment."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml
from sqlalchemy import select

from rollout.config import Fleet
from rollout.drivers.simulated import SimulatedFleet
from rollout.engine.runtime import Runtime
from rollout.engine.submission import submit
from rollout.store.database import transaction
from rollout.store.models import Freeze, Rollout, Upgrade
from tests.conftest import FIXTURES, Cluster
from tests.waiting import wait_for

pytestmark = pytest.mark.integration


def _fleet(change: Any) -> Fleet:
    """The fixture fleet with one change: the rollout snapshots it, so the workers (started
    with the plain fixture) need not know it."""
    data = yaml.safe_load((FIXTURES / "fleet.yaml").read_text())
    change(data)
    return Fleet.model_validate(data)


def _upgrades(cluster: Cluster, rollout_id: int) -> dict[str, Upgrade]:
    with transaction(cluster.database_url) as session:
        rows = session.scalars(select(Upgrade).where(Upgrade.rollout_id == rollout_id))
        found = {u.environment: u for u in rows}
        session.expunge_all()
        return found


def _rollout(cluster: Cluster, rollout_id: int) -> Rollout:
    with transaction(cluster.database_url) as session:
        rollout = session.get(Rollout, rollout_id)
        assert rollout is not None
        session.expunge(rollout)
        return rollout


def _succeeded(cluster: Cluster, rollout_id: int) -> bool:
    return _rollout(cluster, rollout_id).state == "succeeded"


def test_a_freeze_holds_an_upgrade_and_unfreeze_lets_it_run(
    cluster: Cluster, fleet: Fleet, simulator: SimulatedFleet, runtime: Runtime
) -> None:
    refused = cluster.rollout("freeze", "prod-9", "--until", "1h", "--reason", "audit")
    assert refused.returncode == 1
    assert refused.stderr.strip() == "error: unknown environment or service 'prod-9'"
    past = cluster.rollout("freeze", "prod-2", "--until", "2020-01-01T00:00", "--reason", "x")
    assert past.returncode == 1 and "is not in the future" in past.stderr
    assert len(past.stderr.strip().splitlines()) == 1

    frozen = cluster.rollout("freeze", "prod-2", "--until", "1h", "--reason", "audit", check=True)
    assert frozen.stdout.startswith("environment prod-2 frozen until ")
    listed = cluster.rollout("freezes", check=True).stdout
    assert "prod-2" in listed and "audit" in listed

    done = submit(runtime, fleet, "checkout", "9.1.0")

    def held() -> bool:
        upgrades = _upgrades(cluster, done.rollout_id)
        others = {e: u.state for e, u in upgrades.items() if e != "prod-2"}
        return set(others.values()) == {"succeeded"}

    wait_for(held, 60, "every environment but the frozen one upgraded")
    prod_2 = _upgrades(cluster, done.rollout_id)["prod-2"]
    assert prod_2.state == "pending" and prod_2.deploy_started_at is None
    assert prod_2.hold_reason is not None
    assert prod_2.hold_reason.startswith("environment prod-2 frozen until ")
    assert prod_2.hold_reason.endswith(": audit")
    # The rollout is due again when the freeze ends, not before: no busy loop.
    due = _rollout(cluster, done.rollout_id).due_at
    assert due is not None and due > datetime.now(UTC) + timedelta(minutes=55)
    shown = cluster.rollout("show", str(done.rollout_id), check=True).stdout
    assert "prod-2" in shown and "frozen until" in shown and "audit" in shown

    lifted = cluster.rollout("unfreeze", "prod-2", check=True)
    assert lifted.stdout.strip() == "environment prod-2 unfrozen"
    wait_for(lambda: _succeeded(cluster, done.rollout_id), 30, "the unfrozen upgrade to run")
    assert simulator.installed_versions()[("prod-2", "checkout")] == "9.1.0"
    with transaction(cluster.database_url) as session:
        assert session.scalars(select(Freeze)).all() == []


def test_a_closed_window_holds_an_upgrade_until_the_ticker_wakes_it_at_the_opening(
    cluster: Cluster, simulator: SimulatedFleet, runtime: Runtime
) -> None:
    # A window that opens a few seconds from now, on the canary: it holds the first stage.
    opens = (datetime.now(UTC) + timedelta(seconds=4)).replace(microsecond=0)
    closes = opens + timedelta(hours=1)
    window = {
        "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
        "start": f"{opens:%H:%M:%S}",
        "end": f"{closes:%H:%M:%S}",
        "zone": "UTC",
    }

    def add_window(data: dict[str, Any]) -> None:
        data["environments"][0]["windows"] = [window]  # canary-1

    fleet = _fleet(add_window)
    done = submit(runtime, fleet, "search-api", "9.2.0")
    canary = _upgrades(cluster, done.rollout_id)["canary-1"]
    assert canary.state == "pending"
    assert canary.hold_reason == f"maintenance window opens at {opens:%Y-%m-%d %H:%M:%S} UTC"
    assert _rollout(cluster, done.rollout_id).due_at == opens

    wait_for(lambda: _succeeded(cluster, done.rollout_id), 60, "the rollout after the opening")
    started = _upgrades(cluster, done.rollout_id)["canary-1"].deploy_started_at
    assert started is not None
    assert opens <= started, "started before the window opened"
    # The ticker woke it at the opening (within a tick and a step), not on a later recheck.
    assert started - opens < timedelta(seconds=3)


def test_a_dependency_holds_an_upgrade_until_the_required_service_is_upgraded_there(
    cluster: Cluster, simulator: SimulatedFleet, runtime: Runtime
) -> None:
    def require(data: dict[str, Any]) -> None:
        checkout = next(s for s in data["services"] if s["name"] == "checkout")
        checkout["requires"] = ["search-api >= 2.0"]

    fleet = _fleet(require)
    waiting = submit(runtime, fleet, "checkout", "9.3.0")
    canary = _upgrades(cluster, waiting.rollout_id)["canary-1"]
    assert canary.state == "pending"
    assert canary.hold_reason == "waits for search-api >= 2.0 in canary-1 (installed 1.0.0)"
    shown = cluster.rollout("show", str(waiting.rollout_id), check=True).stdout
    assert "waits for search-api >= 2.0 in canary-1 (installed 1.0.0)" in shown

    required = submit(runtime, fleet, "search-api", "2.0.0")
    wait_for(lambda: _succeeded(cluster, required.rollout_id), 60, "search-api 2.0.0 everywhere")
    wait_for(lambda: _succeeded(cluster, waiting.rollout_id), 60, "checkout after its dependency")

    needed = _upgrades(cluster, required.rollout_id)
    for environment, upgrade in _upgrades(cluster, waiting.rollout_id).items():
        ready = needed[environment].finished_at
        assert ready is not None and upgrade.deploy_started_at is not None
        assert upgrade.deploy_started_at >= ready, f"{environment} started before its dependency"
    # Woken by the installation change, not by the 30 s recheck.
    first = needed["canary-1"].finished_at
    assert first is not None
    started = _upgrades(cluster, waiting.rollout_id)["canary-1"].deploy_started_at
    assert started is not None and started - first < timedelta(seconds=5)
