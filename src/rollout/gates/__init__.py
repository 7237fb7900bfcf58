"""How a gate measures: each gate type takes one measurement of one upgrade's environment."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import httpx

from rollout.domain.gates import GatePolicy, Measurement
from rollout.drivers import Driver
from rollout.plan import GateSpec, HttpGateSpec, PrometheusGateSpec, WebhookGateSpec


@dataclass(frozen=True)
class GateContext:
    """What a gate may know about the upgrade it judges: operational data only."""

    service: str
    version: str
    environment: str
    stage: str
    driver: Driver
    # Where HTTP probes go: the simulated fleet answers its own; None is the real network.
    probes: httpx.BaseTransport | None = None


def policy_of(spec: GateSpec) -> GatePolicy:
    """The gate's limits, from its snapshot in the rollout's plan."""
    return GatePolicy(
        name=spec.name,
        initial_delay=spec.initial_delay,
        interval=spec.interval,
        count=spec.count,
        failure_limit=spec.failure_limit,
        inconclusive_limit=spec.inconclusive_limit,
        consecutive_error_limit=spec.consecutive_error_limit,
        consecutive_successes=spec.consecutive_successes,
        dry_run=spec.dry_run,
    )


Measurer = Callable[[GateSpec, GateContext, datetime], Measurement]


def real_measurers() -> dict[str, Measurer]:
    """How a gate of each type measures."""
    from rollout.gates.http import measure_http
    from rollout.gates.prometheus import measure_prometheus
    from rollout.gates.soak import measure_soak
    from rollout.gates.webhook import measure_webhook

    def http(spec: GateSpec, context: GateContext, now: datetime) -> Measurement:
        assert isinstance(spec, HttpGateSpec)
        return measure_http(spec, context, now)

    def soak(spec: GateSpec, context: GateContext, now: datetime) -> Measurement:
        return measure_soak(context, now)

    def prometheus(spec: GateSpec, context: GateContext, now: datetime) -> Measurement:
        assert isinstance(spec, PrometheusGateSpec)
        return measure_prometheus(spec, context, now)

    def webhook(spec: GateSpec, context: GateContext, now: datetime) -> Measurement:
        assert isinstance(spec, WebhookGateSpec)
        return measure_webhook(spec, context, now)

    return {"http": http, "soak": soak, "prometheus": prometheus, "webhook": webhook}
