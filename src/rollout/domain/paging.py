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
