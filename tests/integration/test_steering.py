"""Steering rollouts on real Celery workers, Redis and PostgreSQL: pause and resume, an
inconclusive gate decided by resuming, abort, retry after a failure, promote past a soak."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import select

from rollout.config import Fault, Fleet, load_fleet
from rollout.domain.audit import Actor
from rollout.drivers.simulated import SimulatedFleet
from rollout.engine import steering
from rollout.engine.runtime import Runtime
from rollout.engine.submission import submit
from rollout.store.database import transaction
from rollout.store.models import Installation, Page, Release, Rollout, Upgrade
from tests.conftest import FIXTURES, Cluster
from tests.waiting import wait_for

TESTER = Actor.local("tester")

pytestmark = pytest.mark.integration
FINAL = {"succeeded", "failed", "superseded"}


def _rollout(cluster: Cluster, rollout_id: int) -> Rollout:
    with transaction(cluster.database_url) as session:
        rollout = session.get(Rollout, rollout_id)
        assert rollout is not None
        return rollout


def _upgrades(cluster: Cluster, rollout_id: int) -> dict[str, Upgrade]:
    with transaction(cluster.database_url) as session:
        rows = session.scalars(select(Upgrade).where(Upgrade.rollout_id == rollout_id))
        return {u.environment: u for u in rows}


def _reaches(cluster: Cluster, rollout_id: int, states: set[str], what: str) -> Rollout:
    """The rollout once it is in one of `states` (which it then stays in)."""
    wait_for(lambda: _rollout(cluster, rollout_id).state in states, 60, what)
    return _rollout(cluster, rollout_id)


def _final(cluster: Cluster, rollout_id: int) -> Rollout:
    return _reaches(cluster, rollout_id, FINAL, f"rollout {rollout_id} to finish")


def _variant(tmp_path: Path, change: Any) -> Fleet:
    """The test fleet with a change of this test's own, written to a YAML file of its own
    (the workers need none: a rollout's plan is snapshotted at submit)."""
    document = yaml.safe_load((FIXTURES / "fleet.yaml").read_text())
    change(document)
    path = tmp_path / "fleet.yaml"
    path.write_text(yaml.safe_dump(document))
    return load_fleet(path)


def _with_inconclusive_band(document: dict[str, Any]) -> None:
    """checkout's health gate: under 0.05 passes, over 0.2 fails, in between asks a human."""
    checkout = next(s for s in document["services"] if s["name"] == "checkout")
    checkout["gates"][0]["failure_condition"] = "error_rate > 0.2"


def _ok(result: Any) -> str:
    assert result.returncode == 0, result.stderr
    return str(result.stdout)


def test_a_paused_rollout_starts_nothing_new_and_finishes_after_resume(
    cluster: Cluster, fleet: Fleet, simulator: SimulatedFleet, runtime: Runtime
) -> None:
    simulator.inject(Fault(service="checkout", version="7.0.0", deploy_seconds=2.0))
    submitted = submit(runtime, fleet, "checkout", "7.0.0")
    rollout_id = submitted.rollout_id
    wait_for(
        lambda: _upgrades(cluster, rollout_id)["canary-1"].state == "deploying",
        30,
        "the canary to deploy",
    )
    paused = steering.pause(runtime, rollout_id, "change freeze", actor=TESTER)
    assert paused.message == f"rollout {rollout_id} paused: paused by operator: change freeze"
    assert _upgrades(cluster, rollout_id)["canary-1"].state == "deploying", "paused in time"
    again = _ok(cluster.rollout("pause", str(rollout_id)))
    assert "paused already" in again

    # The canary in flight finishes; its stage passes and soaks; the next stage does not start.
    wait_for(
        lambda: _rollout(cluster, rollout_id).stage_index == 1,
        30,
        "the canary stage to pass while paused",
    )
    upgrades = _upgrades(cluster, rollout_id)
    assert upgrades["canary-1"].state == "succeeded"
    later = [u for env, u in upgrades.items() if env != "canary-1"]
    assert {u.state for u in later} == {"pending"}, {
        e: (u.state, u.reason, u.deploy_started_at, u.finished_at) for e, u in upgrades.items()
    }
    assert {u.hold_reason for u in later} == {"rollout paused: paused by operator: change freeze"}
    assert all(u.deploy_started_at is None for u in later)
    assert _rollout(cluster, rollout_id).state == "paused"

    assert f"rollout {rollout_id} resumed" in _ok(cluster.rollout("resume", str(rollout_id)))
    assert _final(cluster, rollout_id).state == "succeeded"
    installed = simulator.installed_versions()
    assert {installed[(e.name, "checkout")] for e in fleet.environments} == {"7.0.0"}


def test_an_inconclusive_gate_pauses_and_resuming_passes_it(
    cluster: Cluster, simulator: SimulatedFleet, runtime: Runtime, tmp_path: Path
) -> None:
    fleet = _variant(tmp_path, _with_inconclusive_band)
    simulator.inject(Fault(service="checkout", version="7.1.0", error_rate=0.1))
    submitted = submit(runtime, fleet, "checkout", "7.1.0")
    rollout_id = submitted.rollout_id
    paused = _reaches(cluster, rollout_id, {"paused"}, "the inconclusive gate to pause the rollout")
    assert paused.reason is not None and paused.reason.startswith("canary-1: ")
    canary = _upgrades(cluster, rollout_id)["canary-1"]
    assert canary.state == "awaiting_decision"
    staging = _upgrades(cluster, rollout_id)["staging-1"]
    assert staging.hold_reason == f"rollout paused: {paused.reason}"

    # The operator looked: the version is fine, and so is the fleet from now on.
    simulator.inject(Fault(service="checkout", version="7.1.0", error_rate=0.0))
    resumed = steering.resume(
        runtime, rollout_id, "0.1 is expected during the migration", actor=TESTER
    )
    assert resumed.changed and "passed canary-1" in resumed.message
    assert _final(cluster, rollout_id).state == "succeeded"
    canary = _upgrades(cluster, rollout_id)["canary-1"]
    assert canary.state == "succeeded"
    assert (canary.reason or "").startswith(
        "passed by operator: 0.1 is expected during the migration (was: "
    )
    with transaction(cluster.database_url) as session:
        installed = session.get(Installation, ("canary-1", "checkout"))
        assert installed is not None and installed.version == "7.1.0"
        release = session.get(Release, submitted.release_id)
        assert release is not None and release.state == "succeeded"


def test_abort_rolls_back_an_upgrade_awaiting_a_decision(
    cluster: Cluster, simulator: SimulatedFleet, runtime: Runtime, tmp_path: Path
) -> None:
    fleet = _variant(tmp_path, _with_inconclusive_band)
    simulator.inject(Fault(service="checkout", version="7.2.0", error_rate=0.1))
    submitted = submit(runtime, fleet, "checkout", "7.2.0")
    rollout_id = submitted.rollout_id
    wait_for(
        lambda: _upgrades(cluster, rollout_id)["canary-1"].state == "awaiting_decision",
        30,
        "the canary to await a decision",
    )
    said = _ok(cluster.rollout("abort", str(rollout_id), "--reason", "error rate too high"))
    assert "aborted by operator: error rate too high" in said

    rollout = _final(cluster, rollout_id)
    assert rollout.state == "failed"
    assert rollout.reason == "aborted by operator: error rate too high"
    upgrades = _upgrades(cluster, rollout_id)
    assert upgrades["canary-1"].state == "rolled_back"
    assert {u.state for env, u in upgrades.items() if env != "canary-1"} == {"cancelled"}
    assert simulator.installed_versions()[("canary-1", "checkout")] == "1.0.0"
    with transaction(cluster.database_url) as session:
        release = session.get(Release, submitted.release_id)
        assert release is not None and release.state == "failed"
        kinds = [p.kind for p in session.scalars(select(Page).where(Page.rollout_id == rollout_id))]
    assert set(kinds) == {"decision"}, "the inconclusive gate asked; the abort pages nobody"
    # Aborting again changes nothing; resuming a failed rollout is refused in one line.
    assert "halted already" in _ok(cluster.rollout("abort", str(rollout_id)))
    refused = cluster.rollout("resume", str(rollout_id))
    assert refused.returncode != 0 and "Traceback" not in refused.stderr
    assert refused.stderr.strip().splitlines() == [
        f"error: rollout {rollout_id} is failed: only a paused rollout can be resumed"
    ]


def test_retry_after_a_failure_reaches_production(
    cluster: Cluster, fleet: Fleet, simulator: SimulatedFleet, runtime: Runtime
) -> None:
    digest = "sha256:" + "7e" * 32
    simulator.inject(Fault(service="search-api", version="8.0.0", health="unhealthy"))
    failed = submit(runtime, fleet, "search-api", "8.0.0", digest)
    assert _final(cluster, failed.rollout_id).state == "failed"

    simulator.inject(Fault(service="search-api", version="8.0.0"))  # the fleet is fixed
    said = _ok(cluster.rollout("retry", str(failed.rollout_id)))
    with transaction(cluster.database_url) as session:
        retried = session.scalars(
            select(Rollout).where(Rollout.id != failed.rollout_id, Rollout.service == "search-api")
        ).one()
    assert f"rollout {failed.rollout_id} retried: rollout {retried.id} (8.0.0)" in said
    assert retried.release_id == failed.release_id and retried.version == "8.0.0"
    assert _final(cluster, retried.id).state == "succeeded"
    installed = simulator.installed_versions()
    assert {installed[(e.name, "search-api")] for e in fleet.environments} == {"8.0.0"}
    with transaction(cluster.database_url) as session:
        release = session.get(Release, failed.release_id)
        assert release is not None and (release.state, release.digest) == ("succeeded", digest)

    # Asking again answers with the retry; once a newer release exists, retrying is refused.
    again = steering.retry(runtime, fleet, failed.rollout_id, actor=TESTER)
    assert (again.rollout_id, again.changed) == (retried.id, False)
    newer = submit(runtime, fleet, "search-api", "8.1.0")
    with pytest.raises(steering.SteeringRefused, match=f"rollout {newer.rollout_id} of"):
        steering.retry(runtime, fleet, failed.rollout_id, actor=TESTER)
    _final(cluster, newer.rollout_id)


def test_promote_ends_a_long_soak_only_once_the_stage_passed(
    cluster: Cluster, simulator: SimulatedFleet, runtime: Runtime, tmp_path: Path
) -> None:
    def long_canary_soak(document: dict[str, Any]) -> None:
        document["stages"][0]["soak"] = "1h"

    fleet = _variant(tmp_path, long_canary_soak)
    simulator.inject(Fault(service="checkout", version="9.0.0", deploy_seconds=2.0))
    submitted = submit(runtime, fleet, "checkout", "9.0.0")
    rollout_id = submitted.rollout_id
    wait_for(
        lambda: _upgrades(cluster, rollout_id)["canary-1"].state == "deploying",
        30,
        "the canary to deploy",
    )
    with pytest.raises(steering.SteeringRefused, match="canary has not passed: 0 of 1 env"):
        steering.promote(runtime, rollout_id, actor=TESTER)

    wait_for(
        lambda: _rollout(cluster, rollout_id).stage_passed_at is not None,
        30,
        "the canary stage to pass and start its soak",
    )
    staging = _upgrades(cluster, rollout_id)["staging-1"]
    assert staging.state == "pending" and "soaking until" in (staging.hold_reason or "")
    said = _ok(cluster.rollout("promote", str(rollout_id)))
    assert "stage canary promoted; now at stage staging" in said
    assert _final(cluster, rollout_id).state == "succeeded"
