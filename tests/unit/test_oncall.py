"""On-call: shifts in local time across DST, overrides, the rest rule, routing, escalation."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rollout.domain.oncall import (
    Assignment,
    EscalationStep,
    EscalationTarget,
    IssueLevel,
    Member,
    OnCall,
    Override,
    Rest,
    Role,
    Rotation,
    Shift,
    check_rotation,
    escalations_due,
    next_escalation_at,
    nth_shift,
    rest_after_page,
    route,
    shift_at,
    who_is_on_call,
)

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
LORD_HOWE = ZoneInfo("Australia/Lord_Howe")  # DST moves the clock by 30 minutes
KOLKATA = ZoneInfo("Asia/Kolkata")  # no DST, a half-hour offset
ZONES = [BERLIN, NEW_YORK, LORD_HOWE, KOLKATA, ZoneInfo("UTC")]

PEOPLE = {
    name: Member(name, zone)
    for name, zone in [
        ("Ada", BERLIN),
        ("Ben", NEW_YORK),
        ("Chen", LORD_HOWE),
        ("Dev", KOLKATA),
        ("Eve", BERLIN),
        ("Femi", NEW_YORK),
        ("Gus", LORD_HOWE),
        ("Hana", KOLKATA),
    ]
}
ADA, BEN, CHEN, DEV = (PEOPLE[n] for n in ("Ada", "Ben", "Chen", "Dev"))

# DST changes in 2026, as UTC instants: the property tests look around them on purpose.
TRANSITIONS = [
    datetime(2026, 3, 29, 1, 0, tzinfo=UTC),  # Berlin springs forward
    datetime(2026, 10, 25, 1, 0, tzinfo=UTC),  # Berlin falls back
    datetime(2026, 3, 8, 7, 0, tzinfo=UTC),  # New York springs forward
    datetime(2026, 11, 1, 6, 0, tzinfo=UTC),  # New York falls back
    datetime(2026, 4, 4, 15, 0, tzinfo=UTC),  # Lord Howe falls back half an hour
    datetime(2026, 10, 3, 15, 30, tzinfo=UTC),  # Lord Howe springs forward half an hour
]

SHIFTS = [timedelta(hours=h) for h in (3, 4, 6, 8, 12)] + [timedelta(days=d) for d in (1, 2, 7, 14)]

US = timedelta(microseconds=1)

# Fewer examples than the default keep the file fast; no deadline keeps a busy machine from
# failing a test for being slow rather than wrong.
properties = settings(max_examples=60, deadline=None)

anywhere = st.datetimes(
    min_value=datetime(2024, 1, 1),
    max_value=datetime(2029, 12, 31),
    timezones=st.sampled_from(ZONES),
)
near_dst = st.builds(
    lambda at, minutes, zone: (at + timedelta(minutes=minutes)).astimezone(zone),
    st.sampled_from(TRANSITIONS),
    st.integers(-3 * 24 * 60, 3 * 24 * 60),
    st.sampled_from(ZONES),
)
instants = st.one_of(anywhere, near_dst)
# Hours 0–3 include handoffs the clock skips or repeats on DST nights.
handoffs = st.builds(time, st.sampled_from([0, 1, 2, 3, 9, 17, 23]), st.sampled_from([0, 15, 30]))


@st.composite
def rotations(
    draw: st.DrawFn, name: str = "payments-primary", shifts: list[timedelta] = SHIFTS
) -> Rotation:
    names = draw(st.lists(st.sampled_from(sorted(PEOPLE)), min_size=3, max_size=6, unique=True))
    return Rotation(
        name=name,
        members=tuple(PEOPLE[n] for n in names),
        shift=draw(st.sampled_from(shifts)),
        handoff=draw(handoffs),
        start=draw(st.dates(date(2025, 6, 1), date(2027, 6, 1))),
        timezone=draw(st.sampled_from(ZONES)),
    )


primaries = rotations("payments-primary")
secondaries = rotations("payments-secondary")
whole_days = rotations(shifts=[s for s in SHIFTS if s >= timedelta(days=1)])
sub_day = rotations(shifts=[s for s in SHIFTS if s < timedelta(days=1)])


def rotation(
    shift: timedelta = timedelta(days=1),
    handoff: time = time(9, 0),
    zone: ZoneInfo = BERLIN,
    start: date = date(2026, 3, 2),
    members: tuple[Member, ...] = (ADA, BEN, CHEN),
    name: str = "payments-primary",
) -> Rotation:
    return Rotation(name, members, shift, handoff, start, zone)


def local(moment: datetime, zone: ZoneInfo) -> datetime:
    # Through UTC: astimezone() to a datetime's own tzinfo converts nothing.
    return moment.astimezone(UTC).astimezone(zone).replace(tzinfo=None)


def exists(wall: datetime, zone: ZoneInfo) -> bool:
    return local(wall.replace(tzinfo=zone), zone) == wall


def utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)


# --- shifts: properties -----------------------------------------------------------------


@properties
@given(primaries, secondaries, instants)
def test_every_instant_has_exactly_one_primary_and_it_is_a_member(
    primary: Rotation, secondary: Rotation, at: datetime
) -> None:
    shift = shift_at(primary, at)
    assert shift.start <= utc(at) < shift.end
    assert shift.member == primary.members[shift.index % len(primary.members)]
    on_call = who_is_on_call(primary, secondary, at, [], [])
    assert on_call.primary.member in primary.members
    assert on_call.primary.role is Role.PRIMARY
    assert on_call.primary.member == shift.member
    assert on_call.secondary.member in secondary.members


@properties
@given(primaries, instants)
def test_consecutive_shifts_cycle_through_the_members_in_order(
    rotation: Rotation, at: datetime
) -> None:
    shift = shift_at(rotation, at)
    after = shift_at(rotation, shift.end)
    before = shift_at(rotation, shift.start - US)
    members = list(rotation.members)
    position = members.index(shift.member)
    assert after.index == shift.index + 1
    assert after.start == shift.end
    assert after.member == members[(position + 1) % len(members)]
    assert before.index == shift.index - 1
    assert before.end == shift.start
    assert before.member == members[position - 1]
    assert nth_shift(rotation, shift.index) == shift


@properties
@given(whole_days, instants)
def test_whole_day_shifts_hand_off_at_the_wall_clock_time(rotation: Rotation, at: datetime) -> None:
    shift = shift_at(rotation, at)
    for moment, index in ((shift.start, shift.index), (shift.end, shift.index + 1)):
        day = rotation.start + index * rotation.shift
        _assert_handoff_at(moment, datetime.combine(day, rotation.handoff), rotation.timezone)


@properties
@given(sub_day, instants)
def test_sub_day_slots_run_in_elapsed_time_and_the_last_absorbs_dst(
    rotation: Rotation, at: datetime
) -> None:
    slots = timedelta(days=1) // rotation.shift
    shift = shift_at(rotation, at)
    day_index, slot = divmod(shift.index, slots)
    day = rotation.start + timedelta(days=day_index)
    if slot == 0:
        _assert_handoff_at(shift.start, datetime.combine(day, rotation.handoff), rotation.timezone)
    if slot == slots - 1:
        next_handoff = datetime.combine(day + timedelta(days=1), rotation.handoff)
        _assert_handoff_at(shift.end, next_handoff, rotation.timezone)
        assert abs(shift.end - shift.start - rotation.shift) <= timedelta(hours=1)
    else:
        assert shift.end - shift.start == rotation.shift


def _assert_handoff_at(moment: datetime, wall: datetime, zone: ZoneInfo) -> None:
    if exists(wall, zone):
        # The first time the clock reads it: fold=0 is the earlier of two readings.
        assert moment == wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
        assert local(moment, zone) == wall
    else:
        # Skipped by a spring-forward: the handoff is the moment the gap ends.
        assert local(moment, zone) > wall
        assert local(moment - timedelta(seconds=1), zone) < wall


# --- shifts: examples across DST ------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "day", "hours"),
    [(BERLIN, date(2026, 3, 29), 23), (NEW_YORK, date(2026, 11, 1), 25)],
)
def test_a_daily_09_00_handoff_stays_at_09_00_across_dst(
    zone: ZoneInfo, day: date, hours: int
) -> None:
    daily = rotation(zone=zone)
    before = shift_at(daily, datetime.combine(day, time(8, 59), zone))
    after = shift_at(daily, datetime.combine(day, time(9, 0), zone))
    assert local(before.start, zone) == datetime.combine(day - timedelta(days=1), time(9, 0))
    assert local(before.end, zone) == datetime.combine(day, time(9, 0))
    assert before.end - before.start == timedelta(hours=hours)
    assert after.start == before.end
    assert local(after.end, zone) == datetime.combine(day + timedelta(days=1), time(9, 0))
    assert after.end - after.start == timedelta(hours=24)


def test_a_weekly_shift_across_spring_forward_is_an_hour_short() -> None:
    weekly = rotation(shift=timedelta(days=7), start=date(2026, 3, 23))  # a Monday
    shift = shift_at(weekly, datetime(2026, 3, 29, 12, 0, tzinfo=BERLIN))
    assert (shift.member, shift.index) == (ADA, 0)
    assert local(shift.start, BERLIN) == datetime(2026, 3, 23, 9, 0)
    assert local(shift.end, BERLIN) == datetime(2026, 3, 30, 9, 0)
    assert shift.end - shift.start == timedelta(days=7, hours=-1)


def test_twelve_hour_shifts_the_night_slot_absorbs_dst() -> None:
    berlin = rotation(shift=timedelta(hours=12))
    night = shift_at(berlin, datetime(2026, 3, 29, 2, 0, tzinfo=BERLIN))
    assert local(night.start, BERLIN) == datetime(2026, 3, 28, 21, 0)
    assert local(night.end, BERLIN) == datetime(2026, 3, 29, 9, 0)
    assert night.end - night.start == timedelta(hours=11)
    new_york = rotation(shift=timedelta(hours=12), zone=NEW_YORK)
    night = shift_at(new_york, datetime(2026, 11, 1, 3, 0, tzinfo=NEW_YORK))
    assert local(night.end, NEW_YORK) == datetime(2026, 11, 1, 9, 0)
    assert night.end - night.start == timedelta(hours=13)


def test_sub_day_slots_count_elapsed_time_from_the_days_handoff() -> None:
    # Midnight handoff, 12 h: on spring-forward day the second slot starts 12 h after
    # midnight, which the clock shows as 13:00, and runs the 11 h left to midnight.
    midnight = rotation(shift=timedelta(hours=12), handoff=time(0, 0))
    day = shift_at(midnight, datetime(2026, 3, 29, 12, 30, tzinfo=BERLIN))
    evening = shift_at(midnight, datetime(2026, 3, 29, 13, 0, tzinfo=BERLIN))
    assert local(day.start, BERLIN) == datetime(2026, 3, 29, 0, 0)
    assert local(day.end, BERLIN) == datetime(2026, 3, 29, 13, 0)
    assert day.end - day.start == timedelta(hours=12)
    assert evening.end - evening.start == timedelta(hours=11)
    assert local(shift_at(midnight, evening.end).end, BERLIN) == datetime(2026, 3, 30, 12, 0)


def test_a_handoff_the_clock_skips_happens_when_the_gap_ends() -> None:
    # Berlin jumps 02:00 → 03:00 on 2026-03-29: a 02:30 handoff happens at 03:00 CEST.
    berlin = rotation(handoff=time(2, 30))
    shift = shift_at(berlin, datetime(2026, 3, 29, 12, 0, tzinfo=BERLIN))
    assert shift.start == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    assert local(shift.start, BERLIN) == datetime(2026, 3, 29, 3, 0)
    assert local(shift.end, BERLIN) == datetime(2026, 3, 30, 2, 30)
    assert shift_at(berlin, shift.start - US).end == shift.start
    # Lord Howe jumps 02:00 → 02:30 on 2026-10-04: a 02:15 handoff happens at 02:30.
    howe = rotation(handoff=time(2, 15), zone=LORD_HOWE)
    shift = shift_at(howe, datetime(2026, 10, 4, 12, 0, tzinfo=LORD_HOWE))
    assert local(shift.start, LORD_HOWE) == datetime(2026, 10, 4, 2, 30)
    assert shift.end - shift.start == timedelta(hours=23, minutes=45)


def test_a_handoff_the_clock_shows_twice_happens_the_first_time() -> None:
    # New York repeats 01:00–02:00 on 2026-11-01: 01:30 EDT (05:30 UTC) comes first.
    new_york = rotation(handoff=time(1, 30), zone=NEW_YORK)
    shift = shift_at(new_york, datetime(2026, 11, 1, 6, 45, tzinfo=UTC))  # 01:45 EST
    assert shift.start == datetime(2026, 11, 1, 5, 30, tzinfo=UTC)
    assert local(shift.end, NEW_YORK) == datetime(2026, 11, 2, 1, 30)
    assert shift.end - shift.start == timedelta(hours=25)


def test_before_start_the_rotation_runs_backwards() -> None:
    daily = rotation()
    first = shift_at(daily, datetime(2026, 3, 2, 9, 0, tzinfo=BERLIN))
    assert (first.index, first.member) == (0, ADA)
    just_before = shift_at(daily, datetime(2026, 3, 2, 8, 59, tzinfo=BERLIN))
    assert (just_before.index, just_before.member) == (-1, CHEN)
    assert (shift_at(daily, datetime(2026, 2, 28, 12, 0, tzinfo=BERLIN)).member) == BEN


def test_the_shift_is_in_the_reason() -> None:
    on_call = who_is_on_call(
        rotation(),
        rotation(name="payments-secondary", members=(DEV, PEOPLE["Eve"], BEN)),
        datetime(2026, 3, 2, 12, 0, tzinfo=UTC),
        [],
        [],
    )
    assert on_call.primary.reason == (
        "rotation payments-primary: Ada's shift "
        "(Mon 2026-03-02 09:00 → Tue 2026-03-03 09:00 Europe/Berlin)"
    )


# --- overrides --------------------------------------------------------------------------

hours = st.integers(0, 72).map(lambda h: timedelta(hours=h))
minutes = st.integers(-4 * 24 * 60, 4 * 24 * 60).map(lambda m: timedelta(minutes=m))


@properties
@given(primaries, secondaries, instants, hours, hours, st.sampled_from(sorted(PEOPLE)), minutes)
def test_an_override_wins_for_every_instant_inside_it_and_not_outside(
    primary: Rotation,
    secondary: Rotation,
    around: datetime,
    back: timedelta,
    ahead: timedelta,
    name: str,
    offset: timedelta,
) -> None:
    cover = PEOPLE[name]
    override = Override(primary.name, cover, around - back, around + ahead + timedelta(minutes=1))
    elsewhere = Override(secondary.name, cover, around - back, around + ahead + timedelta(days=1))
    at = utc(around) + offset
    # The edges in UTC: a microsecond off a wall-clock time can land in a DST gap, which
    # zoneinfo reads with the offset before the jump, an hour away from the edge.
    start, end = utc(override.start), utc(override.end)
    for moment in (at, start, start - US, end, end - US):
        inside = start <= moment < end
        on_call = who_is_on_call(primary, secondary, moment, [override, elsewhere], [])
        expected = cover if inside else shift_at(primary, moment).member
        assert on_call.primary.member == expected
        assert on_call.primary.reason.startswith("override: ") == inside


@properties
@given(primaries, instants, st.integers(0, 5))
def test_an_override_that_replaces_someone_applies_only_during_their_shifts(
    primary: Rotation, at: datetime, which: int
) -> None:
    replaced = primary.members[which % len(primary.members)]
    cover = next(m for m in PEOPLE.values() if m not in primary.members)
    override = Override(
        primary.name,
        cover,
        at - timedelta(days=30),
        at + timedelta(days=30),
        replaces=replaced.name,
    )
    on_call = who_is_on_call(primary, primary_as_secondary(primary), at, [override], [])
    scheduled = shift_at(primary, at).member
    assert on_call.primary.member == (cover if scheduled == replaced else scheduled)


def primary_as_secondary(primary: Rotation) -> Rotation:
    return Rotation(
        "payments-secondary",
        primary.members,
        primary.shift,
        primary.handoff,
        primary.start,
        primary.timezone,
    )


def test_the_override_is_said_in_the_reason_and_the_later_one_wins() -> None:
    daily = rotation()
    at = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    week = Override("payments-primary", BEN, at - timedelta(days=1), at + timedelta(days=6))
    afternoon = Override(
        "payments-primary", DEV, at - timedelta(hours=1), datetime(2026, 3, 2, 18, 0, tzinfo=UTC)
    )
    secondary = rotation(name="payments-secondary", members=(CHEN, PEOPLE["Eve"], BEN))
    on_call = who_is_on_call(daily, secondary, at, [afternoon, week], [])
    assert on_call.primary == Assignment(
        DEV, Role.PRIMARY, "override: Dev covers Ada until Mon 2026-03-02 19:00 Europe/Berlin"
    )
    later = who_is_on_call(daily, secondary, datetime(2026, 3, 2, 18, 0, tzinfo=UTC), [week], [])
    assert later.primary.member == BEN


# --- rests and the secondary ------------------------------------------------------------


@st.composite
def rests(draw: st.DrawFn, around: datetime) -> list[Rest]:
    names = draw(st.lists(st.sampled_from(sorted(PEOPLE)), max_size=5, unique=True))
    return [
        Rest(
            name,
            around - draw(hours),
            around + draw(hours) + timedelta(minutes=1),
            reason=f"{name} is off",
        )
        for name in names
    ]


@properties
@given(st.data(), primaries, secondaries, instants, minutes)
def test_a_resting_person_is_never_on_call_and_primary_is_never_secondary(
    data: st.DataObject, primary: Rotation, secondary: Rotation, around: datetime, offset: timedelta
) -> None:
    resting = data.draw(rests(utc(around)))
    overrides = data.draw(
        st.lists(
            st.builds(
                Override,
                st.sampled_from([primary.name, secondary.name]),
                st.sampled_from(list(PEOPLE.values())),
                st.just(utc(around) - timedelta(hours=6)),
                st.just(utc(around) + timedelta(hours=6)),
                st.sampled_from([None, *PEOPLE]),
            ),
            max_size=2,
        )
    )
    at = utc(around) + offset
    on_call = who_is_on_call(primary, secondary, at, overrides, resting)

    def rests_now(member: Member) -> bool:
        return any(r.member == member.name and r.start <= at < r.end for r in resting)

    first, second = on_call.primary.member, on_call.secondary.member
    assert first != second
    if not all(rests_now(m) for m in primary.members):
        assert not rests_now(first)
    if not all(rests_now(m) or m == first for m in secondary.members):
        assert not rests_now(second)
    if rests_now(first) or rests_now(second):
        assert "is resting" in on_call.primary.reason + on_call.secondary.reason


@properties
@given(primaries, instants)
def test_one_rotation_for_both_roles_still_gives_two_people(
    primary: Rotation, at: datetime
) -> None:
    on_call = who_is_on_call(primary, primary_as_secondary(primary), at, [], [])
    members = list(primary.members)
    first = members.index(on_call.primary.member)
    assert on_call.secondary.member == members[(first + 1) % len(members)]
    assert "is already primary" in on_call.secondary.reason


def test_the_rest_rule_hands_the_shift_to_the_next_member_and_says_who_covers() -> None:
    # Ada is paged for a P0 at 03:12 on Tuesday (her Berlin time); her shift starts at 09:00.
    daily = rotation(start=date(2026, 3, 3))  # Tue: Ada, Wed: Ben, Thu: Chen, Fri: Ada ...
    secondary = rotation(name="payments-secondary", members=(DEV, PEOPLE["Eve"], BEN))
    rest = rest_after_page(ADA, datetime(2026, 3, 3, 3, 12, tzinfo=BERLIN), "P0")
    assert rest is not None
    wednesday = datetime(2026, 3, 4, 5, 59, tzinfo=BERLIN)
    assert shift_at(daily, wednesday).member == ADA
    on_call = who_is_on_call(daily, secondary, wednesday, [], [rest])
    assert on_call.primary.member == BEN
    assert on_call.primary.reason == (
        "rotation payments-primary: Ada's shift (Tue 2026-03-03 09:00 → Wed 2026-03-04 "
        "09:00 Europe/Berlin); rest rule: Ada is resting (paged for a P0 at Tue 2026-03-03 "
        "03:12 Europe/Berlin, off on-call until Wed 2026-03-04 06:00 Europe/Berlin); Ben "
        "covers until Wed 2026-03-04 06:00 Europe/Berlin"
    )
    back = who_is_on_call(daily, secondary, datetime(2026, 3, 4, 6, 0, tzinfo=BERLIN), [], [rest])
    assert back.primary.member == ADA


def test_a_resting_override_hands_back_to_the_scheduled_member() -> None:
    daily = rotation()
    at = datetime(2026, 3, 2, 12, 0, tzinfo=BERLIN)
    override = Override("payments-primary", DEV, at - timedelta(hours=1), at + timedelta(hours=1))
    rest = Rest("Dev", at - timedelta(hours=2), at + timedelta(days=1), "paged at night")
    secondary = rotation(name="payments-secondary", members=(CHEN, PEOPLE["Eve"], BEN))
    on_call = who_is_on_call(daily, secondary, at, [override], [rest])
    assert on_call.primary.member == ADA
    assert "override: Dev covers Ada" in on_call.primary.reason
    assert "Ada covers until Mon 2026-03-02 13:00 Europe/Berlin" in on_call.primary.reason


def test_when_everyone_rests_the_page_still_reaches_someone_and_says_why() -> None:
    daily = rotation()
    at = datetime(2026, 3, 2, 12, 0, tzinfo=BERLIN)
    everyone = [Rest(n, at - timedelta(hours=1), at + timedelta(hours=1), "off") for n in PEOPLE]
    on_call = who_is_on_call(daily, primary_as_secondary(daily), at, [], everyone)
    assert on_call.primary.member == ADA
    assert "nobody else in payments-primary is free, so Ada stays on call" in (
        on_call.primary.reason
    )
    assert on_call.secondary.member == BEN
    assert "is secondary anyway" in on_call.secondary.reason


# --- the rest rule ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("paged", "rested_until"),
    [
        (datetime(2026, 3, 24, 3, 0), datetime(2026, 3, 25, 6, 0)),  # Tue 03:00 → Wed 06:00
        (datetime(2026, 3, 24, 0, 0), datetime(2026, 3, 25, 6, 0)),  # the night starts at 00:00
        (datetime(2026, 3, 24, 5, 59, 59), datetime(2026, 3, 25, 6, 0)),
        (datetime(2026, 3, 24, 6, 0), None),  # and ends at 06:00
        (datetime(2026, 3, 23, 23, 59), None),  # before midnight is the evening
        (datetime(2026, 3, 24, 14, 0), None),
        # Paged Saturday night before spring-forward: rested until 06:00 CEST on Sunday.
        (datetime(2026, 3, 28, 3, 0), datetime(2026, 3, 29, 6, 0)),
    ],
)
def test_a_p0_at_night_rests_until_06_00_on_the_next_day(
    paged: datetime, rested_until: datetime | None
) -> None:
    paged_at = paged.replace(tzinfo=BERLIN)
    rest = rest_after_page(ADA, paged_at, "P0")
    if rested_until is None:
        assert rest is None
        return
    assert rest is not None
    assert (rest.member, rest.start) == ("Ada", paged_at)
    assert rest.end == rested_until.replace(tzinfo=BERLIN)
    assert local(rest.end, BERLIN) == rested_until
    assert rest.start.tzinfo is UTC and rest.end.tzinfo is UTC


@pytest.mark.parametrize("severity", ["P1", "P2", "P3", "P4"])
def test_only_a_p0_rests_anyone(severity: str) -> None:
    assert rest_after_page(ADA, datetime(2026, 3, 24, 3, 0, tzinfo=BERLIN), severity) is None


def test_the_night_is_the_members_own_not_utcs() -> None:
    # 22:00 UTC is 03:30 in Kolkata and 18:00 in New York.
    at = datetime(2026, 3, 23, 22, 0, tzinfo=UTC)
    rest = rest_after_page(DEV, at, "P0")
    assert rest is not None
    assert local(rest.end, KOLKATA) == datetime(2026, 3, 25, 6, 0)
    assert rest_after_page(BEN, at, "P0") is None
    # 03:00 UTC is night in UTC but 23:00 the evening before in New York.
    assert rest_after_page(BEN, datetime(2026, 3, 24, 3, 0, tzinfo=UTC), "P0") is None


@properties
@given(st.sampled_from(list(PEOPLE.values())), instants)
def test_a_night_p0_always_rests_until_06_00_the_next_local_day(
    member: Member, at: datetime
) -> None:
    rest = rest_after_page(member, at, "P0")
    night = local(at, member.timezone)
    assert (rest is not None) == (night.time() < time(6, 0))
    if rest is not None:
        assert rest.start == utc(at)  # == across zones is False for a repeated hour
        assert local(rest.end, member.timezone) == datetime.combine(
            night.date() + timedelta(days=1), time(6, 0)
        )
        assert timedelta(hours=24) < rest.end - rest.start <= timedelta(hours=31)


def test_an_unknown_severity_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown severity 'SEV1'"):
        rest_after_page(ADA, datetime(2026, 3, 24, 3, 0, tzinfo=BERLIN), "SEV1")


# --- routing ----------------------------------------------------------------------------

ON_CALL = OnCall(
    Assignment(ADA, Role.PRIMARY, "rotation payments-primary: Ada's shift"),
    Assignment(BEN, Role.SECONDARY, "rotation payments-secondary: Ben's shift"),
)
# Wednesday 2026-03-25: 15:00 UTC is 16:00 in Berlin and 11:00 in New York.
WEDNESDAY_AFTERNOON = datetime(2026, 3, 25, 15, 0, tzinfo=UTC)


@pytest.mark.parametrize("severity", ["P0", "P1", "P2", "P3", "P4"])
def test_while_the_primary_works_an_open_p0_new_pages_go_to_the_secondary(severity: str) -> None:
    routed = route(severity, WEDNESDAY_AFTERNOON, ON_CALL, primary_has_open_p0=True)
    assert (routed.member, routed.role) == (BEN, Role.SECONDARY)
    assert routed.reason.startswith("Ada (primary) is working an open P0")


@pytest.mark.parametrize(
    ("severity", "at", "to"),
    [
        ("P3", WEDNESDAY_AFTERNOON, BEN),
        ("P4", WEDNESDAY_AFTERNOON, BEN),
        ("P2", WEDNESDAY_AFTERNOON, ADA),  # urgent: the primary
        ("P0", WEDNESDAY_AFTERNOON, ADA),
        # Business hours are the secondary's, in New York: 09:00 ≤ t < 17:00.
        ("P3", datetime(2026, 3, 25, 9, 0, tzinfo=NEW_YORK), BEN),
        ("P3", datetime(2026, 3, 25, 8, 59, tzinfo=NEW_YORK), ADA),
        ("P3", datetime(2026, 3, 25, 16, 59, tzinfo=NEW_YORK), BEN),
        ("P3", datetime(2026, 3, 25, 17, 0, tzinfo=NEW_YORK), ADA),
        # 14:00 in Berlin is business hours there, but 09:00 in New York is not yet.
        ("P3", datetime(2026, 3, 25, 12, 0, tzinfo=UTC), ADA),
        ("P3", datetime(2026, 3, 28, 12, 0, tzinfo=NEW_YORK), ADA),  # Saturday
        ("P4", datetime(2026, 3, 29, 12, 0, tzinfo=NEW_YORK), ADA),  # Sunday
        # Friday 23:00 UTC is still Friday 19:00 in New York: after hours.
        ("P3", datetime(2026, 3, 27, 20, 0, tzinfo=UTC), BEN),
    ],
)
def test_non_urgent_follow_ups_go_to_the_secondary_in_their_business_hours(
    severity: str, at: datetime, to: Member
) -> None:
    assert route(severity, at, ON_CALL, primary_has_open_p0=False).member == to


def test_business_hours_can_be_set() -> None:
    early = datetime(2026, 3, 25, 8, 0, tzinfo=NEW_YORK)
    assert route("P3", early, ON_CALL, False, (time(7, 0), time(15, 0))).member == BEN
    with pytest.raises(ValueError, match="open before they close"):
        route("P3", early, ON_CALL, False, (time(17, 0), time(9, 0)))


def test_a_page_routed_to_the_secondary_says_why() -> None:
    routed = route("P4", WEDNESDAY_AFTERNOON, ON_CALL, primary_has_open_p0=False)
    assert routed.reason == (
        "a P4 is a non-urgent follow-up and it is business hours for Ben "
        "(Wed 2026-03-25 11:00 America/New_York); rotation payments-secondary: Ben's shift"
    )
    assert route("P1", WEDNESDAY_AFTERNOON, ON_CALL, False) == ON_CALL.primary


# --- escalation -------------------------------------------------------------------------

POLICY = [
    EscalationStep(EscalationTarget.SECONDARY, timedelta(minutes=15)),
    EscalationStep(EscalationTarget.PRIMARY, timedelta(0)),
    EscalationStep(EscalationTarget.TEAM, timedelta(minutes=30)),
]
OPENED = datetime(2026, 3, 29, 0, 50, tzinfo=UTC)  # 10 minutes before Berlin springs forward


@pytest.mark.parametrize(
    ("minutes_in", "due", "next_in"),
    [
        (0, ["primary"], 15),
        (14, ["primary"], 15),
        (15, ["primary", "secondary"], 30),
        (29, ["primary", "secondary"], 30),
        (30, ["primary", "secondary", "team"], None),
        (600, ["primary", "secondary", "team"], None),
    ],
)
def test_escalation_steps_fall_due_in_order(
    minutes_in: int, due: list[str], next_in: int | None
) -> None:
    now = OPENED + timedelta(minutes=minutes_in)
    assert [s.target for s in escalations_due(POLICY, OPENED, now, acknowledged=False)] == due
    expected = None if next_in is None else OPENED + timedelta(minutes=next_in)
    assert next_escalation_at(POLICY, OPENED, now, acknowledged=False) == expected


def test_an_acknowledged_page_escalates_no_further() -> None:
    now = OPENED + timedelta(minutes=20)
    assert escalations_due(POLICY, OPENED, now, acknowledged=True) == []
    assert next_escalation_at(POLICY, OPENED, now, acknowledged=True) is None


def test_escalation_counts_elapsed_time_not_wall_clock() -> None:
    # Opened 01:50 CET; 30 minutes later the clock shows 03:20 CEST, not 02:20.
    opened = OPENED.astimezone(BERLIN)
    assert next_escalation_at(POLICY, opened, opened + timedelta(minutes=20), False) == (
        OPENED + timedelta(minutes=30)
    )
    at_03_20 = datetime(2026, 3, 29, 3, 20, tzinfo=BERLIN)
    assert len(escalations_due(POLICY, opened, at_03_20, False)) == 3


@properties
@given(
    st.lists(st.integers(0, 120).map(lambda m: timedelta(minutes=m)), max_size=5),
    instants,
    st.integers(0, 200).map(lambda m: timedelta(minutes=m)),
)
def test_the_next_escalation_is_when_the_next_step_falls_due(
    afters: list[timedelta], opened_at: datetime, elapsed: timedelta
) -> None:
    policy = [EscalationStep(EscalationTarget.TEAM, after) for after in afters]
    now = utc(opened_at) + elapsed
    due = escalations_due(policy, opened_at, now, False)
    assert [s.after for s in due] == sorted(a for a in afters if a <= elapsed)
    upcoming = next_escalation_at(policy, opened_at, now, False)
    if upcoming is None:
        assert len(due) == len(policy)
    else:
        assert upcoming > now
        assert len(escalations_due(policy, opened_at, upcoming, False)) > len(due)
        assert escalations_due(policy, opened_at, upcoming - US, False) == due


def test_an_escalation_step_cannot_come_before_the_page() -> None:
    with pytest.raises(ValueError, match="must not be negative"):
        EscalationStep(EscalationTarget.TEAM, timedelta(minutes=-1))


# --- validation -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("names", "issues"),
    [
        (["Ada", "Ben"], [(IssueLevel.ERROR, "has 2 member(s); it needs at least 3")]),
        ([], [(IssueLevel.ERROR, "has 0 member(s)")]),
        (["Ada", "Ben", "Chen"], []),
        (["Ada", "Ben", "Chen", "Dev", "Eve", "Femi"], []),
        (
            ["Ada", "Ben", "Chen", "Dev", "Eve", "Femi", "Gus"],
            [(IssueLevel.WARNING, "has 7 members; more than 6")],
        ),
        (["Ada", "Ben", "Ada"], [(IssueLevel.ERROR, "lists Ada twice")]),
    ],
)
def test_a_rotation_needs_3_to_6_members(
    names: list[str], issues: list[tuple[IssueLevel, str]]
) -> None:
    found = check_rotation(rotation(members=tuple(PEOPLE[n] for n in names)))
    assert [issue.level for issue in found] == [level for level, _ in issues]
    for issue, (_, fragment) in zip(found, issues, strict=True):
        assert fragment in issue.message
        assert "payments-primary" in issue.message


@pytest.mark.parametrize(
    ("fields", "fragment"),
    [
        ({"shift": timedelta(0)}, "shift must be positive"),
        ({"shift": timedelta(hours=-12)}, "shift must be positive"),
        ({"shift": timedelta(hours=36)}, "whole number of days"),
        ({"shift": timedelta(hours=5)}, "divide a day evenly"),
        ({"shift": timedelta(hours=2)}, "at least 3:00:00"),
        ({"handoff": time(9, 0, tzinfo=UTC)}, "without a tzinfo"),
        ({"name": ""}, "needs a name"),
    ],
)
def test_a_rotation_with_an_impossible_schedule_is_refused(
    fields: dict[str, Any], fragment: str
) -> None:
    values: dict[str, Any] = {
        "name": "payments-primary",
        "members": (ADA, BEN, CHEN),
        "shift": timedelta(days=1),
        "handoff": time(9, 0),
        "start": date(2026, 3, 2),
        "timezone": BERLIN,
    }
    with pytest.raises(ValueError, match=fragment):
        Rotation(**(values | fields))


def test_a_rotation_without_members_has_no_shifts() -> None:
    empty = rotation(members=())
    with pytest.raises(ValueError, match="has no members"):
        shift_at(empty, datetime(2026, 3, 2, tzinfo=UTC))


@pytest.mark.parametrize(
    ("cls", "start", "end"),
    [
        (Override, datetime(2026, 3, 2, 12, tzinfo=UTC), datetime(2026, 3, 2, 12, tzinfo=UTC)),
        (Rest, datetime(2026, 3, 2, 13, tzinfo=UTC), datetime(2026, 3, 2, 12, tzinfo=UTC)),
    ],
)
def test_intervals_must_not_be_empty(
    cls: type[Override | Rest], start: datetime, end: datetime
) -> None:
    with pytest.raises(ValueError, match="start must be before end"):
        if cls is Override:
            Override("payments-primary", ADA, start, end)
        else:
            Rest("Ada", start, end, "off")


# --- naive datetimes --------------------------------------------------------------------

NAIVE = datetime(2026, 3, 2, 12, 0)
AWARE = NAIVE.replace(tzinfo=UTC)


@pytest.mark.parametrize(
    "call",
    [
        lambda: shift_at(rotation(), NAIVE),
        lambda: who_is_on_call(rotation(), primary_as_secondary(rotation()), NAIVE, [], []),
        lambda: rest_after_page(ADA, NAIVE, "P0"),
        lambda: route("P3", NAIVE, ON_CALL, False),
        lambda: escalations_due(POLICY, NAIVE, AWARE, False),
        lambda: escalations_due(POLICY, AWARE, NAIVE, False),
        lambda: next_escalation_at(POLICY, NAIVE, AWARE, False),
        lambda: next_escalation_at(POLICY, AWARE, NAIVE, False),
        lambda: Override("payments-primary", ADA, NAIVE, AWARE + timedelta(hours=1)),
        lambda: Override("payments-primary", ADA, AWARE, NAIVE + timedelta(hours=1)),
        lambda: Rest("Ada", NAIVE, AWARE + timedelta(hours=1), "off"),
    ],
)
def test_naive_datetimes_are_refused(call: Callable[[], object]) -> None:
    with pytest.raises(ValueError, match="must be timezone-aware"):
        call()


def test_shifts_are_in_utc() -> None:
    shift = shift_at(rotation(), datetime(2026, 3, 2, 12, 0, tzinfo=BERLIN))
    assert shift == Shift(
        "payments-primary",
        0,
        ADA,
        datetime(2026, 3, 2, 8, 0, tzinfo=UTC),
        datetime(2026, 3, 3, 8, 0, tzinfo=UTC),
    )
