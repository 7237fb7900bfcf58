"""A step batch's driver answers what was asked together once, then asks the driver."""

from __future__ import annotations

from datetime import datetime

import httpx

from rollout.drivers import DeployPhase, DeployRequest, DeployStatus, Health
from rollout.engine.steps import _Answered


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
    answered = _Answered(
        driver, set(), {"k": DeployStatus(DeployPhase.SUCCEEDED, "done")}, datetime(2026, 1, 1)
    )

    assert answered.status("k").phase is DeployPhase.SUCCEEDED
    assert answered.status("k").phase is DeployPhase.RUNNING
    assert answered.status("other").phase is DeployPhase.RUNNING
    assert driver.asked == [("status", "k"), ("status", "other")]


def test_a_deploy_started_with_the_batch_is_not_started_again_by_its_step() -> None:
    driver = Recording()
    answered = _Answered(driver, {"k"}, {}, datetime(2026, 1, 1))
    request = DeployRequest("k", "prod-1", "web", "2.0.0")

    answered.start(request)  # the step's own start: the batch did it
    answered.start(request)  # asked again later (the deploy went missing): passed on
    answered.start(DeployRequest("j", "prod-1", "web", "2.0.0"))

    assert driver.asked == [("start", "k"), ("start", "j")]
