"""Who holds a team's pager at an instant (rotation, override, rest rule), where a page
is routed, and when it escalates."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from rollout.domain.oncall.rotations import (
    DAY,
    NIGHT_ENDS,
    NON_URGENT,
    EscalationTarget,
    Member,
    Role,
    Rotation,
    require_aware,
    require_interval,
    severity_of,
    shift_at,
    show,
    span,
    wall_instant,
)


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
        require_interval(self.start, self.end, f"override of {self.rotation}")


@dataclass(frozen=True)
class Rest:
    """`member` is off on-call over [start, end)."""

    member: str
    start: datetime
    end: datetime
    reason: str

    def __post_init__(self) -> None:
        require_interval(self.start, self.end, f"rest of {self.member}")


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
    require_aware(at, "at")
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
        f"rotation {rotation.name}: {scheduled.name}'s shift ({span(shift.start, shift.end, zone)})"
    )
    holder, until = scheduled, shift.end
    override = _override_at(rotation, moment, scheduled, overrides)
    if override is not None:
        holder, until = override.member, override.end.astimezone(UTC)
        reason = (
            f"override: {holder.name} covers {override.replaces or scheduled.name} "
            f"until {show(until, zone)}"
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
            return Assignment(cover, role, f"{why}; {cover.name} covers until {show(end, zone)}")
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


def rest_after_page(member: Member, paged_at: datetime, severity: str) -> Rest | None:
    """A P0 page in [00:00, 06:00) of the member's OWN zone rests them from the page until
    06:00 local on the next calendar day (paged Tue 03:00: rested until Wed 06:00); any
    other page rests nobody."""
    require_aware(paged_at, "paged_at")
    if severity_of(severity) != "P0":
        return None
    local = paged_at.astimezone(member.timezone)
    if local.time() >= NIGHT_ENDS:
        return None
    end = wall_instant(local.date() + DAY, NIGHT_ENDS, member.timezone)
    return Rest(
        member=member.name,
        start=paged_at.astimezone(UTC),
        end=end,
        reason=f"paged for a P0 at {show(paged_at, member.timezone)}, "
        f"off on-call until {show(end, member.timezone)}",
    )


def route(
    severity: str,
    at: datetime,
    on_call: OnCall,
    primary_has_open_p0: bool,
    business_hours: tuple[time, time] = (time(9, 0), time(17, 0)),
) -> Assignment:
    """Who a new page of the team goes to first."""
    require_aware(at, "at")
    level = severity_of(severity)
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
            f"{secondary.member.name} ({show(at, secondary.member.timezone)})",
        )
    return primary


def _routed(to: Assignment, why: str) -> Assignment:
    return Assignment(to.member, to.role, f"{why}; {to.reason}")


def escalations_due(
    policy: Sequence[EscalationStep], opened_at: datetime, now: datetime, acknowledged: bool
) -> list[EscalationStep]:
    """Every step due by `now` (opened_at + after <= now), ordered by `after`: a prefix of
    the ordered policy, so the engine fires the ones past the count it already fired.
    An acknowledged page escalates no further."""
    require_aware(opened_at, "opened_at")
    require_aware(now, "now")
    if acknowledged:
        return []
    # In UTC: timedelta arithmetic on a zoned datetime is wall-clock arithmetic.
    opened = opened_at.astimezone(UTC)
    return [step for step in _ordered(policy) if opened + step.after <= now]


def next_escalation_at(
    policy: Sequence[EscalationStep], opened_at: datetime, now: datetime, acknowledged: bool
) -> datetime | None:
    """When the next step falls due after `now` (a timer row's due time), or None."""
    require_aware(opened_at, "opened_at")
    require_aware(now, "now")
    if acknowledged:
        return None
    opened = opened_at.astimezone(UTC)
    later = [opened + step.after for step in _ordered(policy) if opened + step.after > now]
    return later[0] if later else None


def _ordered(policy: Sequence[EscalationStep]) -> list[EscalationStep]:
    return sorted(policy, key=lambda step: step.after)
