"""How a gate measures: each gate type takes one measurement of one upgrade's environment."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from rollout.domain.gates import GatePolicy, Measurement
from rollout.drivers import Driver
from rollout.plan import GateSpec, HttpGateSpec, PrometheusGateSpec, SoakGateSpec


@dataclass(frozen=True)
class GateContext:
    """What a gate may know about the upgrade it judges: operational data only."""

    service: str
    version: str
    environment: str
    stage: str
    driver: Driver


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


def measure(spec: GateSpec, context: GateContext, now: datetime) -> Measurement:
    if isinstance(spec, HttpGateSpec):
        from rollout.gates.http import measure_http

        return measure_http(spec, context, now)
    if isinstance(spec, SoakGateSpec):
        from rollout.gates.soak import measure_soak

        return measure_soak(context, now)
    if isinstance(spec, PrometheusGateSpec):
        from rollout.gates.prometheus import measure_prometheus

        return measure_prometheus(spec, context, now)
    from rollout.gates.webhook import measure_webhook

    return measure_webhook(spec, context, now)
