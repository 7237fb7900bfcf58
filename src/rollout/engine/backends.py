"""The backends the engine does its I/O through, each chosen by type from a registry the
Runtime holds: drivers, gate measurers and channels; the real ones, or rollout.testing's
stubs in their place."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

from rollout.domain.gates import Measurement
from rollout.drivers import Driver, DriverFactory, real_drivers
from rollout.gates import GateContext, Measurer, real_measurers
from rollout.paging.channels import Channel, channel_from_config
from rollout.plan import GateSpec
from rollout.plan.channels import CHANNEL_TYPES, ChannelSpec
from rollout.plan.driver import DriverSpec

ChannelFactory = Callable[[ChannelSpec], Channel]
T = TypeVar("T")


class NoBackend(LookupError):
    """This process has no backend of that type: it was built to write rows, not to act on
    the world (the API and the CLI submit and steer; workers deploy, measure and page)."""


@dataclass(frozen=True)
class Backends:
    drivers: Mapping[str, DriverFactory] = field(default_factory=dict)
    gates: Mapping[str, Measurer] = field(default_factory=dict)
    channels: Mapping[str, ChannelFactory] = field(default_factory=dict)

    @classmethod
    def real(cls, simulator_url: str, database_url: str) -> Backends:
        """The real drivers, gates and channels; `simulator_url`: where the simulated fleet
        keeps its state, `database_url`: the engine's (pull-mode deploys are recorded there)."""
        channels = dict.fromkeys(CHANNEL_TYPES, channel_from_config)
        return cls(real_drivers(simulator_url, database_url), real_measurers(), channels)

    def driver(self, spec: DriverSpec) -> Driver:
        return _pick(self.drivers, spec.type, "driver")(spec)

    def measure(self, spec: GateSpec, context: GateContext, now: datetime) -> Measurement:
        return _pick(self.gates, spec.type, "gate")(spec, context, now)

    def channel(self, spec: ChannelSpec) -> Channel:
        return _pick(self.channels, spec.type, "channel")(spec)


def _pick(registry: Mapping[str, T], kind: str, what: str) -> T:
    try:
        return registry[kind]
    except KeyError:
        raise NoBackend(f"no {what} of type {kind!r} in this process") from None
