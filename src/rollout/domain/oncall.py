"""On-call: who holds a team's pager at an instant, the rest rule, routing and escalation."""

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
# aware (naive ones raise ValueError); every datetime this module returns is in UTC.

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

__all__ = [
    "MAX_MEMBERS",
    "MIN_MEMBERS",
    "Assignment",
    "EscalationStep",
    "EscalationTarget",
    "IssueLevel",
    "Member",
    "OnCall",
    "Override",
    "Rest",
    "Role",
    "Rotation",
    "RotationIssue",
    "Shift",
    "check_rotation",
    "escalations_due",
    "next_escalation_at",
    "nth_shift",
    "rest_after_page",
    "route",
    "shift_at",
    "who_is_on_call",
]

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
class Override:
    """`member` covers `rotation` over [start, end): only while `replaces` would be on call,
    or whoever is on call when `replaces` is None."""

    rotation: str
    member: Member
    start: datetime
    end: datetime
    replaces: str | None = None

    def __post_init__(self) -> None:
        _require_interval(self.start, self.end, f"override of {self.rotation}")


@dataclass(frozen=True)
class Rest:
    """`member` is off on-call over [start, end)."""

    member: str
    start: datetime
    end: datetime
    reason: str

    def __post_init__(self) -> None:
        _require_interval(self.start, self.end, f"rest of {self.member}")


@dataclass(frozen=True)
class Assignment:
    # A Member, not a bare name: routing needs the person's own zone.
    member: Member
    role: Role
    reason: str


@dataclass(frozen=True)
class OnCall:
    primary: Assignment
    secondary: Assignment


@dataclass(frozen=True)
class EscalationStep:
    target: EscalationTarget
    after: timedelta  # after the page was opened

    def __post_init__(self) -> None:
        if self.after < timedelta(0):
            raise ValueError(f"escalation to {self.target}: after must not be negative")


@dataclass(frozen=True)
class RotationIssue:
    level: IssueLevel
    message: str


# --- shifts ---------------------------------------------------------------------------


def shift_at(rotation: Rotation, at: datetime) -> Shift:
    """The rotation's shift that contains `at` (overrides and rests aside)."""
    _require_aware(at, "at")
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
    return _wall_instant(rotation.start + timedelta(days=day), rotation.handoff, rotation.timezone)


def _wall_instant(day: date, wall: time, zone: ZoneInfo) -> datetime:
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


# --- who is on call --------------------------------------------------------------------


def who_is_on_call(
    primary: Rotation,
    secondary: Rotation,
    at: datetime,
    overrides: Sequence[Override] = (),
    rests: Sequence[Rest] = (),
) -> OnCall:
    """The rotation's member, unless an override covers `at` (the override wins), unless
    that person rests: then the next member in rotation order who does not rest covers.
    The secondary is never the primary: it passes on to the next member of its rotation."""
    _require_aware(at, "at")
    moment = at.astimezone(UTC)
    first = _resolve(primary, Role.PRIMARY, moment, overrides, rests, exclude=None)
    second = _resolve(secondary, Role.SECONDARY, moment, overrides, rests, exclude=first.member)
    return OnCall(first, second)


def _resolve(
    rotation: Rotation,
    role: Role,
    moment: datetime,
    overrides: Sequence[Override],
    rests: Sequence[Rest],
    exclude: Member | None,
) -> Assignment:
    shift = shift_at(rotation, moment)
    scheduled = shift.member
    zone = rotation.timezone
    reason = (
        f"rotation {rotation.name}: {scheduled.name}'s shift "
        f"({_span(shift.start, shift.end, zone)})"
    )
    holder, until = scheduled, shift.end
    override = _override_at(rotation, moment, scheduled, overrides)
    if override is not None:
        holder, until = override.member, override.end.astimezone(UTC)
        reason = (
            f"override: {holder.name} covers {override.replaces or scheduled.name} "
            f"until {_show(until, zone)}"
        )
    rest = _rest_at(holder.name, moment, rests)
    taken = exclude is not None and holder.name == exclude.name
    if rest is None and not taken:
        return Assignment(holder, role, reason)

    # Rotation order from the scheduled member on: an override holder who rests hands
    # back to the scheduled member first; a scheduled member who rests to the next one.
    count = len(rotation.members)
    order = [rotation.members[(shift.index + step) % count] for step in range(count)]
    free = [
        m for m in order if m.name != holder.name and (exclude is None or m.name != exclude.name)
    ]
    cover = next((m for m in free if _rest_at(m.name, moment, rests) is None), None)
    if rest is not None:
        why = f"{reason}; rest rule: {holder.name} is resting ({rest.reason})"
        if cover is not None:
            end = min(rest.end.astimezone(UTC), until)
            return Assignment(cover, role, f"{why}; {cover.name} covers until {_show(end, zone)}")
        if not taken:
            # A page must reach someone: with everyone else resting (or primary), the
            # holder stays on call and the reason says so.
            return Assignment(
                holder,
                role,
                f"{why}; nobody else in {rotation.name} is free, so {holder.name} stays on call",
            )
    else:
        why = f"{reason}; {holder.name} is already primary"
        if cover is not None:
            return Assignment(
                cover, role, f"{why}, so {cover.name} (next in {rotation.name}) is secondary"
            )
    # Everyone else rests: a resting secondary still beats the primary twice over.
    if free:
        fallback = free[0]
        return Assignment(
            fallback,
            role,
            f"{why}; everyone else in {rotation.name} is resting, so {fallback.name} "
            "is secondary anyway",
        )
    raise ValueError(
        f"rotation {rotation.name} has nobody but {holder.name}, who is primary already"
    )


def _override_at(
    rotation: Rotation, moment: datetime, scheduled: Member, overrides: Sequence[Override]
) -> Override | None:
    covering = [
        (override.start.astimezone(UTC), position, override)
        for position, override in enumerate(overrides)
        if override.rotation == rotation.name
        and override.start <= moment < override.end
        and override.replaces in (None, scheduled.name)
    ]
    if not covering:
        return None
    # Overlapping overrides: the one that started last wins; on a tie, the later one given.
    return max(covering, key=lambda item: item[:2])[2]


def _rest_at(name: str, moment: datetime, rests: Sequence[Rest]) -> Rest | None:
    matching = [r for r in rests if r.member == name and r.start <= moment < r.end]
    # The latest end is the one worth telling: it is how long the rest lasts.
    return max(matching, key=lambda r: r.end) if matching else None


# --- the rest rule ---------------------------------------------------------------------


def rest_after_page(member: Member, paged_at: datetime, severity: str) -> Rest | None:
    """A P0 page in [00:00, 06:00) of the member's OWN zone rests them from the page until
    06:00 local on the next calendar day (paged Tue 03:00: rested until Wed 06:00); any
    other page rests nobody."""
    _require_aware(paged_at, "paged_at")
    if _severity(severity) != "P0":
        return None
    local = paged_at.astimezone(member.timezone)
    if local.time() >= NIGHT_ENDS:
        return None
    end = _wall_instant(local.date() + DAY, NIGHT_ENDS, member.timezone)
    return Rest(
        member=member.name,
        start=paged_at.astimezone(UTC),
        end=end,
        reason=f"paged for a P0 at {_show(paged_at, member.timezone)}, "
        f"off on-call until {_show(end, member.timezone)}",
    )


# --- routing ---------------------------------------------------------------------------


def route(
    severity: str,
    at: datetime,
    on_call: OnCall,
    primary_has_open_p0: bool,
    business_hours: tuple[time, time] = (time(9, 0), time(17, 0)),
) -> Assignment:
    """Who a new page of the team goes to first."""
    _require_aware(at, "at")
    level = _severity(severity)
    opens, closes = business_hours
    if not opens < closes:
        raise ValueError(f"business hours must open before they close, got {opens}-{closes}")
    primary, secondary = on_call.primary, on_call.secondary
    if primary_has_open_p0:
        return _routed(
            secondary,
            f"{primary.member.name} (primary) is working an open P0, so new pages go to "
            f"the secondary",
        )
    local = at.astimezone(secondary.member.timezone)
    if level in NON_URGENT and local.weekday() < 5 and opens <= local.time() < closes:
        return _routed(
            secondary,
            f"a {level} is a non-urgent follow-up and it is business hours for "
            f"{secondary.member.name} ({_show(at, secondary.member.timezone)})",
        )
    return primary


def _routed(to: Assignment, why: str) -> Assignment:
    return Assignment(to.member, to.role, f"{why}; {to.reason}")


# --- escalation ------------------------------------------------------------------------


def escalations_due(
    policy: Sequence[EscalationStep], opened_at: datetime, now: datetime, acknowledged: bool
) -> list[EscalationStep]:
    """Every step due by `now` (opened_at + after <= now), ordered by `after`: a prefix of
    the ordered policy, so the engine fires the ones past the count it already fired.
    An acknowledged page escalates no further."""
    _require_aware(opened_at, "opened_at")
    _require_aware(now, "now")
    if acknowledged:
        return []
    # In UTC: timedelta arithmetic on a zoned datetime is wall-clock arithmetic.
    opened = opened_at.astimezone(UTC)
    return [step for step in _ordered(policy) if opened + step.after <= now]


def next_escalation_at(
    policy: Sequence[EscalationStep], opened_at: datetime, now: datetime, acknowledged: bool
) -> datetime | None:
    """When the next step falls due after `now` (a timer row's due time), or None."""
    _require_aware(opened_at, "opened_at")
    _require_aware(now, "now")
    if acknowledged:
        return None
    opened = opened_at.astimezone(UTC)
    later = [opened + step.after for step in _ordered(policy) if opened + step.after > now]
    return later[0] if later else None


def _ordered(policy: Sequence[EscalationStep]) -> list[EscalationStep]:
    return sorted(policy, key=lambda step: step.after)


# --- validation ------------------------------------------------------------------------


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


# --- helpers ---------------------------------------------------------------------------


def _severity(severity: str) -> str:
    level = severity.strip().upper()
    if level not in SEVERITIES:
        raise ValueError(f"unknown severity {severity!r}; expected one of {', '.join(SEVERITIES)}")
    return level


def _show(moment: datetime, zone: ZoneInfo) -> str:
    return f"{moment.astimezone(zone):%a %Y-%m-%d %H:%M} {zone.key}"


def _span(start: datetime, end: datetime, zone: ZoneInfo) -> str:
    return f"{start.astimezone(zone):%a %Y-%m-%d %H:%M} → {_show(end, zone)}"


def _require_members(rotation: Rotation) -> None:
    if not rotation.members:
        raise ValueError(f"rotation {rotation.name} has no members")


def _require_interval(start: datetime, end: datetime, what: str) -> None:
    _require_aware(start, f"{what}: start")
    _require_aware(end, f"{what}: end")
    if not start < end:
        raise ValueError(f"{what}: start must be before end")


def _require_aware(moment: datetime, what: str) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware, got {moment.isoformat()}")
