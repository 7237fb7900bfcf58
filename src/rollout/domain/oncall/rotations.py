"""Rotations: members, shifts and handoffs in each rotation's own zone, and the checks
a rotation must pass."""

# The rules, exactly (each one has a test):
#
# Shift boundaries are counted in the rotation's LOCAL calendar.
# - A shift of whole days (1 day, 7 days, ...) starts and ends at the wall-clock `handoff`
#   in the rotation's zone, whatever DST does in between: a daily shift across a DST change
#   lasts 23 or 25 hours (23.5 / 24.5 on Lord Howe).
# - A shift shorter than a day must divide a day evenly and be at least 3 hours long. Each
#   local day's handoff starts that day's slots; slot i starts i * shift of ELAPSED time
#   after it, and the day's last slot ends at the next day's handoff, so it absorbs a DST
#   change (a 12 h rotation's night slot lasts 11 or 13 hours). At least 3 hours keeps every
#   slot non-empty under any DST change in the tz database (at most 2 hours).
# - A handoff time the clock skips (02:30 on a spring-forward night) happens when the gap
#   ends (03:00 after the jump): the first moment the clock reads the handoff time or later.
#   A handoff time the clock shows twice (01:30 on a fall-back night) happens the first time.
# - Before `start` the rotation runs backwards in the same order: the shift just before
#   the start is the last member's, the one before that the second-to-last's, and so on.
#   Paging must never fail for want of a schedule, and this keeps one rule for every
#   instant instead of handing one member an unbounded shift.
#
# All intervals (shifts, overrides, rests) are half-open: [start, end). All datetimes are

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

MIN_MEMBERS = 3
MAX_MEMBERS = 6

DAY = timedelta(days=1)
# Every DST change in the tz database is at most 2 hours; a slot must outlast one.
MIN_SUB_DAY_SHIFT = timedelta(hours=3)

SEVERITIES = ("P0", "P1", "P2", "P3", "P4")
NON_URGENT = frozenset({"P3", "P4"})
# The rest rule's night, in the paged person's own zone: [00:00, 06:00).
NIGHT_ENDS = time(6, 0)


class Role(StrEnum):
    PRIMARY = "primary"
    SECONDARY = "secondary"


class EscalationTarget(StrEnum):
    PRIMARY = "primary"
    SECONDARY = "secondary"
    TEAM = "team"


class IssueLevel(StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True)
class Member:
    name: str
    timezone: ZoneInfo

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("a member needs a name")


@dataclass(frozen=True)
class Rotation:
    name: str
    members: tuple[Member, ...]  # in rotation order
    shift: timedelta
    handoff: time  # wall-clock time in `timezone`, naive
    start: date  # the first member's first shift starts at `handoff` on this date
    timezone: ZoneInfo

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("a rotation needs a name")
        if self.handoff.tzinfo is not None:
            raise ValueError(
                f"rotation {self.name}: handoff is a wall-clock time in the rotation's zone, "
                "without a tzinfo of its own"
            )
        if self.shift <= timedelta(0):
            raise ValueError(f"rotation {self.name}: shift must be positive")
        if self.shift >= DAY:
            if self.shift % DAY:
                raise ValueError(
                    f"rotation {self.name}: a shift of a day or more is a whole number of days"
                )
        elif DAY % self.shift or self.shift < MIN_SUB_DAY_SHIFT:
            raise ValueError(
                f"rotation {self.name}: a shift shorter than a day must divide a day evenly "
                f"and be at least {MIN_SUB_DAY_SHIFT}"
            )


@dataclass(frozen=True)
class Shift:
    """One member's turn: `index` 0 is the first member's first shift, negative before it."""

    rotation: str
    index: int
    member: Member
    start: datetime  # UTC
    end: datetime  # UTC, exclusive


@dataclass(frozen=True)
class RotationIssue:
    level: IssueLevel
    message: str


def shift_at(rotation: Rotation, at: datetime) -> Shift:
    """The rotation's shift that contains `at` (overrides and rests aside)."""
    require_aware(at, "at")
    _require_members(rotation)
    moment = at.astimezone(UTC)
    day = (moment.astimezone(rotation.timezone).date() - rotation.start).days
    # Before the local handoff the instant still belongs to the previous day's turn; the
    # loops also settle the rare zone that skipped a whole date.
    while _handoff_on(rotation, day) > moment:
        day -= 1
    while _handoff_on(rotation, day + 1) <= moment:
        day += 1
    if rotation.shift >= DAY:
        return nth_shift(rotation, day // (rotation.shift // DAY))
    slots = DAY // rotation.shift
    slot = min((moment - _handoff_on(rotation, day)) // rotation.shift, slots - 1)
    return nth_shift(rotation, day * slots + slot)


def nth_shift(rotation: Rotation, index: int) -> Shift:
    """Shift number `index`: 0 starts at `handoff` on `start`; negative ones precede it."""
    _require_members(rotation)
    member = rotation.members[index % len(rotation.members)]
    if rotation.shift >= DAY:
        days = rotation.shift // DAY
        start = _handoff_on(rotation, index * days)
        end = _handoff_on(rotation, (index + 1) * days)
    else:
        slots = DAY // rotation.shift
        day, slot = divmod(index, slots)
        next_day = _handoff_on(rotation, day + 1)
        start = min(_handoff_on(rotation, day) + slot * rotation.shift, next_day)
        # The day's last slot runs to the next handoff: it absorbs a DST change.
        end = next_day if slot == slots - 1 else min(start + rotation.shift, next_day)
    return Shift(rotation.name, index, member, start, end)


def _handoff_on(rotation: Rotation, day: int) -> datetime:
    return wall_instant(rotation.start + timedelta(days=day), rotation.handoff, rotation.timezone)


def wall_instant(day: date, wall: time, zone: ZoneInfo) -> datetime:
    """The first instant (UTC) at which the clock in `zone` reads `wall` on `day`, or later."""
    naive = datetime.combine(day, wall)
    # fold=0 is the first of two readings of a repeated wall time.
    first = naive.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if first.astimezone(zone).replace(tzinfo=None) == naive:
        return first
    # The clock skips `wall`. fold=1 reads it with the offset after the jump, which lands
    # before the jump; fold=0 with the offset before, which lands after it. The jump itself
    # (a whole second in the tz database) is the first instant the clock reads >= `wall`.
    low = math.floor(naive.replace(tzinfo=zone, fold=1).timestamp())
    high = math.ceil(first.timestamp())
    while high - low > 1:
        middle = (low + high) // 2
        if datetime.fromtimestamp(middle, zone).replace(tzinfo=None) >= naive:
            high = middle
        else:
            low = middle
    return datetime.fromtimestamp(high, UTC)


def check_rotation(rotation: Rotation) -> list[RotationIssue]:
    """What is wrong with a rotation: errors refuse the config, warnings are shown."""
    issues: list[RotationIssue] = []
    count = len(rotation.members)
    if count < MIN_MEMBERS:
        issues.append(
            RotationIssue(
                IssueLevel.ERROR,
                f"rotation {rotation.name} has {count} member(s); it needs at least "
                f"{MIN_MEMBERS} so that nobody is on call too often",
            )
        )
    elif count > MAX_MEMBERS:
        issues.append(
            RotationIssue(
                IssueLevel.WARNING,
                f"rotation {rotation.name} has {count} members; more than {MAX_MEMBERS} "
                "means each is on call too rarely to stay familiar with the systems",
            )
        )
    names = [m.name for m in rotation.members]
    for name in sorted({n for n in names if names.count(n) > 1}):
        issues.append(
            RotationIssue(IssueLevel.ERROR, f"rotation {rotation.name} lists {name} twice")
        )
    return issues


def severity_of(severity: str) -> str:
    level = severity.strip().upper()
    if level not in SEVERITIES:
        raise ValueError(f"unknown severity {severity!r}; expected one of {', '.join(SEVERITIES)}")
    return level


def show(moment: datetime, zone: ZoneInfo) -> str:
    return f"{moment.astimezone(zone):%a %Y-%m-%d %H:%M} {zone.key}"


def span(start: datetime, end: datetime, zone: ZoneInfo) -> str:
    return f"{start.astimezone(zone):%a %Y-%m-%d %H:%M} → {show(end, zone)}"


def _require_members(rotation: Rotation) -> None:
    if not rotation.members:
        raise ValueError(f"rotation {rotation.name} has no members")


def require_interval(start: datetime, end: datetime, what: str) -> None:
    require_aware(start, f"{what}: start")
    require_aware(end, f"{what}: end")
    if not start < end:
        raise ValueError(f"{what}: start must be before end")


def require_aware(moment: datetime, what: str) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware, got {moment.isoformat()}")
