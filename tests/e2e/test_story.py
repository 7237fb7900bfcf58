"""The story an operator reads: a good and a bad release of two services, submitted and shown
with the CLI against real workers, a ticker, Redis and PostgreSQL."""

from __future__ import annotations

import json
import re

import pytest

from rollout.config import Fault
from rollout.drivers.simulated import SimulatedFleet
from tests.conftest import Cluster
from tests.waiting import wait_for

pytestmark = pytest.mark.e2e


def _state_of(cluster: Cluster, rollout_id: int) -> str:
    listing = cluster.rollout("list", check=True).stdout
    # id, service, version, state: the list is borderless.
    match = re.search(rf"^\s*{rollout_id}\s+\S+\s+\S+\s+(\w+)", listing, re.MULTILINE)
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
    assert re.search(r"3 production\s+│ passed\s+│ 3 succeeded", story)
    # Every environment is done: the default story names none of them, --all every one.
    assert "prod-1" not in story and "not shown: 6 done" in story
    story = cluster.rollout("show", str(good_id), "--all", check=True).stdout
    for env in ("canary-1", "staging-1", "staging-2", "prod-1", "prod-2", "prod-3"):
        assert re.search(rf"{env}\s+│ succeeded\s+│ \w+\s+│ 1\.0\.0 → 1\.1\.0", story), env

    story = cluster.rollout("show", str(bad_id), check=True).stdout
    assert "search-api 2.0.0-bad" in story and "failed" in story
    assert re.search(r"canary-1\s+│ rolled_back", story)
    assert "error_rate 0.2, wanted error_rate < 0.05" in story
    assert re.search(r"1 canary\s+│ halted here\s+│ 1 rolled_back", story)
    assert re.search(r"2 staging\s+│ not reached\s+│ 2 cancelled", story)
    assert re.search(r"3 production\s+│ not reached\s+│ 3 cancelled", story)
    # The gate's value is a number in the JSON, with its condition beside it.
    [upgrade] = [
        u
        for u in json.loads(cluster.rollout("show", str(bad_id), "-o", "json", check=True).stdout)[
            "upgrades"
        ]
        if u["environment"] == "canary-1"
    ]
    [health] = [g for g in upgrade["gates"] if g["name"] == "health"]
    assert (health["metric"], health["value"]) == ("error_rate", 0.2)
    assert health["condition"] == "error_rate < 0.05"
    assert "page P3 to search on-call" in story
    assert "Rolled back to 1.0.0" in story
    # Never reached the second stage: the fleet saw no deploy outside canary-1.
    deployed = {key for key in simulator.deploy_records()}
    assert len(deployed) == 2 + 6  # canary deploy + its rollback; six good upgrades
    versions = simulator.installed_versions()
    assert versions[("canary-1", "search-api")] == "1.0.0"
    assert all(versions[(env, "search-api")] == "1.0.0" for env in ("staging-1", "prod-1"))
