"""Asking a driver for a batch of upgrades at once: one call to start and one to poll
the lot, and one reading of their health, handed to each upgrade's step."""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import datetime

import httpx

from rollout.domain.states import UpgradeState
from rollout.drivers import (
    BatchDriver,
    BatchProbes,
    DeployRequest,
    DeployStatus,
    Driver,
    Health,
    probes_of,
)
from rollout.engine.runtime import Runtime
from rollout.engine.upgrading import Claimed, deploy_key
from rollout.plan.driver import DriverSpec
from rollout.store.models import Upgrade

log = logging.getLogger(__name__)


class Answered:
    """A driver whose starts and statuses for this batch were asked together: it answers
    those from what it was told, once each, and passes everything else on."""

    def __init__(
        self,
        driver: Driver,
        started: set[str],
        answers: dict[str, DeployStatus],
        asked_at: datetime,
        probes: httpx.BaseTransport | None = None,
    ) -> None:
        self.driver, self.started, self.answers = driver, started, answers
        self.asked_at = asked_at  # read before asking, as a step reads its clock
        self.probes = probes

    def start(self, request: DeployRequest) -> None:
        if request.key in self.started:
            self.started.discard(request.key)
            return
        self.driver.start(request)

    def status(self, key: str) -> DeployStatus:
        answer = self.answers.pop(key, None)
        return answer if answer is not None else self.driver.status(key)

    def health(self, environment: str, service: str) -> Health:
        return self.driver.health(environment, service)

    def transport(self) -> httpx.BaseTransport | None:
        return self.probes if self.probes is not None else probes_of(self.driver)


def ask_together(runtime: Runtime, claimed: list[Claimed]) -> dict[int, Driver]:
    """Start and poll the batch's deploys with one call per driver that can take many (the
    simulated fleet: one transaction instead of one per upgrade); return, by upgrade id, the
    driver its step asks. A driver that cannot, or a call that fails, leaves each upgrade to
    ask on its own, with its own error handling."""
    groups: dict[DriverSpec, list[Claimed]] = defaultdict(list)
    for item in claimed:
        groups[item.upgrade.driver].append(item)  # frozen specs: equal ones hash alike
    drivers: dict[int, Driver] = {}
    for group in groups.values():
        spec = group[0].upgrade.driver
        driver = runtime.backends.driver(spec)
        if len(group) < 2 or not isinstance(driver, BatchDriver):
            continue
        batch: Driver = driver  # narrowed to BatchDriver above; a Driver still
        starting = [item for item in group if item.deploy]
        started: set[str] = set()
        asked_at = runtime.now()
        try:
            driver.start_many([deploy_request(item.upgrade) for item in starting])
            started = {deploy_key(item.upgrade) for item in starting}
        except Exception as error:
            log.warning("starting %d deploys together failed: %s", len(starting), error)
        keys = [key for item in group if (key := polled(item, started)) is not None]
        answers: dict[str, DeployStatus] = {}
        try:
            answers = driver.statuses(keys) if keys else {}
        except Exception as error:
            log.warning("polling %d deploys together failed: %s", len(keys), error)
        # Probes are read once the batch's deploys were started and polled together; if
        # either call failed, each step asks on its own and may settle its deploy later
        # than a reading taken now: then each probe reads the fleet on its own too.
        together = len(started) == len(starting) and len(answers) == len(keys)
        probes = _probes(batch, group) if together else None
        answered = Answered(batch, started, answers, asked_at, probes)
        drivers.update((item.upgrade.id, answered) for item in group)
    return drivers


def _probes(driver: Driver, group: list[Claimed]) -> httpx.BaseTransport | None:
    """One reading of the health of the batch's places its gates may probe in this step
    (read after the deploys were polled, so a deploy that just finished is seen)."""
    places = [
        (item.upgrade.environment, item.upgrade.service)
        for item in group
        if item.upgrade.state in (UpgradeState.DEPLOYING, UpgradeState.VERIFYING)
    ]
    if not places or not isinstance(driver, BatchProbes):
        return None
    try:
        return driver.probing(places)
    except Exception as error:
        log.warning("probing %d environments together failed: %s", len(places), error)
        return None


def deploy_request(upgrade: Upgrade) -> DeployRequest:
    return DeployRequest(
        deploy_key(upgrade), upgrade.environment, upgrade.service, upgrade.to_version
    )


def polled(item: Claimed, started: set[str]) -> str | None:
    """The deploy key this step will ask the status of, if any."""
    upgrade = item.upgrade
    if upgrade.state == UpgradeState.DEPLOYING and (
        not item.deploy or deploy_key(upgrade) in started
    ):
        return deploy_key(upgrade)
    if upgrade.state == UpgradeState.ROLLING_BACK and upgrade.rollback_started_at is not None:
        return deploy_key(upgrade, rollback=True)
    return None
