"""The hygiene report's rules: night in the recipient's zone, medians, rates, anti-patterns."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rollout.domain.hygiene import (
    ACKNOWLEDGED,
    MISROUTED,
    NOT_ACTIONABLE,
    EventFact,
    Finding,
    FindingKind,
    HygieneReport,
    PageFact,
    report,
)
from rollout.durations import parse_window

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
SINGAPORE = ZoneInfo("Asia/Singapore")
ZONES = {"Ada": BERLIN, "Ben": NEW_YORK, "Chen": SINGAPORE}
TEAM_ZONES = {"payments": BERLIN}

SINCE = datetime(2026, 1, 5, tzinfo=UTC)
WEEK_LATER = SINCE + timedelta(days=7)
NOON = datetime(2026, 1, 6, 12, 0, tzinfo=UTC)  # day in all three zones


def page(
    id: int,
    at: datetime = NOON,
    *,
    team: str = "payments",
    service: str = "checkout",
    gate: str | None = "health",
    recipient: str | None = "Ada",
    events: Sequence[EventFact] = (),
) -> PageFact:
    return PageFact(id, team, service, gate, at, recipient, tuple(events))


def ack(at: datetime, after: timedelta) -> EventFact:
    return EventFact(ACKNOWLEDGED, at + after)


def misrouted(to: str, at: datetime = NOON) -> EventFact:
    return EventFact(MISROUTED, at + timedelta(hours=1), to)


def not_actionable(at: datetime = NOON) -> EventFact:
    return EventFact(NOT_ACTIONABLE, at + timedelta(hours=1))


def run(
    pages: Sequence[PageFact],
    since: datetime = SINCE,
    until: datetime = WEEK_LATER,
    budget: float = 2,
) -> HygieneReport:
    return report(pages, since, until, ZONES, budget, team_zones=TEAM_ZONES)


def kinds(result: HygieneReport, kind: FindingKind) -> list[Finding]:
    return [f for f in result.findings if f.kind is kind]


# Night: in the recipient's own zone.


def test_2330_utc_is_night_in_berlin_but_not_in_new_york() -> None:
    at = datetime(2026, 1, 6, 23, 30, tzinfo=UTC)  # 00:30 in Berlin, 18:30 in New York
    result = run([page(1, at, recipient="Ada"), page(2, at, team="search", recipient="Ben")])
    night = {t.team: t.tally.night_pages for t in result.teams}
    assert night == {"payments": 1, "search": 0}


def test_0530_utc_is_night_in_utc_but_morning_in_berlin() -> None:
    at = datetime(2026, 1, 6, 5, 30, tzinfo=UTC)  # 06:30 in Berlin
    assert run([page(1, at, recipient="Ada")]).teams[0].tally.night_pages == 0


def test_1700_utc_is_night_in_singapore() -> None:
    at = datetime(2026, 1, 6, 17, 0, tzinfo=UTC)  # 01:00 the next day in Singapore
    assert run([page(1, at, recipient="Chen")]).teams[0].tally.night_pages == 1


@pytest.mark.parametrize(
    ("local", "night"),
    [
        ((0, 0, 0), True),
        ((5, 59, 59), True),
        ((6, 0, 0), False),
        ((23, 59, 59), False),
        ((12, 0, 0), False),
    ],
)
def test_night_is_midnight_to_six_local(local: tuple[int, int, int], night: bool) -> None:
    at = datetime(2026, 1, 7, *local, tzinfo=BERLIN).astimezone(UTC)
    assert run([page(1, at, recipient="Ada")]).teams[0].tally.night_pages == int(night)


def test_night_follows_summer_time() -> None:
    # 22:30 UTC in July is 00:30 in Berlin (UTC+2), but 23:30 in January (UTC+1).
    summer = datetime(2026, 7, 6, 22, 30, tzinfo=UTC)
    winter = datetime(2026, 1, 6, 22, 30, tzinfo=UTC)
    july = report([page(1, summer)], summer - timedelta(days=1), summer + timedelta(days=1), ZONES)
    assert july.teams[0].tally.night_pages == 1
    assert run([page(1, winter)]).teams[0].tally.night_pages == 0


def test_a_page_with_no_recipient_is_judged_in_the_teams_zone_and_the_report_says_so() -> None:
    at = datetime(2026, 1, 6, 23, 30, tzinfo=UTC)  # 00:30 in Berlin, payments' fallback
    result = run([page(1, at, recipient=None), page(2, at, recipient="Gone")])
    team = result.teams[0]
    assert (team.tally.night_pages, team.zone_assumed) == (2, 2)
    assert result.notes == (
        "payments: 2 page(s) had no recipient of known zone; their night was judged in "
        "Europe/Berlin",
    )


def test_a_team_without_members_falls_back_to_utc() -> None:
    at = datetime(2026, 1, 6, 23, 30, tzinfo=UTC)
    result = run([page(1, at, team="search", recipient=None)])
    assert result.teams[0].tally.night_pages == 0
    assert result.notes[0].endswith("judged in UTC")


def test_a_page_with_a_known_recipient_needs_no_note() -> None:
    result = run([page(1)])
    assert (result.teams[0].zone_assumed, result.notes) == (0, ())


# Time to acknowledge.


def test_median_time_to_acknowledge_of_an_odd_count() -> None:
    pages = [
        page(i, events=[ack(NOON, timedelta(seconds=s))]) for i, s in enumerate((600, 60, 120))
    ]
    assert run(pages).teams[0].tally.median_ack_seconds == 120


def test_median_of_an_even_count_is_the_mean_of_the_middle_two() -> None:
    pages = [page(i, events=[ack(NOON, timedelta(seconds=s))]) for i, s in enumerate((60, 120))]
    assert run(pages).teams[0].tally.median_ack_seconds == 90


def test_the_first_acknowledgement_counts_and_unacknowledged_pages_are_left_out() -> None:
    twice = page(1, events=[ack(NOON, timedelta(minutes=5)), ack(NOON, timedelta(minutes=1))])
    resolved_only = page(2, events=[EventFact("resolved", NOON + timedelta(minutes=30))])
    tally = run([twice, resolved_only, page(3)]).teams[0].tally
    assert (tally.acknowledged, tally.median_ack_seconds) == (1, 60)


def test_no_acknowledgement_no_median() -> None:
    assert run([page(1)]).teams[0].tally.median_ack_seconds is None


# Rates.


def test_misroute_and_false_positive_rates() -> None:
    pages = [
        page(1, events=[misrouted("search")]),
        page(2, events=[not_actionable()]),
        page(3, events=[not_actionable()]),
        page(4),
    ]
    tally = run(pages).teams[0].tally
    assert (tally.misrouted, tally.not_actionable) == (1, 2)
    assert (tally.misroute_rate, tally.false_positive_rate) == (0.25, 0.5)


def test_the_last_feedback_is_the_verdict() -> None:
    corrected = page(
        1,
        events=[
            EventFact(MISROUTED, NOON + timedelta(minutes=1), "search"),
            EventFact(NOT_ACTIONABLE, NOON + timedelta(minutes=2)),
        ],
    )
    tally = run([corrected]).teams[0].tally
    assert (tally.misrouted, tally.not_actionable) == (0, 1)


def test_a_team_with_no_pages_is_listed_with_zero_rates() -> None:
    result = report([], SINCE, WEEK_LATER, ZONES, teams=["search"])
    (team,) = result.teams
    assert (team.team, team.tally.pages, team.tally.misroute_rate) == ("search", 0, 0.0)
    assert team.tally.false_positive_rate == 0.0


def test_only_pages_created_in_the_window_count() -> None:
    pages = [
        page(1, SINCE - timedelta(seconds=1)),
        page(2, SINCE),
        page(3, WEEK_LATER - timedelta(seconds=1)),
        page(4, WEEK_LATER),
    ]
    assert run(pages).teams[0].tally.pages == 2


def test_gates_are_per_service_and_a_page_without_gate_is_the_deploy() -> None:
    pages = [
        page(1),
        page(2, team="search", service="search-api"),
        page(3, gate=None),
    ]
    gates = {(g.service, g.gate): g.tally.pages for g in run(pages).gates}
    assert gates == {
        ("checkout", "health"): 1,
        ("search-api", "health"): 1,
        ("checkout", "deploy"): 1,
    }


# Anti-patterns, each at its threshold and just below.


def _gate_pages(total: int, not_actionable_count: int) -> list[PageFact]:
    return [
        page(i, events=[not_actionable()] if i < not_actionable_count else []) for i in range(total)
    ]


@pytest.mark.parametrize(
    ("total", "noise", "flagged"),
    [(4, 2, True), (5, 2, False), (3, 3, True), (2, 2, False), (9, 4, False), (10, 5, True)],
)
def test_a_gate_that_pages_without_cause(total: int, noise: int, flagged: bool) -> None:
    found = kinds(run(_gate_pages(total, noise)), FindingKind.NOISY_GATE)
    assert bool(found) is flagged
    if flagged:
        assert found[0].subject == "checkout/health"
        assert f"{noise} of {total} pages" in found[0].message


def _ownership_pages(total: int, wrong: Sequence[str]) -> list[PageFact]:
    return [page(i, events=[misrouted(wrong[i])] if i < len(wrong) else []) for i in range(total)]


@pytest.mark.parametrize(
    ("total", "wrong", "flagged"),
    [
        (10, ["search", "search", "ledger"], True),  # 30 %
        (7, ["search", "search"], False),  # 28.6 %
        (3, ["search"], True),  # 33 %, the fewest pages that count
        (2, ["search", "search"], False),  # 100 %, but too few pages
    ],
)
def test_an_ownership_that_pages_the_wrong_team(
    total: int, wrong: list[str], flagged: bool
) -> None:
    found = kinds(run(_ownership_pages(total, wrong)), FindingKind.MISROUTED_OWNERSHIP)
    assert bool(found) is flagged
    if flagged:
        assert found[0].subject == "checkout → payments"
        assert f"{len(wrong)} of {total} pages" in found[0].message
        assert "most to search" in found[0].message


def test_the_team_rerouted_to_most_is_named_and_a_tie_goes_to_the_first_name() -> None:
    most = kinds(
        run(_ownership_pages(4, ["search", "ledger", "ledger"])), FindingKind.MISROUTED_OWNERSHIP
    )
    assert "most to ledger (2)" in most[0].message
    tie = kinds(run(_ownership_pages(4, ["search", "ledger"])), FindingKind.MISROUTED_OWNERSHIP)
    assert "most to ledger (1)" in tie[0].message


def _night_pages(count: int) -> list[PageFact]:
    # 01:00 in Berlin on successive nights.
    return [page(i, datetime(2026, 1, 6 + i % 5, 0, 0, tzinfo=UTC)) for i in range(count)]


@pytest.mark.parametrize(("count", "flagged"), [(3, True), (2, False)])
def test_a_team_over_its_night_budget_in_a_week(count: int, flagged: bool) -> None:
    found = kinds(run(_night_pages(count)), FindingKind.NIGHT_BUDGET)
    assert bool(found) is flagged
    if flagged:
        assert found[0].subject == "payments"
        assert (
            "paged at night 3 times in 7 days, over its budget of 2 (2 a week)" in found[0].message
        )


@pytest.mark.parametrize(("count", "flagged"), [(9, True), (8, False)])
def test_the_budget_scales_with_the_window(count: int, flagged: bool) -> None:
    # 30 days at 2 a week: 8.57 night pages allowed.
    result = run(_night_pages(count), until=SINCE + timedelta(days=30))
    assert result.teams[0].night_budget == pytest.approx(60 / 7)
    assert bool(kinds(result, FindingKind.NIGHT_BUDGET)) is flagged


def test_the_budget_is_a_parameter() -> None:
    assert kinds(run(_night_pages(1), budget=0), FindingKind.NIGHT_BUDGET)
    assert not kinds(run(_night_pages(3), budget=3), FindingKind.NIGHT_BUDGET)


def test_day_pages_never_spend_the_night_budget() -> None:
    assert not kinds(run([page(i) for i in range(10)]), FindingKind.NIGHT_BUDGET)


def test_the_window_must_be_aware_and_forward() -> None:
    with pytest.raises(ValueError, match="aware"):
        report([], SINCE.replace(tzinfo=None), WEEK_LATER, ZONES)
    with pytest.raises(ValueError, match="end after"):
        report([], WEEK_LATER, SINCE, ZONES)


# The CLI's window.


@pytest.mark.parametrize(
    ("text", "window"),
    [
        ("30d", timedelta(days=30)),
        ("12h", timedelta(hours=12)),
        ("2w", timedelta(weeks=2)),
        ("1d12h", timedelta(days=1, hours=12)),
        ("2w3d", timedelta(days=17)),
    ],
)
def test_window_lengths(text: str, window: timedelta) -> None:
    assert parse_window(text) == window


@pytest.mark.parametrize("text", ["0d", "0w", "soon", "-3d", "3d2w", "2w2w", ""])
def test_bad_window_lengths(text: str) -> None:
    with pytest.raises(ValueError):
        parse_window(text)


# Properties.

TEAMS = ("payments", "search", "ledger")
ACTIONS = (ACKNOWLEDGED, "resolved", MISROUTED, NOT_ACTIONABLE)


@st.composite
def page_facts(draw: st.DrawFn) -> list[PageFact]:
    count = draw(st.integers(0, 25))
    facts = []
    for i in range(count):
        at = SINCE + timedelta(seconds=draw(st.integers(-86_400, 8 * 86_400)))
        events = tuple(
            EventFact(
                draw(st.sampled_from(ACTIONS)),
                at + timedelta(seconds=draw(st.integers(0, 86_400))),
                draw(st.sampled_from((None, *TEAMS))),
            )
            for _ in range(draw(st.integers(0, 4)))
        )
        facts.append(
            PageFact(
                i,
                draw(st.sampled_from(TEAMS)),
                draw(st.sampled_from(("checkout", "search-api"))),
                draw(st.sampled_from((None, "health", "soak"))),
                at,
                draw(st.sampled_from((None, "Ada", "Ben", "Chen", "Gone"))),
                events,
            )
        )
    return facts


@given(page_facts(), st.floats(0, 20))
def test_rates_are_shares_and_counts_add_up(pages: list[PageFact], budget: float) -> None:
    result = run(pages, budget=budget)
    in_window = [p for p in pages if SINCE <= p.created_at < WEEK_LATER]
    tallies = [t.tally for t in result.teams] + [g.tally for g in result.gates]
    for tally in tallies:
        assert 0 <= tally.misroute_rate <= 1
        assert 0 <= tally.false_positive_rate <= 1
        assert tally.misroute_rate + tally.false_positive_rate <= 1
        assert tally.night_pages <= tally.pages
        assert tally.acknowledged <= tally.pages
        if tally.median_ack_seconds is not None:
            assert tally.median_ack_seconds >= 0
    for field in ("pages", "night_pages", "acknowledged", "misrouted", "not_actionable"):
        by_team = sum(getattr(t.tally, field) for t in result.teams)
        by_gate = sum(getattr(g.tally, field) for g in result.gates)
        assert by_team == by_gate
    assert sum(t.tally.pages for t in result.teams) == len(in_window)
    assert sum(t.zone_assumed for t in result.teams) == sum(
        1 for p in in_window if p.recipient not in ZONES
    )
