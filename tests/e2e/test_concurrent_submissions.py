"""Releases of one service submitted at the same moment through a real `rollout api`, on
PostgreSQL with real workers: they serialise, the newest accepted supersedes every other,
and the fleet ends running what the `installations` table says."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from threading import Barrier

import httpx
import pytest
from sqlalchemy import select

from rollout.domain.states import RolloutState
from rollout.drivers.simulated import SimulatedFleet
from rollout.store.database import reading
from rollout.store.models import Installation, Rollout
from tests.conftest import Cluster
from tests.e2e.test_remote_cli import Api
from tests.waiting import wait_for

pytestmark = pytest.mark.e2e

SUBMISSIONS = 20
DIGEST = "sha256:" + "ab" * 32


@pytest.fixture
def api(cluster: Cluster, simulator: SimulatedFleet, tmp_path: Path) -> Iterator[Api]:
    server = Api(cluster.database_url, tmp_path)
    try:
        wait_for(server.ready, 30, "the API to be ready")
        yield server
    finally:
        server.stop()


def _rollouts(url: str) -> list[Rollout]:
    with reading(url) as session:
        return list(session.scalars(select(Rollout).order_by(Rollout.id)))


def test_simultaneous_releases_of_one_service_leave_one_live_rollout_the_newest(
    api: Api, cluster: Cluster, simulator: SimulatedFleet
) -> None:
    token = api.token("--scope", "pipeline", "--service", "checkout")
    # An older rollout is already live: its supersede must not race the new ones either.
    first = httpx.post(
        api.url + "/v1/releases",
        json={"service": "checkout", "version": "2.0.0", "digest": DIGEST},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert first.status_code == 201, first.text

    start = Barrier(SUBMISSIONS)

    def submit(n: int) -> httpx.Response:
        with httpx.Client(base_url=api.url, timeout=60) as client:
            start.wait()  # all at once, each on a connection of its own
            return client.post(
                "/v1/releases",
                json={"service": "checkout", "version": f"3.0.{n}", "digest": DIGEST},
                headers={"Authorization": f"Bearer {token}"},
            )

    with ThreadPoolExecutor(SUBMISSIONS) as pool:
        answers = list(pool.map(submit, range(SUBMISSIONS)))
    assert [a.status_code for a in answers] == [201] * SUBMISSIONS, [a.text for a in answers]
    accepted = {a.json()["rollout_id"]: a.json()["version"] for a in answers}
    newest = max(accepted)

    def settled() -> bool:
        return all(RolloutState(r.state).final for r in _rollouts(cluster.database_url))

    wait_for(settled, 120, "every rollout to reach a final state")
    rollouts = _rollouts(cluster.database_url)
    not_superseded = [r for r in rollouts if r.state != RolloutState.SUPERSEDED]
    assert [(r.id, r.state) for r in not_superseded] == [(newest, RolloutState.SUCCEEDED)], [
        (r.id, r.version, r.state, r.reason) for r in rollouts
    ]

    with reading(cluster.database_url) as session:
        recorded = {
            (i.environment, i.service): i.version
            for i in session.scalars(select(Installation).where(Installation.service == "checkout"))
        }
    running = {
        place: version
        for place, version in simulator.installed_versions().items()
        if place[1] == "checkout"
    }
    assert running == recorded
    assert set(running.values()) == {accepted[newest]}
