"""The Prometheus gate: an instant PromQL query whose one number is held against conditions."""

from __future__ import annotations

import math
from datetime import datetime

import httpx

from rollout.config.base import fill_placeholders
from rollout.domain.conditions import Comparison, Condition, MissingValue, parse_condition
from rollout.domain.conditions import render_value as _render_value
from rollout.domain.gates import Measurement, Outcome
from rollout.gates import GateContext
from rollout.plan import PrometheusGateSpec

_POLICY = {
    "error": Outcome.ERROR,
    "fail": Outcome.FAILURE,
    "pass": Outcome.SUCCESS,
    "inconclusive": Outcome.INCONCLUSIVE,
}
_SHOWN_QUERY = 200  # a query is quoted in every message; a long one is cut, not dumped
_SHOWN_ERROR = 300

# PromQL string literals (double, single quoted) take Go-style escapes.
_PROMQL_ESCAPES = {"\\": "\\\\", '"': '\\"', "'": "\\'", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def promql_quote(value: str) -> str:
    """`value` escaped as the content of a PromQL string literal (either quote)."""
    return "".join(_PROMQL_ESCAPES.get(char, char) for char in value)


def render_query(template: str, context: GateContext) -> str:
    values = {
        "service": context.service,
        "version": context.version,
        "environment": context.environment,
        "stage": context.stage,
    }
    # Names and versions are validated already; escaping anyway keeps a quote in some future
    # value from ending the literal and rewriting the query.
    return fill_placeholders(template, values, promql_quote)


class _Unmeasured(Exception):
    """The query gave no usable number; `outcome` says how the gate's policy counts that."""

    def __init__(self, outcome: Outcome, message: str) -> None:
        super().__init__(message)
        self.outcome = outcome
        self.message = message


def measure_prometheus(
    spec: PrometheusGateSpec, context: GateContext, now: datetime
) -> Measurement:
    query = render_query(spec.query, context)
    where = f"prometheus: {_cut(query, _SHOWN_QUERY)}"
    name = spec.value_name or "value"
    success = _condition(spec.success_condition, name)
    failure = _condition(spec.failure_condition, name)
    shown = " / ".join(c.text for c in (success, failure) if c is not None)
    try:
        number = _query(spec, query)
    except _Unmeasured as unmeasured:
        return Measurement(now, unmeasured.outcome, None, shown, f"{unmeasured.message} ({where})")

    value = f"{name} {_render(number)}"
    if math.isnan(number):
        outcome = _POLICY[spec.nan]
        return Measurement(now, outcome, value, shown, f"{value}: the query gave NaN ({where})")
    document = {name: number}  # the conditions were renamed to `name` as well
    try:
        failed = failure is not None and failure.evaluate(document)
        succeeded = success is not None and success.evaluate(document)
    except MissingValue as missing:  # config validation rules this out; be safe anyway
        return Measurement(now, Outcome.ERROR, value, shown, f"{missing} ({where})")
    if failed:
        assert failure is not None
        message = f"{value}, matches failure condition {failure.text} ({where})"
        return Measurement(now, Outcome.FAILURE, value, failure.text, message)
    if success is None:
        return Measurement(now, Outcome.SUCCESS, value, shown, f"{value} ({where})")
    if succeeded:
        return Measurement(now, Outcome.SUCCESS, value, success.text, f"{value} ({where})")
    if failure is not None:
        # As the HTTP gate: with both conditions given, matching neither is inconclusive.
        message = f"{value} matches neither {success.text} nor {failure.text} ({where})"
        return Measurement(now, Outcome.INCONCLUSIVE, value, shown, message)
    message = f"{value}, wanted {success.text} ({where})"
    return Measurement(now, Outcome.FAILURE, value, success.text, message)


def _query(spec: PrometheusGateSpec, query: str) -> float:
    """The query's one number; raises _Unmeasured for everything else."""
    endpoint = spec.url.rstrip("/") + "/api/v1/query"
    timeout = spec.timeout_s
    # Prometheus is the monitoring system's, not the environment's: always the real network.
    try:
        with httpx.Client(timeout=timeout) as http:
            response = http.get(endpoint, params={"query": query, "timeout": f"{timeout:g}s"})
    except httpx.HTTPError as error:
        detail = str(error) or type(error).__name__
        raise _Unmeasured(Outcome.ERROR, f"prometheus not reached: {detail}") from None
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        text = _cut(response.text.strip(), _SHOWN_ERROR) or "empty body"
        raise _Unmeasured(
            Outcome.ERROR, f"prometheus answered {response.status_code} without JSON: {text}"
        )
    if response.status_code != 200 or body.get("status") != "success":
        kind = body.get("errorType") or "error"
        text = _cut(str(body.get("error") or "no error text"), _SHOWN_ERROR)
        raise _Unmeasured(
            Outcome.ERROR, f"prometheus answered {response.status_code}: {kind}: {text}"
        )
    data = body.get("data")
    kind = data.get("resultType") if isinstance(data, dict) else None
    result = data.get("result") if isinstance(data, dict) else None
    if kind == "scalar" and isinstance(result, list) and len(result) == 2:
        return _number(result[1])
    if kind == "vector" and isinstance(result, list):
        if not result:
            outcome = _POLICY[spec.no_data]
            raise _Unmeasured(outcome, "no data: the query matched no series")
        if len(result) > 1:
            raise _Unmeasured(
                Outcome.ERROR,
                f"the query gave {len(result)} series, wanted exactly one "
                "(aggregate them, e.g. with sum or max)",
            )
        sample = result[0].get("value") if isinstance(result[0], dict) else None
        if isinstance(sample, list) and len(sample) == 2:
            return _number(sample[1])
    if kind in ("matrix", "string"):
        raise _Unmeasured(
            Outcome.ERROR, f"the query gave a {kind}, wanted one number (an instant vector)"
        )
    raise _Unmeasured(Outcome.ERROR, f"prometheus answered an unexpected result: {kind!r}")


def _number(text: object) -> float:
    # Prometheus sends sample values as strings: "0.071", "NaN", "+Inf".
    try:
        return float(str(text))
    except ValueError:
        raise _Unmeasured(
            Outcome.ERROR, f"prometheus sent {_cut(str(text), 60)!r}, not a number"
        ) from None


def _render(number: float) -> str:
    # As Prometheus spells them, so a message matches what its UI shows.
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "+Inf" if number > 0 else "-Inf"
    return _render_value(number)


def _condition(text: str | None, name: str) -> Condition | None:
    if text is None:
        return None
    parsed = parse_condition(text)
    # The config may write `value` or the name; both are shown, and evaluated, as the name.
    renamed = tuple(Comparison(name, c.op, c.literal) for c in parsed.comparisons)
    return Condition(" and ".join(c.text for c in renamed), renamed)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
