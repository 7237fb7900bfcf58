"""The HTTP gate: a status code, and conditions on a field of the JSON body."""

from __future__ import annotations

import string
from datetime import datetime

import httpx

from rollout.domain.conditions import Condition, MissingValue, parse_condition
from rollout.domain.gates import Measurement, Outcome
from rollout.gates import GateContext
from rollout.plan import HttpGateSpec

_NO_DATA = {
    "error": Outcome.ERROR,
    "fail": Outcome.FAILURE,
    "pass": Outcome.SUCCESS,
    "inconclusive": Outcome.INCONCLUSIVE,
}


def render_url(template: str, context: GateContext) -> str:
    fields = {
        "service": context.service,
        "version": context.version,
        "environment": context.environment,
        "stage": context.stage,
    }
    return string.Formatter().vformat(template, (), fields)


def measure_http(spec: HttpGateSpec, context: GateContext, now: datetime) -> Measurement:
    url = render_url(spec.url, context)
    where = f"http {spec.method} {url}"
    expected = list(spec.expect_status)  # shown as the config writes it: [200]
    status_condition = f"status in {expected}"
    try:
        with httpx.Client(transport=context.probes, timeout=spec.timeout_s) as http:
            response = http.request(spec.method, url)
    except httpx.HTTPError as error:
        detail = str(error) or type(error).__name__
        return Measurement(now, Outcome.ERROR, None, status_condition, f"{detail} ({where})")

    if response.status_code not in expected:
        value = f"status {response.status_code}"
        message = f"{value}, wanted {status_condition} ({where})"
        return Measurement(now, Outcome.FAILURE, value, status_condition, message)

    success = _condition(spec.success_condition)
    failure = _condition(spec.failure_condition)
    if success is None and failure is None:
        value = f"status {response.status_code}"
        return Measurement(now, Outcome.SUCCESS, value, status_condition, f"{value} ({where})")
    shown = " / ".join(c.text for c in (success, failure) if c is not None)
    try:
        document = response.json()
    except ValueError:
        return _no_data(spec, now, shown, f"body is not JSON ({where})")
    try:
        failed = failure is not None and failure.evaluate(document)
        succeeded = success is not None and success.evaluate(document)
    except MissingValue as missing:
        return _no_data(spec, now, shown, f"{missing} ({where})")

    decider = failure if failure is not None else success
    assert decider is not None
    value = decider.observed(document)
    if failed:
        assert failure is not None
        message = f"{value}, matches failure condition {failure.text} ({where})"
        return Measurement(now, Outcome.FAILURE, value, failure.text, message)
    if success is None:
        return Measurement(now, Outcome.SUCCESS, value, shown, f"{value} ({where})")
    value = success.observed(document)
    if succeeded:
        return Measurement(now, Outcome.SUCCESS, value, success.text, f"{value} ({where})")
    if failure is not None:
        # Argo's rule: with both conditions given, matching neither is inconclusive.
        message = f"{value} matches neither {success.text} nor {failure.text} ({where})"
        return Measurement(now, Outcome.INCONCLUSIVE, value, shown, message)
    message = f"{value}, wanted {success.text} ({where})"
    return Measurement(now, Outcome.FAILURE, value, success.text, message)


def _condition(text: str | None) -> Condition | None:
    return None if text is None else parse_condition(text)


def _no_data(spec: HttpGateSpec, now: datetime, condition: str, why: str) -> Measurement:
    outcome = _NO_DATA[spec.no_data]
    return Measurement(now, outcome, None, condition, f"no data: {why}")
