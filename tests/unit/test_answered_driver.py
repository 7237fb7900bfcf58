"""A step batch's driver answers what was asked together once, then asks the driver; its
probes are read together only when its deploys were asked together."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import httpx
import pytest

from rollout.domain.states import UpgradeState
from rollout.drivers import DeployPhase, DeployRequest, DeployStatus, Health
from rollout.engine.backends import Backends
from rollout.engine.batch_driver import Answered, ask_together
from rollout.engine.runtime import Runtime
from rollout.engine.upgrading import Claimed
from rollout.store.models import Rollout, Upgrade
from tests.plans import SIMULATED


class Recording:
    """A driver that records what it was asked and says every deploy is running."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, str]] = []

    def start(self, request: DeployRequest) -> None:
        self.asked.append(("start", request.key))

    def status(self, key: str) -> DeployStatus:
        self.asked.append(("status", key))
        return DeployStatus(DeployPhase.RUNNING)

    def health(self, environment: str, service: str) -> Health:
        return Health.HEALTHY

    def transport(self) -> httpx.BaseTransport | None:
        return None


def test_a_batch_answer_is_used_once_then_the_driver_is_asked() -> None:
    driver = Recording()
    answered = Answered(
        driver, set(), {"k": DeployStatus(DeployPhase.SUCCEEDED, "done")}, datetime(2026, 1, 1)
    )

    assert answered.status("k").phase is DeployPhase.SUCCEEDED
    assert answered.status("k").phase is DeployPhase.RUNNING
    assert answered.status("other").phase is DeployPhase.RUNNING
    assert driver.asked == [("status", "k"), ("status", "other")]


def test_a_deploy_started_with_the_batch_is_not_started_again_by_its_step() -> None:
    driver = Recording()
    answered = Answered(driver, {"k"}, {}, datetime(2026, 1, 1))
    request = DeployRequest("k", "prod-1", "web", "2.0.0")

    answered.start(request)  # the step's own start: the batch did it
    answered.start(request)  # asked again later (the deploy went missing): passed on
    answered.start(DeployRequest("j", "prod-1", "web", "2.0.0"))

    assert driver.asked == [("start", "k"), ("start", "j")]


class Batching(Recording):
    """A driver that takes batches and reads probes together; `broken` calls raise."""

    def __init__(self, broken: str | None = None) -> None:
        super().__init__()
        self.broken = broken
        self.probed: list[tuple[str, str]] = []
        self.probe_transport = httpx.MockTransport(lambda request: httpx.Response(200))

    def start_many(self, requests: Sequence[DeployRequest]) -> None:
        if self.broken == "start_many":
            raise RuntimeError("start_many broke")

    def statuses(self, keys: Sequence[str]) -> dict[str, DeployStatus]:
        if self.broken == "statuses":
            raise RuntimeError("statuses broke")
        return {key: DeployStatus(DeployPhase.SUCCEEDED) for key in keys}

    def probing(self, places: Sequence[tuple[str, str]]) -> httpx.BaseTransport:
        self.probed += places
        return self.probe_transport


def _claimed(upgrade_id: int, state: UpgradeState, deploy: bool) -> Claimed:
    upgrade = Upgrade(
        id=upgrade_id,
        environment=f"prod-{upgrade_id}",
        service="web",
        to_version="2.0.0",
        state=state,
        driver=SIMULATED,  # the runtime's only driver: the batching one
    )
    return Claimed(upgrade, Rollout(id=1), claim=1, taken=[], deploy=deploy)


@pytest.mark.parametrize("broken", [None, "start_many", "statuses"])
def test_a_batch_reads_its_probes_together_only_when_its_deploys_were_asked_together(
    monkeypatch: pytest.MonkeyPatch, broken: str | None
) -> None:
    driver = Batching(broken)
    batch = [
        _claimed(1, UpgradeState.DEPLOYING, deploy=True),
        _claimed(2, UpgradeState.DEPLOYING, deploy=False),
        _claimed(3, UpgradeState.VERIFYING, deploy=False),
    ]

    runtime = Runtime("sqlite://", Backends(drivers={"simulated": lambda spec: driver}))
    asked = ask_together(runtime, batch)

    transports = {asked[item.upgrade.id].transport() for item in batch}
    if broken is None:
        # Read after the deploys settled: what the batch's gates probe.
        assert transports == {driver.probe_transport}
        assert driver.probed == [("prod-1", "web"), ("prod-2", "web"), ("prod-3", "web")]
    else:
        # A step may settle its own deploy later than any reading now: each probes alone.
        assert transports == {None}
        assert driver.probed == []
