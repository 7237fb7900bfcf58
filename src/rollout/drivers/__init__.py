"""How an environment is upgraded: the driver port, and the registry of its backends."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, runtime_checkable

import httpx

from rollout.plan.driver import CommandDriverSpec, DriverSpec, HttpDriverSpec


class DeployPhase(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    # The driver has no deploy under this key: it was never asked (a worker died between
    # taking the upgrade and asking). Only a driver whose record every worker sees may say so.
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class DeployRequest:
    key: str  # the idempotency key: the same key twice is one deploy
    environment: str
    service: str
    version: str | None  # None removes the service (rolling back a first install)


@dataclass(frozen=True)
class DeployStatus:
    phase: DeployPhase
    message: str = ""


class Health(StrEnum):
    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"
    UNKNOWN = "unknown"  # could not be told: an error, not a failure


class Driver(Protocol):
    """Starts a deploy and is polled for its outcome; a deploy in progress holds no worker."""

    def start(self, request: DeployRequest) -> None: ...

    def status(self, key: str) -> DeployStatus: ...

    def health(self, environment: str, service: str) -> Health: ...


@runtime_checkable
class ProbesThrough(Protocol):
    """A driver whose environments answer their gates' HTTP probes themselves (the
    simulated fleet): every other driver's probes go over the real network."""

    def transport(self) -> httpx.BaseTransport | None:
        """Where this environment's gates send HTTP probes (None: the real network)."""
        ...


def probes_of(driver: Driver) -> httpx.BaseTransport | None:
    """Where the gates of an environment `driver` reaches send their HTTP probes: None is
    the real network, as for every driver but the simulated fleet."""
    return driver.transport() if isinstance(driver, ProbesThrough) else None


@runtime_checkable
class BatchDriver(Protocol):
    """A driver that also starts and polls many deploys at once: a batch of steps asks it
    once instead of once per upgrade. Optional: a driver without it is asked one upgrade at
    a time (`start`, `status`), its errors and timeouts each upgrade's own."""

    def start_many(self, requests: Sequence[DeployRequest]) -> None: ...

    def statuses(self, keys: Sequence[str]) -> dict[str, DeployStatus]: ...


@runtime_checkable
class BatchProbes(Protocol):
    """A driver whose environments' health endpoints can be read for many at once: a batch
    of steps measures its gates against one reading instead of one per measurement."""

    def probing(self, places: Sequence[tuple[str, str]]) -> httpx.BaseTransport:
        """A transport answering probes of these (environment, service) places."""
        ...


class DriverError(RuntimeError):
    """The driver could not be asked (unreachable, refused): the step is retried later."""


def real_drivers(simulator_url: str, database_url: str) -> dict[str, DriverFactory]:
    """The driver of each type: `simulator_url` locates the simulated fleet's database,
    `database_url` the engine's (where pull-mode deploys are recorded)."""

    def simulated(_: DriverSpec) -> Driver:
        from rollout.drivers.simulated import simulated_driver

        return simulated_driver(simulator_url)

    def command(spec: DriverSpec) -> Driver:
        from pathlib import Path

        from rollout.drivers.command import CommandDriver, CommandSpec
        from rollout.settings import get_settings

        assert isinstance(spec, CommandDriverSpec)
        configured = spec.state_dir
        state_dir = Path(configured) if configured else get_settings().data_dir / "command-driver"
        return CommandDriver(CommandSpec.from_snapshot(spec), state_dir)

    def http(spec: DriverSpec) -> Driver:
        assert isinstance(spec, HttpDriverSpec)
        if spec.mode == "push":
            from rollout.drivers.http import HttpDriver, HttpSpec

            return HttpDriver(HttpSpec.from_snapshot(spec))
        from rollout.drivers.pull import PullDriver

        return PullDriver(database_url)

    return {"simulated": simulated, "command": command, "http": http}


DriverFactory = Callable[[DriverSpec], Driver]
