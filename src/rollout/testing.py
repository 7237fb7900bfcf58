"""Stubs beside the real backends, for fast engine tests in one process: an in-memory fleet
behind the driver port, a scripted gate and a recording channel.

They stand in for the real thing the way dramatiq's StubBroker and httpx's MockTransport
do: the engine runs unchanged, only the I/O at its edge is replaced. Tests that claim the
real thing (workers, Redis, PostgreSQL, a real receiver) never use them.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from rollout.domain.gates import Measurement, Outcome
from rollout.drivers import DeployPhase, DeployRequest, DeployStatus, Health
from rollout.engine.backends import Backends
from rollout.gates import GateContext
from rollout.paging.channels import Action, PageMessage, RetryableDeliveryError
from rollout.plan import GateSpec
from rollout.plan.channels import CHANNEL_TYPES

__all__ = ["DeployScript", "InMemoryDriver", "RecordingChannel", "ScriptedGate", "stub_backends"]

DRIVER_TYPES = ("simulated", "command", "http")
GATE_TYPES = ("http", "soak", "prometheus", "webhook")


def stub_backends(
    driver: InMemoryDriver, gate: ScriptedGate, channel: RecordingChannel
) -> Backends:
    """Backends whose every driver, gate and channel type is the stub given: a plan made
    from any fleet config runs against them unchanged."""
    return Backends(
        drivers=dict.fromkeys(DRIVER_TYPES, lambda _spec: driver),
        gates=dict.fromkeys(GATE_TYPES, gate),
        channels=dict.fromkeys(CHANNEL_TYPES, lambda _spec: channel),
    )


@dataclass(frozen=True)
class DeployScript:
    """How a deploy of one version goes: asked `polls` times before it ends, then `phase`."""

    polls: int = 0
    phase: DeployPhase = DeployPhase.SUCCEEDED
    message: str = ""


@dataclass
class _Deploy:
    request: DeployRequest
    polls: int = 0
    phase: DeployPhase = DeployPhase.RUNNING


class InMemoryDriver:
    """A fleet in a dict: deploys keyed by their idempotency key (the same key twice is one
    deploy), each scripted per (service, version), and health per (service, version)."""

    def __init__(self, installed: dict[tuple[str, str], str] | None = None) -> None:
        self.installed: dict[tuple[str, str], str] = dict(installed or {})  # (env, service)
        self.scripts: dict[tuple[str, str | None], DeployScript] = {}
        self.unhealthy: set[tuple[str, str]] = set()  # (service, version)
        self.starts: Counter[str] = Counter()  # every start asked, by key
        self.applied: Counter[str] = Counter()  # every deploy that took effect, by key
        self._deploys: dict[str, _Deploy] = {}
        self._lock = threading.Lock()

    def script(self, service: str, version: str | None, script: DeployScript) -> None:
        with self._lock:
            self.scripts[(service, version)] = script

    def start(self, request: DeployRequest) -> None:
        with self._lock:
            self.starts[request.key] += 1
            self._deploys.setdefault(request.key, _Deploy(request))

    def start_many(self, requests: Sequence[DeployRequest]) -> None:
        for request in requests:
            self.start(request)

    def status(self, key: str) -> DeployStatus:
        with self._lock:
            deploy = self._deploys.get(key)
            if deploy is None:
                return DeployStatus(DeployPhase.UNKNOWN)
            if deploy.phase is DeployPhase.RUNNING:
                self._poll(deploy)
            script = self._script_of(deploy.request)
            return DeployStatus(deploy.phase, script.message)

    def statuses(self, keys: Sequence[str]) -> dict[str, DeployStatus]:
        return {key: self.status(key) for key in keys}

    def health(self, environment: str, service: str) -> Health:
        with self._lock:
            version = self.installed.get((environment, service))
        if version is None:
            return Health.UNKNOWN
        return Health.UNHEALTHY if (service, version) in self.unhealthy else Health.HEALTHY

    def _script_of(self, request: DeployRequest) -> DeployScript:
        return self.scripts.get((request.service, request.version), DeployScript())

    def _poll(self, deploy: _Deploy) -> None:
        script = self._script_of(deploy.request)
        deploy.polls += 1
        if deploy.polls <= script.polls:
            return
        deploy.phase = script.phase
        if script.phase is DeployPhase.SUCCEEDED:
            request = deploy.request
            self.applied[request.key] += 1
            place = (request.environment, request.service)
            if request.version is None:
                self.installed.pop(place, None)
            else:
                self.installed[place] = request.version


@dataclass
class ScriptedGate:
    """A gate whose measurements are told in advance per (environment, service, version):
    each measurement takes the next outcome of its script, the last one repeating; no script
    is a success."""

    scripts: dict[tuple[str, str, str], list[Outcome]] = field(default_factory=dict)
    taken: Counter[tuple[str, str, str]] = field(default_factory=Counter)

    def __call__(self, spec: GateSpec, context: GateContext, now: datetime) -> Measurement:
        return self.measure(context.environment, context.service, context.version, now)

    def measure(self, environment: str, service: str, version: str, now: datetime) -> Measurement:
        place = (environment, service, version)
        script = self.scripts.get(place, [Outcome.SUCCESS])
        outcome = script[min(self.taken[place], len(script) - 1)]
        self.taken[place] += 1
        value = f"scripted {outcome}"
        return Measurement(now, outcome, value, "scripted == success", f"{value} ({environment})")


@dataclass
class RecordingChannel:
    """A channel that keeps what it is given; told to, it refuses the first few attempts."""

    name: str = "recording"
    timeout: float = 1.0
    refusals: int = 0
    received: list[tuple[PageMessage, Action]] = field(default_factory=list)
    attempts: int = 0

    def deliver(self, message: PageMessage, action: Action) -> None:
        self.attempts += 1
        if self.refusals > 0:
            self.refusals -= 1
            raise RetryableDeliveryError(f"{self.name}: refused, as told")
        self.received.append((message, action))
