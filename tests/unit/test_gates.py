"""Tests for gate verdicts: every limit at its boundary, due times, dry runs and combining."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rollout.domain.gates import (
    GatePolicy,
    GateVerdict,
    Measurement,
    Outcome,
    UpgradeVerdict,
    VerdictState,
    combine,
    judge,
)

START = datetime(2025, 1, 6, 12, 0, tzinfo=UTC)
S, F, U, E = Outcome.SUCCESS, Outcome.FAILURE, Outcome.INCONCLUSIVE, Outcome.ERROR

MESSAGES = {
    S: "error_rate 0.01, wanted error_rate < 0.05 (prometheus: rate)",
    F: "error_rate 0.071, wanted error_rate < 0.05 (prometheus: rate)",
    U: "error_rate 0.05, neither success nor failure (prometheus: rate)",
    E: "connection refused (prometheus: rate)",
}


def series(*outcomes: Outcome, every: timedelta = timedelta(seconds=10)) -> list[Measurement]:
    return [
        Measurement(
            taken_at=START + every * (i + 1),
            outcome=outcome,
            value=None if outcome is E else "error_rate 0.071",
            condition="error_rate < 0.05",
            message=MESSAGES[outcome],
        )
        for i, outcome in enumerate(outcomes)
    ]


def verdict_of(*outcomes: Outcome, **policy: Any) -> GateVerdict:
    return judge(GatePolicy("health", **policy), series(*outcomes), START)


# --- policy validation -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "fragment"),
    [
        ({"count": 0}, "count must be at least 1"),
        ({"count": None}, "consecutive_successes is needed"),
        ({"consecutive_successes": 0}, "consecutive_successes must be at least 1"),
        ({"failure_limit": -1}, "failure_limit must not be negative"),
        ({"inconclusive_limit": -1}, "inconclusive_limit must not be negative"),
        ({"consecutive_error_limit": -1}, "consecutive_error_limit must not be negative"),
        ({"interval": timedelta(0)}, "interval must be positive"),
        ({"initial_delay": timedelta(seconds=-1)}, "initial_delay must not be negative"),
    ],
)
def test_policy_rejects_bad_settings(fields: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        GatePolicy("health", **fields)


def test_policy_accepts_count_none_with_consecutive_successes() -> None:
    policy = GatePolicy("health", count=None, consecutive_successes=3)
    assert policy.count is None and policy.consecutive_successes == 3


def test_naive_times_are_rejected() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        Measurement(datetime(2025, 1, 1), S, None, "x < 1", "m")
    with pytest.raises(ValueError, match="timezone-aware"):
        judge(GatePolicy("health"), [], datetime(2025, 1, 1))


# --- single limits at their boundaries ---------------------------------------------------------


def test_no_measurements_is_running_and_due_after_initial_delay() -> None:
    policy = GatePolicy("health", initial_delay=timedelta(minutes=2))
    verdict = judge(policy, [], START)
    assert verdict.state is VerdictState.RUNNING
    assert verdict.next_due == START + timedelta(minutes=2)
    assert verdict.reason == "waiting for the first measurement"


def test_default_policy_passes_on_one_success() -> None:
    verdict = verdict_of(S)
    assert verdict.state is VerdictState.PASSED
    assert verdict.next_due is None


def test_failure_at_the_limit_does_not_fail() -> None:
    assert verdict_of(F, S, count=3, failure_limit=1).state is VerdictState.RUNNING
    assert verdict_of(F, S, S, count=3, failure_limit=1).state is VerdictState.PASSED


def test_failure_over_the_limit_fails_with_message_counts_and_limit() -> None:
    verdict = verdict_of(F, S, F, count=5, failure_limit=1)
    assert verdict.state is VerdictState.FAILED
    assert verdict.reason == f"{MESSAGES[F]} — 2 failures, limit 1"
    assert verdict.next_due is None


def test_first_failure_fails_a_default_gate() -> None:
    verdict = verdict_of(F)
    assert verdict.state is VerdictState.FAILED
    assert verdict.reason.endswith("— 1 failure, limit 0")


def test_errors_at_the_limit_keep_running() -> None:
    verdict = verdict_of(E, E, E, E, consecutive_error_limit=4)
    assert verdict.state is VerdictState.RUNNING
    assert "4 consecutive measurements could not be taken (limit 4), retrying" in verdict.reason


def test_errors_over_the_limit_fail_and_say_they_are_errors() -> None:
    verdict = verdict_of(E, E, E, E, E, consecutive_error_limit=4)
    assert verdict.state is VerdictState.FAILED
    assert verdict.reason == (
        f"5 consecutive measurements could not be taken (limit 4): {MESSAGES[E]}"
    )


def test_single_error_over_a_zero_limit_reads_singular() -> None:
    verdict = verdict_of(E, consecutive_error_limit=0)
    assert verdict.state is VerdictState.FAILED
    assert verdict.reason.startswith("1 consecutive measurement could not be taken (limit 0)")


def test_only_trailing_errors_count_toward_the_error_limit() -> None:
    verdict = verdict_of(E, E, S, E, E, count=3, consecutive_error_limit=2)
    assert verdict.state is VerdictState.RUNNING


def test_an_error_is_not_a_failure() -> None:
    # failure_limit 0 would fail on any failure; errors within their limit must not.
    assert verdict_of(E, E, S, failure_limit=0).state is VerdictState.PASSED


def test_errors_do_not_count_toward_count() -> None:
    # A gate that never managed to measure must not pass by reaching its count.
    assert verdict_of(E, count=1).state is VerdictState.RUNNING
    assert verdict_of(E, E, S, S, count=2).state is VerdictState.PASSED
    assert verdict_of(E, E, S, count=2).state is VerdictState.RUNNING


def test_inconclusive_at_the_limit_keeps_running() -> None:
    assert verdict_of(U, count=3, inconclusive_limit=1).state is VerdictState.RUNNING


def test_inconclusive_over_the_limit() -> None:
    verdict = verdict_of(U, S, U, count=5, inconclusive_limit=1)
    assert verdict.state is VerdictState.INCONCLUSIVE
    assert verdict.reason == f"{MESSAGES[U]} — 2 inconclusive, limit 1"
    assert verdict.next_due is None


def test_inconclusive_counts_toward_count() -> None:
    verdict = verdict_of(U, S, count=2, inconclusive_limit=1)
    assert verdict.state is VerdictState.PASSED
    assert verdict.reason == "2 measurements taken, 1 inconclusive (limit 1)"


def test_count_reached_with_failures_within_limit_passes_and_says_so() -> None:
    verdict = verdict_of(S, F, S, count=3, failure_limit=1)
    assert verdict.state is VerdictState.PASSED
    assert verdict.reason == "3 measurements taken, 1 failure (limit 1)"


def test_count_boundary() -> None:
    assert verdict_of(S, S, count=3).state is VerdictState.RUNNING
    assert verdict_of(S, S, S, count=3).state is VerdictState.PASSED


def test_consecutive_successes_pass_early() -> None:
    assert verdict_of(S, S, count=10, consecutive_successes=3).state is VerdictState.RUNNING
    verdict = verdict_of(S, S, S, count=10, consecutive_successes=3)
    assert verdict.state is VerdictState.PASSED
    assert verdict.reason == "3 consecutive successes (wanted 3)"


def test_consecutive_successes_must_be_trailing() -> None:
    verdict = verdict_of(S, S, U, S, count=10, consecutive_successes=3, inconclusive_limit=5)
    assert verdict.state is VerdictState.RUNNING


def test_count_none_runs_until_consecutive_successes() -> None:
    policy: dict[str, Any] = {"count": None, "consecutive_successes": 2, "failure_limit": 100}
    assert verdict_of(S, F, S, F, S, **policy).state is VerdictState.RUNNING
    assert verdict_of(S, F, S, F, S, **policy).reason == "1 of 2 consecutive successes"
    assert verdict_of(S, F, S, F, S, S, **policy).state is VerdictState.PASSED


def test_failure_limit_is_checked_before_consecutive_successes() -> None:
    verdict = verdict_of(F, S, S, S, count=None, consecutive_successes=3)
    assert verdict.state is VerdictState.FAILED


def test_failure_is_checked_before_errors() -> None:
    verdict = verdict_of(F, E, E, consecutive_error_limit=1)
    assert verdict.state is VerdictState.FAILED
    assert "1 failure, limit 0" in verdict.reason


def test_errors_are_checked_before_inconclusive() -> None:
    verdict = verdict_of(U, E, E, consecutive_error_limit=1)
    assert verdict.state is VerdictState.FAILED
    assert "could not be taken" in verdict.reason


def test_unordered_measurements_are_judged_in_time_order() -> None:
    in_order = series(S, E, E)
    policy = GatePolicy("health", count=3, consecutive_error_limit=1)
    verdict = judge(policy, list(reversed(in_order)), START)
    assert verdict.state is VerdictState.FAILED
    assert verdict == judge(policy, in_order, START)


# --- due times ---------------------------------------------------------------------------------


def test_next_due_is_last_measurement_plus_interval() -> None:
    policy = GatePolicy(
        "health", count=3, interval=timedelta(seconds=30), initial_delay=timedelta(minutes=5)
    )
    measurements = series(S, every=timedelta(seconds=7))
    verdict = judge(policy, measurements, START)
    assert verdict.next_due == measurements[-1].taken_at + timedelta(seconds=30)


def test_errors_are_retried_after_the_interval() -> None:
    policy = GatePolicy("health", interval=timedelta(seconds=20))
    measurements = series(E)
    assert judge(policy, measurements, START).next_due == measurements[-1].taken_at + timedelta(
        seconds=20
    )


# --- dry run -----------------------------------------------------------------------------------


def test_dry_run_failure_is_reported_as_passed() -> None:
    verdict = verdict_of(F, dry_run=True)
    assert verdict.state is VerdictState.PASSED
    assert verdict.dry_run is True
    assert verdict.reason == f"dry run: would have failed: {MESSAGES[F]} — 1 failure, limit 0"
    assert verdict.next_due is None


def test_dry_run_errors_are_reported_as_passed() -> None:
    verdict = verdict_of(E, consecutive_error_limit=0, dry_run=True)
    assert verdict.state is VerdictState.PASSED
    assert verdict.reason.startswith("dry run: would have failed: 1 consecutive measurement")


def test_dry_run_inconclusive_is_reported_as_passed() -> None:
    verdict = verdict_of(U, dry_run=True)
    assert verdict.state is VerdictState.PASSED
    assert verdict.reason.startswith("dry run: would have been inconclusive: ")


def test_dry_run_still_measures_while_running() -> None:
    verdict = verdict_of(S, count=3, dry_run=True)
    assert verdict.state is VerdictState.RUNNING
    assert verdict.dry_run is True
    assert verdict.next_due is not None


def test_dry_run_pass_is_a_plain_pass() -> None:
    verdict = verdict_of(S, dry_run=True)
    assert verdict.state is VerdictState.PASSED
    assert not verdict.reason.startswith("dry run")


# --- combine -----------------------------------------------------------------------------------


def gate(
    name: str,
    state: VerdictState,
    *,
    due: int | None = None,
    dry_run: bool = False,
    reason: str | None = None,
) -> GateVerdict:
    return GateVerdict(
        gate=name,
        state=state,
        reason=reason or f"{name} is {state}",
        next_due=None if due is None else START + timedelta(seconds=due),
        dry_run=dry_run,
    )


P, R, X, N = (
    VerdictState.PASSED,
    VerdictState.RUNNING,
    VerdictState.FAILED,
    VerdictState.INCONCLUSIVE,
)


def test_no_gates_pass() -> None:
    assert combine([]) == UpgradeVerdict(VerdictState.PASSED, "no gates", None, ())


def test_all_passed() -> None:
    verdict = combine([gate("a", P), gate("b", P)])
    assert verdict.state is VerdictState.PASSED
    assert verdict.reason == "2 gates passed"
    assert verdict.next_due is None


def test_first_failed_gate_decides() -> None:
    verdict = combine([gate("a", R, due=5), gate("b", X), gate("c", X), gate("d", N)])
    assert verdict.state is VerdictState.FAILED
    assert verdict.reason == "gate b: b is failed"
    assert verdict.next_due is None


def test_inconclusive_beats_running() -> None:
    verdict = combine([gate("a", R, due=5), gate("b", N), gate("c", P)])
    assert verdict.state is VerdictState.INCONCLUSIVE
    assert verdict.reason == "gate b: b is inconclusive"


def test_running_takes_the_earliest_due_including_dry_run_gates() -> None:
    verdict = combine([gate("a", R, due=30), gate("b", R, due=10, dry_run=True), gate("c", P)])
    assert verdict.state is VerdictState.RUNNING
    assert verdict.next_due == START + timedelta(seconds=10)
    assert verdict.reason == "gate a: a is running"


def test_dry_run_gates_still_running_do_not_hold_the_upgrade() -> None:
    verdict = combine([gate("a", P), gate("b", R, due=10, dry_run=True)])
    assert verdict.state is VerdictState.PASSED
    assert verdict.next_due is None


def test_dry_run_failures_do_not_block_but_are_mentioned() -> None:
    dry = judge(GatePolicy("shadow", dry_run=True), series(F), START)
    verdict = combine([gate("a", P), dry])
    assert verdict.state is VerdictState.PASSED
    assert verdict.reason == f"1 gate passed; gate shadow: {dry.reason}"


def test_directly_built_dry_run_failures_do_not_block() -> None:
    verdict = combine([gate("a", X, dry_run=True), gate("b", N, dry_run=True)])
    assert verdict.state is VerdictState.PASSED
    assert verdict.reason == "only dry-run gates"


def test_combine_keeps_every_gate_verdict() -> None:
    verdicts = [gate("a", P), gate("b", R, due=1)]
    assert combine(verdicts).gates == tuple(verdicts)


# --- properties --------------------------------------------------------------------------------

outcome_lists = st.lists(st.sampled_from(list(Outcome)), max_size=30)


@st.composite
def policies(draw: st.DrawFn, dry_run: bool | None = None) -> GatePolicy:
    count = draw(st.none() | st.integers(1, 10))
    successes = draw(st.integers(1, 5)) if count is None else draw(st.none() | st.integers(1, 5))
    return GatePolicy(
        "g",
        initial_delay=timedelta(seconds=draw(st.integers(0, 600))),
        interval=timedelta(seconds=draw(st.integers(1, 600))),
        count=count,
        failure_limit=draw(st.integers(0, 5)),
        inconclusive_limit=draw(st.integers(0, 5)),
        consecutive_error_limit=draw(st.integers(0, 5)),
        consecutive_successes=successes,
        dry_run=draw(st.booleans()) if dry_run is None else dry_run,
    )


def _failures(outcomes: Sequence[Outcome]) -> int:
    return sum(1 for o in outcomes if o is Outcome.FAILURE)


@given(policies(dry_run=False), outcome_lists)
def test_never_passes_while_failures_exceed_the_limit(
    policy: GatePolicy, outcomes: list[Outcome]
) -> None:
    verdict = judge(policy, series(*outcomes), START)
    if _failures(outcomes) > policy.failure_limit:
        assert verdict.state is VerdictState.FAILED


@given(policies(dry_run=False), outcome_lists)
def test_an_error_never_completes_a_running_gate(
    policy: GatePolicy, outcomes: list[Outcome]
) -> None:
    before = judge(policy, series(*outcomes), START)
    after = judge(policy, series(*outcomes, Outcome.ERROR), START)
    if before.state is VerdictState.RUNNING:
        assert after.state in {VerdictState.RUNNING, VerdictState.FAILED}


@given(policies(), outcome_lists)
def test_next_due_only_while_running_and_never_before_the_last_measurement(
    policy: GatePolicy, outcomes: list[Outcome]
) -> None:
    measurements = series(*outcomes)
    verdict = judge(policy, measurements, START)
    assert (verdict.next_due is not None) == (verdict.state is VerdictState.RUNNING)
    if verdict.next_due is not None and measurements:
        assert verdict.next_due == measurements[-1].taken_at + policy.interval
        assert verdict.next_due > measurements[-1].taken_at
    elif verdict.next_due is not None:
        assert verdict.next_due == START + policy.initial_delay


@given(policies(dry_run=True), outcome_lists)
def test_dry_run_never_blocks(policy: GatePolicy, outcomes: list[Outcome]) -> None:
    verdict = judge(policy, series(*outcomes), START)
    assert verdict.state in {VerdictState.PASSED, VerdictState.RUNNING}
    assert verdict.dry_run
    assert combine([verdict]).state is VerdictState.PASSED


@given(policies(dry_run=False), outcome_lists)
def test_dry_run_changes_only_the_blocking_states(
    policy: GatePolicy, outcomes: list[Outcome]
) -> None:
    real = judge(policy, series(*outcomes), START)
    dry = judge(GatePolicy(**{**policy.__dict__, "dry_run": True}), series(*outcomes), START)
    if real.state in {VerdictState.FAILED, VerdictState.INCONCLUSIVE}:
        assert dry.state is VerdictState.PASSED
        assert dry.reason.startswith("dry run: would have ") and real.reason in dry.reason
    else:
        assert (dry.state, dry.reason, dry.next_due) == (real.state, real.reason, real.next_due)


@given(policies(dry_run=False), outcome_lists)
def test_errors_alone_fail_only_as_errors(policy: GatePolicy, outcomes: list[Outcome]) -> None:
    verdict = judge(policy, series(*outcomes), START)
    if verdict.state is VerdictState.FAILED and _failures(outcomes) == 0:
        assert "could not be taken" in verdict.reason
        assert outcomes[-1] is Outcome.ERROR


@given(policies(dry_run=False), outcome_lists)
def test_passing_needs_real_measurements(policy: GatePolicy, outcomes: list[Outcome]) -> None:
    verdict = judge(policy, series(*outcomes), START)
    if verdict.state is VerdictState.PASSED:
        taken = sum(1 for o in outcomes if o is not Outcome.ERROR)
        enough = [n for n in (policy.count, policy.consecutive_successes) if n is not None]
        assert taken >= min(enough)


verdict_states = st.sampled_from(list(VerdictState))
gate_verdicts = st.builds(
    lambda i, state, due, dry: gate(
        f"g{i}", state, due=due if state is VerdictState.RUNNING else None, dry_run=dry
    ),
    st.integers(0, 9),
    verdict_states,
    st.integers(0, 1000),
    st.booleans(),
)


@given(st.lists(gate_verdicts, max_size=8))
def test_combine_precedence(verdicts: list[GateVerdict]) -> None:
    result = combine(verdicts)
    blocking = [v for v in verdicts if not v.dry_run]
    states = {v.state for v in blocking}
    if VerdictState.FAILED in states:
        assert result.state is VerdictState.FAILED
        first = next(v for v in blocking if v.state is VerdictState.FAILED)
        assert result.reason == f"gate {first.gate}: {first.reason}"
    elif VerdictState.INCONCLUSIVE in states:
        assert result.state is VerdictState.INCONCLUSIVE
    elif VerdictState.RUNNING in states:
        assert result.state is VerdictState.RUNNING
        dues = [v.next_due for v in verdicts if v.state is VerdictState.RUNNING and v.next_due]
        assert result.next_due == min(dues)
    else:
        assert result.state is VerdictState.PASSED
    assert (result.next_due is not None) == (result.state is VerdictState.RUNNING)
