"""The one time rule: offsets, durations either way, and a zone-less time on the reader's
clocks, refused where those clocks skip or repeat it."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rollout.api.deps import WINDOW_PATTERN
from rollout.cli.zone import window_text
from rollout.durations import parse_window
from rollout.times import TimeError, parse_since, parse_time, shown

NOW = datetime(2026, 3, 28, 12, 0, tzinfo=UTC)
PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-12-24T18:00+01:00", datetime(2026, 12, 24, 17, tzinfo=UTC)),
        ("2026-12-24T18:00:00-05:30", datetime(2026, 12, 24, 23, 30, tzinfo=UTC)),
        ("2026-12-24T18:00Z", datetime(2026, 12, 24, 18, tzinfo=UTC)),
        (" 2026-12-24 18:00Z ", datetime(2026, 12, 24, 18, tzinfo=UTC)),
        # No zone: Paris's clocks, winter (+01:00) and summer (+02:00).
        ("2026-12-24T18:00", datetime(2026, 12, 24, 17, tzinfo=UTC)),
        ("2026-07-01T18:00", datetime(2026, 7, 1, 16, tzinfo=UTC)),
        ("2026-07-01", datetime(2026, 6, 30, 22, tzinfo=UTC)),
        ("2h", NOW + timedelta(hours=2)),
        ("90m", NOW + timedelta(minutes=90)),
        ("1d", NOW + timedelta(days=1)),
        ("2w3d", NOW + timedelta(days=17)),
        ("now", NOW),
    ],
)
def test_every_form_names_one_instant(text: str, expected: datetime) -> None:
    parsed = parse_time(text, NOW, PARIS)
    assert parsed == expected
    assert parsed.utcoffset() == timedelta(0)


def test_a_duration_reaches_back_for_since() -> None:
    assert parse_time("7d", NOW, PARIS, past=True) == NOW - timedelta(days=7)
    assert parse_since("7d", NOW, PARIS) == timedelta(days=7)
    assert parse_since("2026-03-28T10:00Z", NOW, PARIS) == timedelta(hours=2)


def test_since_must_be_in_the_past() -> None:
    with pytest.raises(TimeError, match="is not in the past"):
        parse_since("2026-03-29T10:00Z", NOW, PARIS)


def test_the_zone_is_the_readers_not_the_servers() -> None:
    assert parse_time("2026-03-28T08:00", NOW, NEW_YORK) == datetime(2026, 3, 28, 12, tzinfo=UTC)
    assert parse_time("2026-03-28T08:00", NOW, UTC) == datetime(2026, 3, 28, 8, tzinfo=UTC)


def test_a_time_the_clocks_skip_is_refused_with_the_offset_to_give() -> None:
    # Paris goes from 02:00 to 03:00 on 29 March 2026.
    with pytest.raises(TimeError, match=r"does not exist in Europe/Paris .*offset"):
        parse_time("2026-03-29T02:30", NOW, PARIS)
    assert parse_time("2026-03-29T03:00", NOW, PARIS) == datetime(2026, 3, 29, 1, tzinfo=UTC)
    assert parse_time("2026-03-29T01:59", NOW, PARIS) == datetime(2026, 3, 29, 0, 59, tzinfo=UTC)


def test_a_time_the_clocks_show_twice_is_refused_naming_both_offsets() -> None:
    # Paris goes back from 03:00 to 02:00 on 25 October 2026.
    with pytest.raises(TimeError, match=r"happens twice in Europe/Paris.*\+02:00 or \+01:00"):
        parse_time("2026-10-25T02:30", NOW, PARIS)
    assert parse_time("2026-10-25T02:30+01:00", NOW, PARIS) == datetime(
        2026, 10, 25, 1, 30, tzinfo=UTC
    )


@pytest.mark.parametrize("text", ["tomorrow", "", "2h ago", "2026-13-01", "-2h", "1h1h"])
def test_anything_else_is_refused_naming_the_forms(text: str) -> None:
    with pytest.raises(TimeError, match="use ISO 8601") as refused:
        parse_time(text, NOW, PARIS)
    assert "\n" not in str(refused.value)


def test_a_long_value_is_cut_in_the_message() -> None:
    with pytest.raises(TimeError) as refused:
        parse_time("x" * 10_000, NOW, PARIS)
    assert len(str(refused.value)) < 250


def test_out_of_range_is_refused_not_raised() -> None:
    with pytest.raises(TimeError, match="out of range"):
        parse_time("9999w", datetime(9990, 1, 1, tzinfo=UTC), UTC)
    with pytest.raises(TimeError, match="out of range"):
        parse_time("9999-12-31T23:59-05:00", NOW, UTC)


@given(
    st.datetimes(
        min_value=datetime(1971, 1, 1),
        max_value=datetime(2100, 1, 1),
        timezones=st.sampled_from([UTC, PARIS, NEW_YORK, timezone(timedelta(hours=5, minutes=45))]),
    )
)
def test_an_instant_written_with_its_offset_reads_back_as_itself(when: datetime) -> None:
    # Against UTC: Python never finds an ambiguous wall-clock time equal across zones.
    assert parse_time(when.isoformat(), NOW, NEW_YORK) == when.astimezone(UTC)


@given(
    st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2100, 1, 1)),
    st.sampled_from([PARIS, NEW_YORK, UTC]),
)
def test_a_wall_clock_time_is_read_on_that_zones_clocks_or_refused(
    naive: datetime, zone: ZoneInfo
) -> None:
    try:
        parsed = parse_time(naive.isoformat(), NOW, zone)
    except TimeError as refusal:
        # Only where the clocks skip or repeat the time.
        fold0, fold1 = naive.replace(tzinfo=zone), naive.replace(tzinfo=zone, fold=1)
        assert fold0.utcoffset() != fold1.utcoffset(), refusal
    else:
        assert parsed.astimezone(zone).replace(tzinfo=None) == naive


@given(st.integers(min_value=1, max_value=10**7))
def test_a_duration_in_seconds_is_that_far_either_way(seconds: int) -> None:
    ahead = parse_time(f"{seconds}s", NOW, PARIS)
    back = parse_time(f"{seconds}s", NOW, PARIS, past=True)
    assert ahead - NOW == NOW - back == timedelta(seconds=seconds)


def test_shown_carries_the_zone() -> None:
    at = datetime(2026, 7, 1, 16, 5, 9, tzinfo=UTC)
    assert shown(at, PARIS) == "2026-07-01 18:05 CEST"
    assert shown(at, UTC, seconds=True) == "2026-07-01 16:05:09 UTC"


def test_a_zero_duration_is_now_so_no_since() -> None:
    assert parse_time("0s", NOW, PARIS) == NOW
    with pytest.raises(TimeError, match="'0d' is not in the past"):
        parse_since("0d", NOW, PARIS)


@given(st.integers(min_value=1, max_value=20 * 365 * 86_400))
def test_a_since_time_goes_to_the_api_as_a_window_it_takes(seconds: int) -> None:
    sent = window_text("2026-01-01T00:00Z", timedelta(seconds=seconds))
    assert re.fullmatch(WINDOW_PATTERN, sent), sent
    assert parse_window(sent) == timedelta(seconds=seconds)
    assert window_text(" 2w ", timedelta(days=14)) == "2w"
