"""What a page says and how it is keyed: one page per (rollout, gate, environment)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class PageKind(StrEnum):
    FAILURE = "failure"  # a gate failed: rolled back, rollout halted
    DECISION = "decision"  # a gate was inconclusive: a human decides
    ROLLBACK_FAILED = "rollback_failed"
    BLOCKED = "blocked"  # an artifact failed its air-gapped entry check: nothing deployed


# An inconclusive gate asks for a decision; it never wakes anyone up.
DECISION_SEVERITY = "P4"


@dataclass(frozen=True)
class PageFacts:
    """The facts in hand: everything the on-call needs, nothing from the payload."""

    rollout_id: int
    service: str
    version: str
    environment: str
    stage: str
    gate: str | None
    reason: str  # the measured value against its condition
    rollback_to: str | None


def dedup_key(rollout_id: int, gate: str | None, environment: str) -> str:
    return f"rollout-{rollout_id}/{gate or 'deploy'}/{environment}"


def page_key(kind: PageKind, rollout_id: int, gate: str | None, environment: str) -> str:
    """The cause a page is one of: a rollout's gate (or its deploy) in an environment; an
    artifact blocked at entry there; and, apart from both, a rollback that failed."""
    if kind is PageKind.BLOCKED:
        return dedup_key(rollout_id, "entry", environment)
    key = dedup_key(rollout_id, gate, environment)
    return f"{key}/rollback" if kind is PageKind.ROLLBACK_FAILED else key


def page_severity(kind: PageKind, stage_severity: str) -> str:
    """How urgent: the stage's severity (production wakes someone), except that a failed
    rollback always does, and a question for a decision never does."""
    if kind is PageKind.ROLLBACK_FAILED:
        return "P0"
    return DECISION_SEVERITY if kind is PageKind.DECISION else stage_severity


def summary(kind: PageKind, facts: PageFacts) -> str:
    subject = f"{facts.service} {facts.version} in {facts.environment} ({facts.stage})"
    what = f"gate {facts.gate}" if facts.gate else "deploy"
    back = facts.rollback_to or "nothing (first install, removed)"
    more = f"see: rollout show {facts.rollout_id}"
    if kind is PageKind.DECISION:
        return (
            f"{subject}: {what} inconclusive: {facts.reason}. Rollout paused: "
            f"resume or abort it. {more}"
        )
    if kind is PageKind.ROLLBACK_FAILED:
        return f"{subject}: rollback to {back} failed: {facts.reason}. Hands needed. {more}"
    if kind is PageKind.BLOCKED:
        return f"{subject}: {facts.reason}. Nothing was deployed; rollout halted. {more}"
    return (
        f"{subject}: {what} failed: {facts.reason}. Rolled back to {back}; rollout halted. {more}"
    )
