"""The story an operator reads: a good and a bad release of two services, submitted and shown
with the CLI against real workers, a ticker, Redis and PostgreSQL."""

from __future__ import annotations

import re

import pytest

from rollout.config import Fault
from rollout.drivers.simulated import SimulatedFleet
from tests.conftest import Cluster
from tests.waiting import wait_for

pytestmark = pytest.mark.e2e


def _state_of(cluster: Cluster, rollout_id: int) -> str:
    listing = cluster.rollout("list", check=True).stdout
    match = re.search(rf"^│ {rollout_id}\s+│.*?│.*?│.*?│ (\w+)", listing, re.MULTILINE)
    return match.group(1) if match else ""


def test_good_reaches_production_bad_rolls_back_in_canary(
    cluster: Cluster, simulator: SimulatedFleet
) -> None:
    simulator.inject(Fault(service="search-api", version="2.0.0-bad", health="unhealthy"))

    good = cluster.rollout("submit", "checkout", "1.1.0", check=True)
    bad = cluster.rollout("submit", "search-api", "2.0.0-bad", check=True)
    good_id = int(good.stdout.rsplit("rollout", 1)[1])
    bad_id = int(bad.stdout.rsplit("rollout", 1)[1])

    wait_for(lambda: _state_of(cluster, good_id) == "succeeded", 60, "the good rollout")
    wait_for(lambda: _state_of(cluster, bad_id) == "failed", 60, "the bad rollout")

    story = cluster.rollout("show", str(good_id), check=True).stdout
    assert "checkout 1.1.0" in story and "succeeded" in story
    assert re.search(r"Stage 3 production \(passed", story)
    for env in ("canary-1", "staging-1", "staging-2", "prod-1", "prod-2", "prod-3"):
        assert re.search(rf"{env}\s+│ succeeded\s+│ 1\.0\.0 → 1\.1\.0", story), env

    story = cluster.rollout("show", str(bad_id), check=True).stdout
    assert "search-api 2.0.0-bad" in story and "failed" in story
    assert re.search(r"canary-1\s+│ rolled_back", story)
    assert "error_rate 0.2, wanted error_rate < 0.05" in story
    assert re.search(r"Stage 1 canary \(halted here", story)
    assert re.search(
        r"Stage 2 staging \(not reached.*\): 2 environments cancelled; not started", story
    )
    assert re.search(r"Stage 3 production \(not reached.*\): 3 environments cancelled", story)
    assert "page P3 to search on-call" in story
    assert "Rolled back to 1.0.0" in story
    # Never reached the second stage: the fleet saw no deploy outside canary-1.
    deployed = {key for key in simulator.deploy_records()}
    assert len(deployed) == 2 + 6  # canary deploy + its rollback; six good upgrades
    versions = simulator.installed_versions()
    assert versions[("canary-1", "search-api")] == "1.0.0"
    assert all(versions[(env, "search-api")] == "1.0.0" for env in ("staging-1", "prod-1"))
