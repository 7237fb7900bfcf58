"""The simulated fleet's batched driver calls against real PostgreSQL: many deploys started
or polled, or many environments probed, in one call answer as one call each would, and each
deploy takes effect once."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from rollout.config import Fault
from rollout.drivers import BatchDriver, BatchProbes, DeployPhase, DeployRequest
from rollout.drivers.simulated import SimulatedDriver, SimulatedFleet
from tests.conftest import fresh_database


@pytest.fixture
def fleet() -> Iterator[SimulatedFleet]:
    with fresh_database("rollout_simfleet") as url:
        yield SimulatedFleet(url)


def _request(key: str, service: str, version: str | None = "2.0.0") -> DeployRequest:
    return DeployRequest(key, "prod-1", service, version)


def test_the_simulated_driver_takes_batches(fleet: SimulatedFleet) -> None:
    assert isinstance(SimulatedDriver(fleet), BatchDriver)
    assert isinstance(SimulatedDriver(fleet), BatchProbes)


def test_statuses_answer_each_key_as_status_would(fleet: SimulatedFleet) -> None:
    fleet.inject(Fault(service="slow", deploy_seconds=600))
    fleet.inject(Fault(service="broken", deploy_fails=True))
    fleet.start_many(
        [_request("done", "web"), _request("running", "slow"), _request("failed", "broken")]
    )

    answers = fleet.statuses(["done", "running", "failed", "never-asked"])

    assert {key: status.phase for key, status in answers.items()} == {
        "done": DeployPhase.SUCCEEDED,
        "running": DeployPhase.RUNNING,
        "failed": DeployPhase.FAILED,
        "never-asked": DeployPhase.UNKNOWN,
    }
    for key, status in answers.items():
        assert fleet.status(key) == status
    assert fleet.installed_versions() == {("prod-1", "web"): "2.0.0"}


def test_start_many_is_start_for_each(fleet: SimulatedFleet) -> None:
    fleet.install({("prod-1", "gone"): "1.0.0"})
    fleet.start_many([_request("a", "web"), _request("a", "web"), _request("b", "gone", None)])
    fleet.start(_request("a", "web"))

    # A key asked again only counts a call; removing a service takes it out of the fleet.
    assert fleet.deploy_records() == {"a": (2, 1), "b": (1, 1)}
    assert fleet.installed_versions() == {("prod-1", "web"): "2.0.0"}


def test_a_deploy_takes_effect_once_however_many_poll_it_at_once(
    fleet: SimulatedFleet,
) -> None:
    fleet.inject(Fault(service="web", deploy_seconds=0.3))
    keys = [f"k{i}" for i in range(20)]
    fleet.start_many([_request(key, "web") for key in keys])

    def poll(n: int) -> set[DeployPhase]:
        # Poll across the moment the deploys finish, some one key at a time, some all at once.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if n % 2:
                seen = {status.phase for status in fleet.statuses(keys).values()}
            else:
                seen = {fleet.status(key).phase for key in keys}
            if seen == {DeployPhase.SUCCEEDED}:
                break
        return seen

    with ThreadPoolExecutor(6) as pool:
        seen = list(pool.map(poll, range(6)))

    assert seen == [{DeployPhase.SUCCEEDED}] * 6
    assert {effects for _, effects in fleet.deploy_records().values()} == {1}


def _probe(transport: httpx.BaseTransport, environment: str, service: str) -> tuple[int, str]:
    with httpx.Client(transport=transport) as http:
        response = http.get(f"http://{environment}.sim/{service}/health")
    return response.status_code, response.text


def test_probing_many_answers_each_probe_as_a_probe_of_its_own_would(
    fleet: SimulatedFleet,
) -> None:
    fleet.install(
        {("prod-1", "web"): "2.0.0", ("prod-2", "web"): "2.0.0-bad", ("prod-1", "db"): "1.0.0"}
    )
    fleet.inject(Fault(service="web", version="2.0.0-bad", health="unhealthy", error_rate=0.5))
    fleet.inject(Fault(service="*", version="*", error_rate=0.01))
    driver = SimulatedDriver(fleet)
    places = [("prod-1", "web"), ("prod-2", "web"), ("prod-1", "db"), ("prod-3", "web")]

    together = driver.probing(places)

    for environment, service in [*places, ("prod-2", "db")]:  # the last one was not read
        alone = _probe(driver.transport(), environment, service)
        assert _probe(together, environment, service) == alone
    assert _probe(together, "prod-2", "web")[1].count('"failing"') == 1
    assert _probe(together, "prod-3", "web")[0] == 404
    with httpx.Client(transport=together) as http:
        assert http.get("http://prod-1.sim/web/metrics").status_code == 404


def test_probing_reads_the_fleet_once_for_the_batch(fleet: SimulatedFleet) -> None:
    fleet.install({("prod-1", "web"): "1.0.0"})
    together = SimulatedDriver(fleet).probing([("prod-1", "web")])

    fleet.start(_request("a", "web"))  # installs 2.0.0 at once

    # The batch measures against its one reading; the next batch reads again.
    assert '"1.0.0"' in _probe(together, "prod-1", "web")[1]
    assert (
        '"2.0.0"' in _probe(SimulatedDriver(fleet).probing([("prod-1", "web")]), "prod-1", "web")[1]
    )
