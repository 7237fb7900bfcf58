"""Gate verdicts from measurements under every limit, after Argo Rollouts' AnalysisRun."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

__all__ = [
    "GatePolicy",
    "GateVerdict",
    "Measurement",
    "Outcome",
    "UpgradeVerdict",
    "VerdictState",
    "combine",
    "judge",
    "reading",
]


class Outcome(StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"
    INCONCLUSIVE = "inconclusive"
    # The measurement could not be taken (timeout, refused, no data): says nothing
    # about the version, so it is retried instead of counted as a failure.
    ERROR = "error"


class VerdictState(StrEnum):
    RUNNING = "running"
    PASSED = "passed"
    FAILED = "failed"
    INCONCLUSIVE = "inconclusive"


@dataclass(frozen=True)
class Measurement:
    taken_at: datetime
    outcome: Outcome
    value: str | None
    condition: str
    message: str

    def __post_init__(self) -> None:
        _require_aware(self.taken_at, "taken_at")


@dataclass(frozen=True)
class GatePolicy:
    name: str
    initial_delay: timedelta = timedelta(0)
    interval: timedelta = timedelta(seconds=10)
    count: int | None = 1
    failure_limit: int = 0
    inconclusive_limit: int = 0
    consecutive_error_limit: int = 4
    consecutive_successes: int | None = None
    dry_run: bool = False

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("a gate needs a name")
        if self.initial_delay < timedelta(0):
            raise ValueError(f"gate {self.name}: initial_delay must not be negative")
        if self.interval <= timedelta(0):
            raise ValueError(f"gate {self.name}: interval must be positive")
        if self.count is not None and self.count < 1:
            raise ValueError(f"gate {self.name}: count must be at least 1, or unset")
        if self.count is None and self.consecutive_successes is None:
            # Otherwise the gate would measure forever and never pass.
            raise ValueError(f"gate {self.name}: without count, consecutive_successes is needed")
        if self.consecutive_successes is not None and self.consecutive_successes < 1:
            raise ValueError(f"gate {self.name}: consecutive_successes must be at least 1")
        for limit in ("failure_limit", "inconclusive_limit", "consecutive_error_limit"):
            if getattr(self, limit) < 0:
                raise ValueError(f"gate {self.name}: {limit} must not be negative")


@dataclass(frozen=True)
class GateVerdict:
    gate: str
    state: VerdictState
    reason: str
    next_due: datetime | None
    dry_run: bool


@dataclass(frozen=True)
class UpgradeVerdict:
    state: VerdictState
    reason: str
    next_due: datetime | None
    gates: tuple[GateVerdict, ...]


def judge(
    policy: GatePolicy, measurements: Sequence[Measurement], started_at: datetime
) -> GateVerdict:
    """The gate's verdict after `measurements`, and when to measure next if it is still open."""
    _require_aware(started_at, "started_at")
    # Stores do not always return rows in order; the trailing runs depend on it.
    ordered = sorted(measurements, key=lambda m: m.taken_at)
    state, reason = _assess(policy, ordered)
    next_due: datetime | None = None
    if state is VerdictState.RUNNING:
        next_due = (
            ordered[-1].taken_at + policy.interval if ordered else started_at + policy.initial_delay
        )
    elif policy.dry_run and state is not VerdictState.PASSED:
        would = "failed" if state is VerdictState.FAILED else "been inconclusive"
        state, reason = VerdictState.PASSED, f"dry run: would have {would}: {reason}"
    return GateVerdict(policy.name, state, reason, next_due, policy.dry_run)


def combine(verdicts: Sequence[GateVerdict]) -> UpgradeVerdict:
    """The upgrade's verdict over all its gates; dry-run gates never hold it back."""
    gates = tuple(verdicts)
    if not gates:
        return UpgradeVerdict(VerdictState.PASSED, "no gates", None, gates)
    blocking = [v for v in gates if not v.dry_run]
    for state in (VerdictState.FAILED, VerdictState.INCONCLUSIVE):
        decider = next((v for v in blocking if v.state is state), None)
        if decider is not None:
            return UpgradeVerdict(state, _prefixed(decider), None, gates)
    running = [v for v in blocking if v.state is VerdictState.RUNNING]
    if running:
        # Dry-run gates are still measured while the upgrade waits anyway.
        dues = [v.next_due for v in gates if v.state is VerdictState.RUNNING and v.next_due]
        next_due = min(dues) if dues else None
        return UpgradeVerdict(VerdictState.RUNNING, _prefixed(running[0]), next_due, gates)
    reason = f"{_plural(len(blocking), 'gate')} passed"
    notes = [_prefixed(v) for v in gates if v.dry_run and v.reason.startswith("dry run:")]
    if not blocking:
        reason = "only dry-run gates"
    if notes:
        reason = f"{reason}; {notes[0]}"
    return UpgradeVerdict(VerdictState.PASSED, reason, None, gates)


def _assess(policy: GatePolicy, ordered: Sequence[Measurement]) -> tuple[VerdictState, str]:
    failures = [m for m in ordered if m.outcome is Outcome.FAILURE]
    inconclusives = [m for m in ordered if m.outcome is Outcome.INCONCLUSIVE]
    errors = _trailing(ordered, Outcome.ERROR)
    successes = _trailing(ordered, Outcome.SUCCESS)
    # Errors are retries, not measurements: a gate whose every attempt failed to
    # measure must never pass just because it reached its count.
    taken = sum(1 for m in ordered if m.outcome is not Outcome.ERROR)

    if len(failures) > policy.failure_limit:
        return VerdictState.FAILED, (
            f"{failures[-1].message} — {_plural(len(failures), 'failure')}, "
            f"limit {policy.failure_limit}"
        )
    if errors > policy.consecutive_error_limit:
        return VerdictState.FAILED, (
            f"{_plural(errors, 'consecutive measurement')} could not be taken "
            f"(limit {policy.consecutive_error_limit}): {ordered[-1].message}"
        )
    if len(inconclusives) > policy.inconclusive_limit:
        return VerdictState.INCONCLUSIVE, (
            f"{inconclusives[-1].message} — {len(inconclusives)} inconclusive, "
            f"limit {policy.inconclusive_limit}"
        )
    wanted = policy.consecutive_successes
    if wanted is not None and successes >= wanted:
        return VerdictState.PASSED, (
            f"{_plural(successes, 'consecutive success', 'consecutive successes')} "
            f"(wanted {wanted})"
        )
    if policy.count is not None and taken >= policy.count:
        return (
            VerdictState.PASSED,
            f"{_plural(taken, 'measurement')} taken{_tally(policy, ordered)}",
        )
    return VerdictState.RUNNING, _progress(policy, ordered, taken, errors, successes)


def _progress(
    policy: GatePolicy, ordered: Sequence[Measurement], taken: int, errors: int, successes: int
) -> str:
    if not ordered:
        return "waiting for the first measurement"
    if errors:
        return (
            f"{_plural(errors, 'consecutive measurement')} could not be taken "
            f"(limit {policy.consecutive_error_limit}), retrying: {ordered[-1].message}"
        )
    if policy.count is None:
        return f"{successes} of {policy.consecutive_successes} consecutive successes"
    return f"{taken} of {policy.count} measurements taken{_tally(policy, ordered)}"


def _tally(policy: GatePolicy, ordered: Sequence[Measurement]) -> str:
    failures = sum(1 for m in ordered if m.outcome is Outcome.FAILURE)
    inconclusives = sum(1 for m in ordered if m.outcome is Outcome.INCONCLUSIVE)
    parts = []
    if failures:
        parts.append(f"{_plural(failures, 'failure')} (limit {policy.failure_limit})")
    if inconclusives:
        parts.append(f"{inconclusives} inconclusive (limit {policy.inconclusive_limit})")
    return f", {', '.join(parts)}" if parts else ""


def reading(value: str | None) -> tuple[str | None, float | None]:
    """A stored measurement ("error_rate 0.071", "status 503", "health ok") as what was
    measured and its number; a value that is not one finite number has no number."""
    if value is None or not value.strip():
        return None, None
    first = value.split(",")[0].split()
    metric = first[0] if len(first) > 1 else None
    if "," in value or len(first) > 2:
        return metric, None
    try:
        number = float(first[-1])
    except ValueError:
        return metric, None
    return metric, number if math.isfinite(number) else None


def _trailing(ordered: Sequence[Measurement], outcome: Outcome) -> int:
    run = 0
    for measurement in reversed(ordered):
        if measurement.outcome is not outcome:
            break
        run += 1
    return run


def _prefixed(verdict: GateVerdict) -> str:
    return f"gate {verdict.gate}: {verdict.reason}"


def _plural(n: int, singular: str, plural: str | None = None) -> str:
    return f"{n} {singular if n == 1 else (plural or singular + 's')}"


def _require_aware(moment: datetime, what: str) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware, got {moment.isoformat()}")
