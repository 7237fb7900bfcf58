"""Constraints on when an upgrade may start: windows (across midnight and DST), freezes,
dependencies, recall; every held verdict names the exact instant it may start."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rollout.domain.constraints import (
    Constraints,
    Freeze,
    Requirement,
    Window,
    compare_versions,
    first_reaching,
)
from rollout.domain.holds import Hold, HoldKind
from rollout.domain.planning import RolloutView, StagePlan, UpgradeView, plan
from rollout.domain.states import RolloutState, UpgradeState

BERLIN = "Europe/Berlin"
WEEKDAYS = frozenset(range(4))  # mon-thu
OFFICE = Window(WEEKDAYS, time(9), time(16), BERLIN)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def only(*windows: Window, env: tuple[Window, ...] = ()) -> Constraints:
    return Constraints("checkout", windows, {"prod-1": env} if env else {})


# --- examples --------------------------------------------------------------------------------


def test_no_windows_is_always_open() -> None:
    assert Constraints("checkout").verdict("prod-1", utc(2026, 11, 29, 3)).admitted


def test_inside_the_window_an_upgrade_starts() -> None:
    # Thursday 26 November 2026, 10:00 in Berlin is 09:00 UTC.
    assert only(OFFICE).verdict("prod-1", utc(2026, 11, 26, 9)).admitted


def test_outside_the_window_it_waits_for_the_next_opening() -> None:
    # Thursday 16:00 Berlin has closed it; Friday to Sunday are not window days.
    verdict = only(OFFICE).verdict("prod-1", utc(2026, 11, 26, 15))
    assert not verdict.admitted
    assert verdict.until == utc(2026, 11, 30, 8)  # Monday 09:00 Berlin (CET, UTC+1)
    assert verdict.reason == "maintenance window opens at 2026-11-30 08:00:00 UTC"


def test_the_window_closes_at_its_end_exactly() -> None:
    constraints = only(OFFICE)
    assert constraints.verdict("prod-1", utc(2026, 11, 26, 14, 59, 59)).admitted
    assert not constraints.verdict("prod-1", utc(2026, 11, 26, 15)).admitted


def test_a_window_across_midnight_belongs_to_the_day_it_opens() -> None:
    night = Window(frozenset({4}), time(22), time(2), BERLIN)  # Friday 22:00 to Saturday 02:00
    constraints = only(night)
    assert constraints.verdict("prod-1", utc(2026, 11, 28, 0, 30)).admitted  # Sat 01:30
    assert not constraints.verdict("prod-1", utc(2026, 11, 28, 1)).admitted  # Sat 02:00
    # Friday 21:59 Berlin waits a minute; Thursday night waits for Friday.
    assert constraints.verdict("prod-1", utc(2026, 11, 27, 20, 59)).until == utc(2026, 11, 27, 21)
    assert constraints.verdict("prod-1", utc(2026, 11, 26, 23)).until == utc(2026, 11, 27, 21)


def test_a_window_opening_in_the_skipped_hour_opens_when_the_clock_jumps() -> None:
    # 29 March 2026, Berlin: 02:00 CET jumps to 03:00 CEST (01:00 UTC).
    zone = ZoneInfo(BERLIN)
    assert first_reaching(date(2026, 3, 29), time(2, 30), zone) == utc(2026, 3, 29, 1)
    sunday = Window(frozenset({6}), time(2, 30), time(5), BERLIN)
    verdict = only(sunday).verdict("prod-1", utc(2026, 3, 28, 23))
    assert verdict.until == utc(2026, 3, 29, 1)


def test_a_window_in_the_repeated_hour_counts_from_its_first_occurrence() -> None:
    # 25 October 2026, Berlin: 03:00 CEST falls back to 02:00 CET (01:00 UTC).
    sunday = Window(frozenset({6}), time(1), time(4), BERLIN)
    constraints = only(sunday)
    assert constraints.verdict("prod-1", utc(2026, 10, 24, 22, 59)).until == utc(2026, 10, 24, 23)
    # Three wall-clock hours that last four real ones: open until 04:00 CET = 03:00 UTC.
    assert constraints.verdict("prod-1", utc(2026, 10, 25, 2, 59, 59)).admitted
    assert not constraints.verdict("prod-1", utc(2026, 10, 25, 3)).admitted


def test_the_service_and_the_environment_windows_must_both_be_open() -> None:
    mornings = Window(frozenset(range(7)), time(6), time(12), "UTC")
    afternoons_tokyo = Window(frozenset(range(7)), time(19), time(23), "Asia/Tokyo")  # 10-14 UTC
    constraints = only(mornings, env=(afternoons_tokyo,))
    assert not constraints.verdict("prod-1", utc(2026, 11, 27, 7)).admitted
    assert constraints.verdict("prod-1", utc(2026, 11, 27, 7)).until == utc(2026, 11, 27, 10)
    assert constraints.verdict("prod-1", utc(2026, 11, 27, 11)).admitted
    assert constraints.verdict("prod-1", utc(2026, 11, 27, 12)).until == utc(2026, 11, 28, 10)
    # Other environments have no windows of their own: the service's alone decide.
    assert constraints.verdict("prod-2", utc(2026, 11, 27, 7)).admitted


def test_windows_that_never_overlap_say_so() -> None:
    mornings = Window(frozenset(range(7)), time(6), time(8), "UTC")
    evenings = Window(frozenset(range(7)), time(18), time(20), "UTC")
    verdict = only(mornings, env=(evenings,)).verdict("prod-1", utc(2026, 11, 27, 7))
    assert not verdict.admitted and verdict.until is None
    assert "never overlap" in (verdict.reason or "")


def test_a_freeze_holds_until_its_end_with_its_reason() -> None:
    now = utc(2026, 12, 20, 12)
    freeze = Freeze("prod-1", "environment", utc(2027, 1, 4, 8), "holiday freeze")
    verdict = Constraints("checkout", freezes=(freeze,)).verdict("prod-1", now)
    assert not verdict.admitted and verdict.until == freeze.until
    assert verdict.reason == (
        "environment prod-1 frozen until 2027-01-04 08:00:00 UTC: holiday freeze"
    )
    assert Constraints("checkout", freezes=(freeze,)).verdict("prod-2", now).admitted
    assert Constraints("checkout", freezes=(freeze,)).verdict("prod-1", freeze.until).admitted


def test_a_service_freeze_holds_everywhere_and_then_waits_for_the_window() -> None:
    freeze = Freeze("checkout", "service", utc(2026, 11, 26, 15, 30), "incident 4711")
    constraints = Constraints("checkout", (OFFICE,), freezes=(freeze,))
    verdict = constraints.verdict("anywhere", utc(2026, 11, 26, 9))
    assert verdict.until == utc(2026, 11, 30, 8)
    assert verdict.reason == (
        "service checkout frozen until 2026-11-26 15:30:00 UTC: incident 4711; "
        "then its maintenance window opens at 2026-11-30 08:00:00 UTC"
    )


def test_an_unmet_dependency_waits_without_a_time() -> None:
    needs = (Requirement("billing-db", ">=", "2.3"),)
    constraints = Constraints(
        "checkout", requires=needs, installed={("prod-1", "billing-db"): "2.1"}
    )
    verdict = constraints.verdict("prod-1", utc(2026, 11, 27, 12))
    assert not verdict.admitted and verdict.until is None
    assert verdict.reason == "waits for billing-db >= 2.3 in prod-1 (installed 2.1)"
    assert "(not installed)" in (constraints.verdict("prod-2", utc(2026, 11, 27)).reason or "")
    met = Constraints("checkout", requires=needs, installed={("prod-1", "billing-db"): "2.10"})
    assert met.verdict("prod-1", utc(2026, 11, 27)).admitted


@pytest.mark.parametrize(
    ("left", "right", "order"),
    [
        ("2.10", "2.9", 1),
        ("2.3", "2.3.0", 0),
        ("2.3rc1", "2.3", -1),
        ("2.3.post1", "2.3", 1),
        ("v2-build7", "v2-build10", -1),  # not PEP 440: natural order
        ("1.0.0", "1.0.0", 0),
    ],
)
def test_versions_compare_as_versions(left: str, right: str, order: int) -> None:
    assert compare_versions(left, right) == order
    assert compare_versions(right, left) == -order


def test_a_recalled_version_never_starts() -> None:
    verdict = Constraints("checkout", recalled=True, version="9.0.0").verdict("x", utc(2026, 1, 1))
    assert not verdict.admitted and verdict.until is None
    assert verdict.reason == "checkout 9.0.0 is recalled"


def test_the_planner_records_the_hold_and_plans_again_at_the_opening() -> None:
    now = utc(2026, 11, 26, 15)
    upgrades = [UpgradeView(1, "prod-1", 0, UpgradeState.PENDING)]
    rollout = RolloutView(RolloutState.RUNNING, 0, None)
    decided = plan(rollout, [StagePlan("production")], upgrades, {}, now, only(OFFICE))
    assert decided.start == []
    assert decided.holds == {
        1: Hold(HoldKind.WINDOW, "prod-1", "maintenance window opens at 2026-11-30 08:00:00 UTC")
    }
    assert decided.due_at == utc(2026, 11, 30, 8)
    later = plan(rollout, [StagePlan("production")], upgrades, {}, decided.due_at, only(OFFICE))
    assert later.start == [1]


# --- properties ------------------------------------------------------------------------------

ZONES = ["UTC", BERLIN, "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe", "Asia/Tokyo"]
clock = st.builds(time, st.integers(0, 23), st.sampled_from([0, 15, 30, 45]))
windows = st.builds(
    Window,
    days=st.frozensets(st.integers(0, 6), min_size=1),
    start=clock,
    end=clock,
    zone=st.sampled_from(ZONES),
).filter(lambda w: w.start != w.end)
instants = st.datetimes(
    min_value=datetime(2025, 1, 1), max_value=datetime(2028, 1, 1), timezones=st.just(UTC)
).map(lambda d: d.replace(microsecond=0))
freezes = st.builds(
    Freeze,
    target=st.sampled_from(["prod-1", "prod-2", "checkout", "search"]),
    kind=st.sampled_from(["environment", "service"]),
    until=instants,
    reason=st.just("change freeze"),
)
constraints = st.builds(
    Constraints,
    service=st.just("checkout"),
    service_windows=st.lists(windows, max_size=2).map(tuple),
    environment_windows=st.dictionaries(
        st.sampled_from(["prod-1", "prod-2"]), st.lists(windows, max_size=2).map(tuple)
    ),
    freezes=st.lists(freezes, max_size=3).map(tuple),
)


def _on_the_wall(window: Window, at: datetime) -> bool:
    """The window read off the local wall clock, as a person would."""
    local = at.astimezone(ZoneInfo(window.zone))
    day, now = local.weekday(), local.time().replace(tzinfo=None)
    if window.start < window.end:
        return day in window.days and window.start <= now < window.end
    return (day in window.days and now >= window.start) or (
        (day - 1) % 7 in window.days and now < window.end
    )


def _steady(window: Window, at: datetime) -> bool:
    """No clock change in the two days before `at`: the wall clock reading is the truth."""
    zone = ZoneInfo(window.zone)
    return at.astimezone(zone).utcoffset() == (at - timedelta(days=2)).astimezone(zone).utcoffset()


@settings(max_examples=300, deadline=None)
@given(rules=constraints, now=instants, environment=st.sampled_from(["prod-1", "prod-2"]))
def test_nothing_starts_outside_a_window_or_in_a_freeze(
    rules: Constraints, now: datetime, environment: str
) -> None:
    verdict = rules.verdict(environment, now)
    groups = [rules.service_windows, rules.environment_windows.get(environment, ())]
    if verdict.admitted:
        for group in groups:
            steady = [w for w in group if _steady(w, now)]
            if group and len(steady) == len(group):
                assert any(_on_the_wall(w, now) for w in group), "started outside a window"
        for freeze in rules.freezes:
            assert not freeze.holds("checkout", environment, now), "started in a freeze"
    else:
        assert verdict.reason


@settings(max_examples=300, deadline=None)
@given(rules=constraints, now=instants, data=st.data())
def test_until_is_exact(rules: Constraints, now: datetime, data: st.DataObject) -> None:
    verdict = rules.verdict("prod-1", now)
    if verdict.admitted or verdict.until is None:
        return
    until = verdict.until
    assert until > now
    assert rules.verdict("prod-1", until).admitted, "admitted at the instant it names"
    assert not rules.verdict("prod-1", until - timedelta(seconds=1)).admitted, "not a second before"
    seconds = int((until - now).total_seconds())
    between = now + timedelta(seconds=data.draw(st.integers(0, seconds - 1)))
    later = rules.verdict("prod-1", between)
    assert not later.admitted and later.until == until, "the wait says the same all along"


version_parts = st.lists(st.integers(0, 30), min_size=3, max_size=3)


@given(
    required=version_parts,
    installed=st.one_of(st.none(), version_parts),
    op=st.sampled_from([">=", ">", "==", "<=", "<", "!="]),
)
def test_an_unmet_dependency_never_starts(
    required: list[int], installed: list[int] | None, op: str
) -> None:
    requirement = Requirement("billing-db", op, ".".join(map(str, required)))
    have = {} if installed is None else {("prod-1", "billing-db"): ".".join(map(str, installed))}
    verdict = Constraints("checkout", requires=(requirement,), installed=have).verdict(
        "prod-1", utc(2026, 11, 27)
    )
    if installed is None:
        assert not verdict.admitted
        return
    holds = {
        ">=": installed >= required,
        ">": installed > required,
        "==": installed == required,
        "<=": installed <= required,
        "<": installed < required,
        "!=": installed != required,
    }[op]
    assert verdict.admitted is holds
    if not holds:
        assert verdict.until is None and "waits for billing-db" in (verdict.reason or "")


@settings(max_examples=200, deadline=None)
@given(
    rules=constraints,
    recalled=st.booleans(),
    parallelism=st.one_of(st.none(), st.integers(1, 3)),
    states=st.lists(st.sampled_from(list(UpgradeState)), max_size=8),
    now=instants,
)
def test_the_planner_starts_only_what_every_rule_admits(
    rules: Constraints,
    recalled: bool,
    parallelism: int | None,
    states: list[UpgradeState],
    now: datetime,
) -> None:
    rules = Constraints(
        rules.service,
        rules.service_windows,
        rules.environment_windows,
        freezes=rules.freezes,
        recalled=recalled,
        version="2.0.0",
    )
    upgrades = [UpgradeView(i, f"prod-{i % 3}", 0, s) for i, s in enumerate(states)]
    stage = StagePlan("production", parallelism=parallelism)
    decided = plan(RolloutView(RolloutState.RUNNING, 0, None), [stage], upgrades, {}, now, rules)
    by_id = {u.id: u for u in upgrades}
    for upgrade_id in decided.start:
        assert rules.verdict(by_id[upgrade_id].environment, now).admitted
    if recalled:
        assert decided.start == []
    in_flight = sum(u.state.in_flight for u in upgrades)
    assert in_flight + len(decided.start) <= max(stage.max_in_flight(len(upgrades)), in_flight)
    for upgrade_id, hold in decided.holds.items():
        verdict = rules.verdict(by_id[upgrade_id].environment, now)
        if not verdict.admitted:
            assert hold == verdict.hold
            if verdict.until is not None:
                assert decided.due_at is not None and decided.due_at <= verdict.until


@settings(max_examples=500, deadline=None)
@given(
    day=st.dates(min_value=date(2025, 1, 1), max_value=date(2028, 1, 1)),
    clock=st.builds(time, st.integers(0, 23), st.integers(0, 59)),
    zone=st.sampled_from(ZONES),
)
def test_a_window_edge_is_the_first_second_the_wall_clock_reaches_it(
    day: date, clock: time, zone: str
) -> None:
    tz = ZoneInfo(zone)
    wanted = datetime.combine(day, clock)
    reached = first_reaching(day, clock, tz)
    assert reached.astimezone(tz).replace(tzinfo=None) >= wanted
    assert (reached - timedelta(seconds=1)).astimezone(tz).replace(tzinfo=None) < wanted
