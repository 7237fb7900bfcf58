"""What the engine reports at its edges: each call here records the span, the metrics and
the log line of one event (a step, a gate measurement, an upgrade ending, a page delivery),
so the engine's own code carries one line per event and no telemetry logic."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime

from opentelemetry.trace import Status, StatusCode
from opentelemetry.util.types import AttributeValue

from rollout.domain import gates as verdicts
from rollout.domain.states import UpgradeState
from rollout.observability import metrics, tracing
from rollout.observability.logs import about
from rollout.store.models import Delivery, Page, Rollout, Upgrade

log = logging.getLogger("rollout.events")

# The span of a step is named for what the step does in that state.
_STEP = {
    UpgradeState.READY: "step deploy",
    UpgradeState.DEPLOYING: "step deploy",
    UpgradeState.VERIFYING: "step verify",
    UpgradeState.ROLLING_BACK: "step rollback",
}


def _facts(upgrade: Upgrade) -> dict[str, AttributeValue | None]:
    return {
        "rollout.id": upgrade.rollout_id,
        "rollout.upgrade.id": upgrade.id,
        "rollout.service": upgrade.service,
        "rollout.version": upgrade.to_version,
        "rollout.environment": upgrade.environment,
        "rollout.stage": upgrade.stage,
    }


@contextmanager
def submitting(service: str, version: str) -> Iterator[Callable[[int], None]]:
    """Around a submission: its span is the one the rollout's trace hangs from. Call the
    yielded function with the rollout's id once known."""
    with tracing.span(
        "rollout.submit", {"rollout.service": service, "rollout.version": version}
    ) as opened:

        def submitted(rollout_id: int) -> None:
            if opened is not None:
                opened.set_attribute("rollout.id", rollout_id)

        yield submitted


@contextmanager
def stepping(upgrade: Upgrade, rollout: Rollout) -> Iterator[None]:
    """Around one step of an upgrade: a span in the rollout's trace, ids on every log line."""
    state = UpgradeState(upgrade.state)
    name = _STEP.get(state, f"step {state.value}")
    with (
        about(rollout_id=upgrade.rollout_id, upgrade_id=upgrade.id),
        tracing.upgrade_span(
            name, rollout.traceparent, upgrade.id, _facts(upgrade) if tracing.enabled() else {}
        ),
    ):
        yield


@contextmanager
def measuring(gate: str, upgrade: Upgrade) -> Iterator[Callable[[verdicts.Measurement], None]]:
    """Around one gate measurement; call the yielded function with what it measured."""
    with tracing.span("gate.measure", {**_facts(upgrade), "rollout.gate": gate}) as opened:

        def measured(taken: verdicts.Measurement) -> None:
            outcome = verdicts.Outcome(taken.outcome).value
            value = _number(taken.value)
            metrics.GATE_MEASUREMENTS.labels(gate, upgrade.stage, outcome).inc()
            if value is not None:
                metrics.GATE_VALUE.labels(gate, upgrade.service, upgrade.stage).set(value)
            if opened is not None:
                opened.set_attribute("rollout.gate.outcome", outcome)
                if value is not None:
                    opened.set_attribute("rollout.gate.value", value)
                if outcome == verdicts.Outcome.FAILURE.value:
                    opened.set_status(Status(StatusCode.ERROR, "gate failed"))
            log.info(
                "gate %s on %s: %s%s",
                gate,
                upgrade.environment,
                outcome,
                "" if value is None else f" ({value})",
            )

        yield measured


def _number(value: str | None) -> float | None:
    """A measured value ("error_rate 0.2", "status 503", "0.2") as a number; anything else
    a gate returned stays out of metrics and spans."""
    if not value or not value.split():
        return None
    try:
        return float(value.split()[-1])
    except ValueError:
        return None


def moved(
    traceparent: str | None,
    upgrade: Upgrade,
    before: UpgradeState,
    after: UpgradeState,
    now: datetime,
    *,
    recalled: bool = False,
) -> None:
    """An upgrade's new state was committed: count it, and write the spans of an upgrade
    (and a rollback) that ended."""
    if after is before:
        return
    log.info("upgrade %s in %s: %s -> %s", upgrade.id, upgrade.environment, before, after)
    if after is UpgradeState.ROLLING_BACK:
        metrics.ROLLBACKS.labels(upgrade.stage, "recall" if recalled else "failure").inc()
    if not after.final:
        return
    metrics.UPGRADES.labels(after.value, upgrade.stage).inc()
    facts = {**_facts(upgrade), "rollout.upgrade.result": after.value}
    failed = upgrade.reason if after is not UpgradeState.SUCCEEDED else None
    if upgrade.rollback_started_at is not None:
        tracing.end_upgrade(
            "rollback",
            traceparent,
            upgrade.id,
            upgrade.rollback_started_at,
            now,
            facts,
            failed=upgrade.reason if after is UpgradeState.ROLLBACK_FAILED else None,
        )
    tracing.end_upgrade(
        "upgrade",
        traceparent,
        upgrade.id,
        upgrade.deploy_started_at or upgrade.created_at,
        now,
        facts,
        failed="rolled back" if failed is not None else None,
    )


@contextmanager
def delivering(
    traceparent: str | None, page: Page, delivery: Delivery
) -> Iterator[Callable[[str, datetime], None]]:
    """Around one page delivery; call the yielded function with its result (delivered,
    failed, retrying) and the time."""
    channel = delivery.channel.split(":", 1)[-1]
    attributes: dict[str, AttributeValue | None] = {
        "rollout.id": page.rollout_id,
        "rollout.upgrade.id": page.upgrade_id,
        "rollout.service": page.service,
        "rollout.version": page.version,
        "rollout.environment": page.environment,
        "rollout.stage": page.stage,
        "rollout.page.id": page.id,
        "rollout.page.team": page.team,
        "rollout.page.severity": page.severity,
        "rollout.page.channel": channel,
        "rollout.page.action": delivery.action,
    }
    with (
        about(
            rollout_id=page.rollout_id,
            upgrade_id=page.upgrade_id,
            page_id=page.id,
            delivery_id=delivery.id,
        ),
        tracing.upgrade_span("page.deliver", traceparent, page.upgrade_id, attributes)
        if page.upgrade_id is not None
        else tracing.span("page.deliver", attributes) as opened,
    ):

        def delivered(result: str, now: datetime) -> None:
            metrics.PAGES.labels(page.team, page.severity, channel, result).inc()
            if result == "delivered" and delivery.action == "trigger":
                metrics.FAILURE_TO_PAGE.labels(page.team, page.severity).observe(
                    metrics.seconds(now - page.created_at)
                )
            if opened is not None:
                opened.set_attribute("rollout.page.result", result)
                if result != "delivered":
                    opened.set_status(Status(StatusCode.ERROR, result))
            log.info("page %s to %s via %s: %s", page.id, page.team, channel, result)

        yield delivered


def ticker_claimed(kind: str, oldest_due: datetime, now: datetime) -> None:
    metrics.TICKER_LAG.labels(kind).observe(metrics.seconds(now - oldest_due))
