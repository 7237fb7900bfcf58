"""The soak gate: the environment must stay healthy, as its driver reports, for a duration."""

from __future__ import annotations

from datetime import datetime

from rollout.domain.gates import Measurement, Outcome
from rollout.drivers import DriverError, Health
from rollout.gates import GateContext

CONDITION = "health == healthy"


def measure_soak(context: GateContext, now: datetime) -> Measurement:
    try:
        health = context.driver.health(context.environment, context.service)
    except DriverError as error:
        return Measurement(now, Outcome.ERROR, None, CONDITION, f"health not known: {error}")
    value = f"health {health}"
    if health is Health.HEALTHY:
        return Measurement(now, Outcome.SUCCESS, value, CONDITION, value)
    if health is Health.UNHEALTHY:
        message = f"{value}, wanted {CONDITION} (soak in {context.environment})"
        return Measurement(now, Outcome.FAILURE, value, CONDITION, message)
    return Measurement(now, Outcome.ERROR, value, CONDITION, f"{value} (could not be told)")
