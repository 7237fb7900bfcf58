"""The engine end to end on real Celery workers, Redis and PostgreSQL: good releases reach
production, bad ones roll back and page, newer ones supersede, lost and duplicate nudges
change nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from celery import Celery
from sqlalchemy import func, select, update

from rollout.config import Fault, Fleet, load_fleet
from rollout.drivers.simulated import SimulatedFleet, deploys
from rollout.engine.runtime import Runtime
from rollout.engine.submission import submit
from rollout.store.database import connection, transaction
from rollout.store.models import Installation, Measurement, Page, Release, Rollout, Upgrade
from tests.conftest import FIXTURES, Cluster
from tests.waiting import wait_for

pytestmark = pytest.mark.integration
FINAL = {"succeeded", "failed", "superseded"}


def _rollout(cluster: Cluster, rollout_id: int) -> Rollout:
    with transaction(cluster.database_url) as session:
        rollout = session.get(Rollout, rollout_id)
        assert rollout is not None
        return rollout


def _final(cluster: Cluster, rollout_id: int, timeout: float = 60) -> Rollout:
    return wait_for(
        lambda: (r := _rollout(cluster, rollout_id)).state in FINAL and r,
        timeout,
        f"rollout {rollout_id} to finish",
    )


def _upgrades(cluster: Cluster, rollout_id: int) -> dict[str, Upgrade]:
    with transaction(cluster.database_url) as session:
        rows = session.scalars(select(Upgrade).where(Upgrade.rollout_id == rollout_id))
        return {u.environment: u for u in rows}


def _each_deploy_took_effect_once(simulator: SimulatedFleet) -> None:
    records = simulator.deploy_records()
    assert records, "no deploy reached the fleet"
    assert all(effects == 1 for _, effects in records.values()), records


def test_a_good_release_reaches_production(
    cluster: Cluster, fleet: Fleet, simulator: SimulatedFleet, runtime: Runtime
) -> None:
    submitted = submit(runtime, fleet, "checkout", "1.1.0")
    rollout = _final(cluster, submitted.rollout_id)

    assert rollout.state == "succeeded"
    upgrades = _upgrades(cluster, submitted.rollout_id)
    assert {u.state for u in upgrades.values()} == {"succeeded"}
    assert set(upgrades) == {e.name for e in fleet.environments}
    installed = simulator.installed_versions()
    assert all(installed[(env, "checkout")] == "1.1.0" for env in upgrades)
    _each_deploy_took_effect_once(simulator)
    with transaction(cluster.database_url) as session:
        release = session.get(Release, submitted.release_id)
        assert release is not None and release.state == "succeeded"
        engine_view = {
            i.environment: i.version
            for i in session.scalars(select(Installation).where(Installation.service == "checkout"))
        }
        assert engine_view == {env: "1.1.0" for env in upgrades}
        gates = set(session.scalars(select(Measurement.gate)))
        assert gates == {"health", "soak"}


def test_a_bad_release_rolls_back_in_the_first_stage_and_pages_its_team(
    cluster: Cluster, fleet: Fleet, simulator: SimulatedFleet, runtime: Runtime
) -> None:
    simulator.inject(Fault(service="search-api", version="2.0.0", health="unhealthy"))
    submitted = submit(runtime, fleet, "search-api", "2.0.0")
    rollout = _final(cluster, submitted.rollout_id)

    assert rollout.state == "failed"
    assert rollout.stage_index == 0
    upgrades = _upgrades(cluster, submitted.rollout_id)
    assert upgrades["canary-1"].state == "rolled_back"
    assert "error_rate 0.2, wanted error_rate < 0.05" in (upgrades["canary-1"].reason or "")
    later = [u for env, u in upgrades.items() if env != "canary-1"]
    assert {u.state for u in later} == {"cancelled"}
    assert all(u.deploy_started_at is None for u in later)
    assert simulator.installed_versions()[("canary-1", "search-api")] == "1.0.0"
    assert set(simulator.deploy_records()) == {
        f"upgrade-{upgrades['canary-1'].id}",
        f"upgrade-{upgrades['canary-1'].id}-rollback",
    }
    _each_deploy_took_effect_once(simulator)
    with transaction(cluster.database_url) as session:
        pages = list(session.scalars(select(Page).where(Page.team == "search")))
        noc = list(session.scalars(select(Page).where(Page.team == "noc")))
        release = session.get(Release, submitted.release_id)
    assert release is not None and release.state == "failed"
    assert len(pages) == 1
    page = pages[0]
    assert (page.team, page.severity, page.environment, page.gate) == (
        "search",
        "P3",
        "canary-1",
        "health",
    )
    assert page.dedup_key == f"rollout-{rollout.id}/health/canary-1"
    assert "Rolled back to 1.0.0" in page.summary
    # canary-1 is air-gapped: the operations rotation got the same facts, keyed apart.
    assert [p.dedup_key for p in noc] == [f"{page.dedup_key}/noc"]


def test_canaries_failing_together_each_roll_back_and_page_once(
    cluster: Cluster, simulator: SimulatedFleet, runtime: Runtime, tmp_path: Path
) -> None:
    # Six canaries start together and fail in the same batch of steps: the first failure
    # of the rollout is written at once, the others together after it.
    canaries = [f"canary-{n}" for n in range(2, 8)]
    text = (FIXTURES / "fleet.yaml").read_text()
    first = "  - {name: canary-1, stage: canary,"
    extra = "".join(
        f"  - {{name: {name}, stage: canary, driver: {{type: simulated, poll_interval: 0.1s}}}}\n"
        for name in canaries
    )
    (tmp_path / "fleet.yaml").write_text(text.replace(first, extra + first))
    wide = load_fleet(tmp_path / "fleet.yaml")
    simulator.install({(name, "checkout"): "1.0.0" for name in canaries})
    with transaction(cluster.database_url) as session:
        session.add_all(
            Installation(
                environment=name, service="checkout", version="1.0.0", updated_at=datetime.now(UTC)
            )
            for name in canaries
        )
    simulator.inject(Fault(service="checkout", version="6.6.6", health="unhealthy"))

    submitted = submit(runtime, wide, "checkout", "6.6.6")

    assert _final(cluster, submitted.rollout_id).state == "failed"
    upgrades = _upgrades(cluster, submitted.rollout_id)
    failed = {env for env, u in upgrades.items() if u.deploy_started_at is not None}
    assert failed == {"canary-1", *canaries}
    assert {upgrades[env].state for env in failed} == {"rolled_back"}
    assert {simulator.installed_versions()[(env, "checkout")] for env in failed} == {"1.0.0"}
    _each_deploy_took_effect_once(simulator)
    with transaction(cluster.database_url) as session:
        paged = session.execute(
            select(Page.environment, func.count())
            .where(Page.rollout_id == submitted.rollout_id, Page.team == "payments")
            .group_by(Page.environment)
        ).all()
    assert dict(paged) == {env: 1 for env in failed}


def test_a_newer_release_supersedes_what_has_not_started(
    cluster: Cluster, fleet: Fleet, simulator: SimulatedFleet, runtime: Runtime
) -> None:
    simulator.inject(Fault(service="checkout", version="3.0.0", deploy_seconds=1.0))
    first = submit(runtime, fleet, "checkout", "3.0.0")
    wait_for(
        lambda: _upgrades(cluster, first.rollout_id)["canary-1"].state == "deploying",
        30,
        "the first release to start deploying",
    )
    second = submit(runtime, fleet, "checkout", "3.1.0")
    assert second.superseded == (first.rollout_id,)

    assert _final(cluster, first.rollout_id).state == "superseded"
    assert _final(cluster, second.rollout_id).state == "succeeded"
    old = _upgrades(cluster, first.rollout_id)
    # The upgrade in flight finished; nothing else of the old release ever started.
    assert old["canary-1"].state == "succeeded"
    assert {u.state for env, u in old.items() if env != "canary-1"} == {"superseded"}
    installed = simulator.installed_versions()
    assert {installed[(e.name, "checkout")] for e in fleet.environments} == {"3.1.0"}
    _each_deploy_took_effect_once(simulator)


def test_submitting_the_same_release_twice_is_one_release(
    cluster: Cluster, fleet: Fleet, simulator: SimulatedFleet, runtime: Runtime
) -> None:
    digest = "sha256:" + "ab" * 32
    first = submit(runtime, fleet, "checkout", "4.0.0", digest)
    again = submit(runtime, fleet, "checkout", "4.0.0", digest)
    assert (again.release_id, again.rollout_id, again.created) == (
        first.release_id,
        first.rollout_id,
        False,
    )
    _final(cluster, first.rollout_id)


def test_a_lost_nudge_is_redriven_when_its_lease_runs_out(
    cluster: Cluster, fleet: Fleet, simulator: SimulatedFleet, runtime: Runtime
) -> None:
    simulator.inject(Fault(service="checkout", version="5.0.0", deploy_seconds=0.5))
    submitted = submit(runtime, fleet, "checkout", "5.0.0")
    wait_for(
        lambda: _upgrades(cluster, submitted.rollout_id)["canary-1"].state == "deploying",
        30,
        "the canary to deploy",
    )
    # A worker claims the row and its message vanishes: bump the claim, as a claim does.
    with transaction(cluster.database_url) as session:
        session.execute(
            update(Upgrade)
            .where(Upgrade.rollout_id == submitted.rollout_id, Upgrade.environment == "canary-1")
            .values(claim=Upgrade.claim + 1, due_at=datetime.now(UTC) + timedelta(seconds=3))
        )
    assert _final(cluster, submitted.rollout_id).state == "succeeded"


def test_a_worker_dying_between_taking_an_upgrade_and_asking_the_driver_loses_nothing(
    cluster: Cluster, fleet: Fleet, simulator: SimulatedFleet, runtime: Runtime
) -> None:
    # The fault suite found it: the row said deploying, the driver knew no such deploy, and
    # the upgrade was rolled back as a failed deploy, its rollout halted and its team paged.
    simulator.inject(Fault(service="checkout", version="5.1.0", deploy_seconds=1))
    submitted = submit(runtime, fleet, "checkout", "5.1.0")
    wait_for(
        lambda: _upgrades(cluster, submitted.rollout_id)["canary-1"].state == "deploying",
        30,
        "the canary to deploy",
    )
    canary = _upgrades(cluster, submitted.rollout_id)["canary-1"]
    # As if its worker died after committing "deploying" and before asking: the driver has
    # no such deploy, and the lease is up, later than the deploy's timeout (a lease may be
    # longer than a timeout): the deploy had not begun, so it has not timed out either.
    with connection(cluster.database_url) as db:
        db.execute(deploys.delete().where(deploys.c.key == f"upgrade-{canary.id}"))
    with transaction(cluster.database_url) as session:
        session.execute(
            update(Upgrade)
            .where(Upgrade.id == canary.id)
            .values(
                claim=Upgrade.claim + 1,
                due_at=datetime.now(UTC),
                deploy_started_at=datetime.now(UTC) - timedelta(days=1),
            )
        )

    assert _final(cluster, submitted.rollout_id).state == "succeeded"
    assert _upgrades(cluster, submitted.rollout_id)["canary-1"].state == "succeeded"
    assert simulator.deploy_records()[f"upgrade-{canary.id}"][1] == 1
    with transaction(cluster.database_url) as session:
        assert not list(session.scalars(select(Page.id)))


def test_stale_and_duplicate_nudges_change_nothing(
    cluster: Cluster, fleet: Fleet, simulator: SimulatedFleet, runtime: Runtime
) -> None:
    submitted = submit(runtime, fleet, "search-api", "6.0.0")
    _final(cluster, submitted.rollout_id)
    before = _upgrades(cluster, submitted.rollout_id)
    with transaction(cluster.database_url) as session:
        measured = len(list(session.scalars(select(Measurement.id))))
    records = simulator.deploy_records()

    broker = Celery(broker=cluster.env["ROLLOUT_BROKER_URL"])
    for upgrade in before.values():
        for claim in range(upgrade.claim + 1):
            broker.send_task("rollout.step", (upgrade.id, claim), queue="rollout")
            broker.send_task("rollout.step", (upgrade.id, claim), queue="rollout")
    marker = submit(runtime, fleet, "checkout", "6.0.1")  # runs after the duplicates drain
    _final(cluster, marker.rollout_id)

    after = _upgrades(cluster, submitted.rollout_id)
    assert {e: (u.state, u.claim) for e, u in after.items()} == {
        e: (u.state, u.claim) for e, u in before.items()
    }
    with transaction(cluster.database_url) as session:
        ours = (
            select(Measurement.id).join(Upgrade).where(Upgrade.rollout_id == submitted.rollout_id)
        )
        assert len(list(session.scalars(ours))) == measured
    current = simulator.deploy_records()
    assert {k: current[k] for k in records} == records


def test_a_batch_of_duplicate_and_stale_claims_moves_each_upgrade_once(
    cluster: Cluster, fleet: Fleet, simulator: SimulatedFleet, runtime: Runtime
) -> None:
    simulator.inject(Fault(service="checkout", version="7.0.0", deploy_seconds=1.5))
    submitted = submit(runtime, fleet, "checkout", "7.0.0")
    deploying = wait_for(
        lambda: (
            [
                u
                for u in _upgrades(cluster, submitted.rollout_id).values()
                if u.stage == "production" and u.state == "deploying"
            ]
            or None
        ),
        60,
        "production to deploy",
    )
    # Live claims twice over and stale ones, in batches sent again: what a ticker and a
    # plan racing, or a redelivered message, can hand the workers.
    live = [[u.id, u.claim] for u in deploying]
    stale = [[u.id, u.claim - 1] for u in deploying]
    broker = Celery(broker=cluster.env["ROLLOUT_BROKER_URL"])
    for _ in range(3):
        broker.send_task("rollout.steps", (live + stale + live,), queue="rollout")

    assert _final(cluster, submitted.rollout_id).state == "succeeded"
    upgrades = _upgrades(cluster, submitted.rollout_id)
    assert {u.state for u in upgrades.values()} == {"succeeded"}
    records = simulator.deploy_records()
    ours = {f"upgrade-{u.id}": records[f"upgrade-{u.id}"] for u in upgrades.values()}
    assert all(calls == 1 and effects == 1 for calls, effects in ours.values()), ours
    with transaction(cluster.database_url) as session:
        installed = {
            i.environment: i.version
            for i in session.scalars(select(Installation).where(Installation.service == "checkout"))
        }
    assert {installed[e] for e in upgrades} == {"7.0.0"}
