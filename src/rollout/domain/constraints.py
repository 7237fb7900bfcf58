"""Constraints on when an upgrade may start: maintenance windows, freezes, dependencies and
recall; each verdict says why an upgrade waits and until when."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo

from packaging.version import InvalidVersion, Version

from rollout.domain.holds import Hold, HoldKind

DAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# Windows are weekly: a week and a day of local dates always holds the next opening.
_LOOKAHEAD_DAYS = 8
# Service and environment windows that never overlap would be searched forever: give up
# after a year and say so.
_HORIZON = timedelta(days=400)


def at_utc(when: datetime) -> str:
    """An instant as the reasons show it: to the second, in UTC."""
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


# --- maintenance windows ----------------------------------------------------------------------


@cache
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _wall(instant: datetime, zone: ZoneInfo) -> datetime:
    return instant.astimezone(zone).replace(tzinfo=None)


def first_reaching(day: date, clock: time, zone: ZoneInfo) -> datetime:
    """The first instant (UTC) at which the wall clock of `zone` reads `clock` or later on
    `day`. A time the clock repeats (autumn) counts at its first occurrence; a time it skips
    (spring) is reached when the clock jumps past it."""
    wanted = datetime.combine(day, clock)
    before = wanted.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if _wall(before, zone) == wanted:
        return before
    # In the gap: fold=1 maps with the offset after the jump (an instant before it), fold=0
    # with the offset before (an instant after it). The jump lies between, on a whole second.
    low = int(wanted.replace(tzinfo=zone, fold=1).astimezone(UTC).timestamp())
    high = int(before.timestamp())
    if low > high:
        low, high = high, low
    while low < high:
        middle = (low + high) // 2
        if _wall(datetime.fromtimestamp(middle, UTC), zone) >= wanted:
            high = middle
        else:
            low = middle + 1
    return datetime.fromtimestamp(high, UTC)


@dataclass(frozen=True)
class Window:
    """A weekly maintenance window: on each of `days` (local, 0 = Monday) from `start` to
    `end` on the wall clock of `zone`; an `end` at or before `start` is on the next day."""

    days: frozenset[int]
    start: time
    end: time
    zone: str

    def intervals(self, around: datetime) -> Iterable[tuple[datetime, datetime]]:
        """The openings [open, close) in UTC that begin from the local day before `around`
        up to a week and a day after it, in order."""
        zone = _zone(self.zone)
        first = around.astimezone(zone).date() - timedelta(days=1)
        crosses = self.end <= self.start
        for offset in range(_LOOKAHEAD_DAYS + 2):
            day = first + timedelta(days=offset)
            if day.weekday() not in self.days:
                continue
            opens = first_reaching(day, self.start, zone)
            closes = first_reaching(day + timedelta(days=crosses), self.end, zone)
            if opens < closes:  # a window inside a skipped hour does not happen that day
                yield opens, closes

    def next_open(self, now: datetime) -> datetime | None:
        """`now` if the window is open, else its next opening; None if it has no day."""
        for opens, closes in self.intervals(now):
            if opens <= now < closes:
                return now
            if opens > now:
                return opens
        return None

    def describe(self) -> str:
        days = ",".join(DAYS[d] for d in sorted(self.days))
        return f"{days} {self.start:%H:%M}-{self.end:%H:%M} {self.zone}"


def next_open(windows: Sequence[Window], now: datetime) -> datetime | None:
    """The first instant from `now` on at which one of `windows` is open; no windows: always
    open."""
    if not windows:
        return now
    found = [w.next_open(now) for w in windows]
    return min((f for f in found if f is not None), default=None)


def next_open_in_all(groups: Sequence[Sequence[Window]], now: datetime) -> datetime | None:
    """The first instant from `now` on at which every group has a window open (a service's
    and an environment's: an upgrade may start only inside both); None within a year."""
    candidate = now
    while candidate - now <= _HORIZON:
        moved = False
        for windows in groups:
            opening = next_open(windows, candidate)
            if opening is None:
                return None
            if opening != candidate:
                # Every instant before `opening` has this group closed: look from there.
                candidate, moved = opening, True
        if not moved:
            return candidate
    return None


# --- versions ----------------------------------------------------------------------------------

_CHUNK = re.compile(r"(\d+)")


def version_key(version: str) -> tuple[tuple[int, int | str], ...]:
    """A natural order for versions that are not PEP 440: digit runs compare as numbers,
    other runs as text, so 2.10 is after 2.9."""
    parts = [p for p in _CHUNK.split(version) if p and p not in ".-_+"]
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in parts)


def compare_versions(left: str, right: str) -> int:
    """-1, 0 or 1. PEP 440 ordering when both versions parse (1.0rc1 < 1.0 < 1.0.post1),
    the natural order otherwise."""
    try:
        a, b = Version(left), Version(right)
    except InvalidVersion:
        ka, kb = version_key(left), version_key(right)
        return (ka > kb) - (ka < kb)
    return (a > b) - (a < b)


_OPERATORS = {
    ">=": lambda c: c >= 0,
    ">": lambda c: c > 0,
    "==": lambda c: c == 0,
    "<=": lambda c: c <= 0,
    "<": lambda c: c < 0,
    "!=": lambda c: c != 0,
}


@dataclass(frozen=True)
class Requirement:
    """`service op version` must hold for the service installed in the same environment."""

    service: str
    op: str
    version: str

    def met_by(self, installed: str | None) -> bool:
        if installed is None:
            return False
        return bool(_OPERATORS[self.op](compare_versions(installed, self.version)))

    def __str__(self) -> str:
        return f"{self.service} {self.op} {self.version}"


# --- freezes -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Freeze:
    """Nothing new starts in an environment, or of a service, before `until`."""

    target: str
    kind: str  # "environment" or "service"
    until: datetime
    reason: str

    def holds(self, service: str, environment: str, now: datetime) -> bool:
        name = environment if self.kind == "environment" else service
        return self.target == name and now < self.until


# --- verdicts ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    """May the upgrade start now; if not, why, and the instant it may (None: it waits for
    something without a time, such as another service's upgrade)."""

    admitted: bool
    hold: Hold | None = None
    until: datetime | None = None

    @property
    def reason(self) -> str | None:
        return None if self.hold is None else self.hold.text


ADMITTED = Verdict(True)


@dataclass(frozen=True)
class Constraints:
    """What one rollout's upgrades must respect at one moment: the rollout's snapshot
    (windows, requirements) and the database's present (freezes, installed versions,
    recall)."""

    service: str
    service_windows: tuple[Window, ...] = ()
    environment_windows: Mapping[str, tuple[Window, ...]] = field(default_factory=dict)
    requires: tuple[Requirement, ...] = ()
    freezes: tuple[Freeze, ...] = ()
    installed: Mapping[tuple[str, str], str] = field(default_factory=dict)  # (env, service)
    recalled: bool = False
    version: str = ""

    def verdict(self, environment: str, now: datetime) -> Verdict:
        """Whether an upgrade of the service in `environment` may start at `now`."""
        if self.recalled:
            text = f"{self.service} {self.version} is recalled"
            return Verdict(False, Hold(HoldKind.RECALLED, self.version, text), None)
        for requirement in self.requires:
            installed = self.installed.get((environment, requirement.service))
            if not requirement.met_by(installed):
                shown = "not installed" if installed is None else f"installed {installed}"
                text = f"waits for {requirement} in {environment} ({shown})"
                return Verdict(False, Hold(HoldKind.DEPENDENCY, requirement.service, text), None)
        frozen = [f for f in self.freezes if f.holds(self.service, environment, now)]
        thawed = max((f.until for f in frozen), default=now)
        groups = (self.service_windows, self.environment_windows.get(environment, ()))
        opens = next_open_in_all(groups, thawed)
        if frozen:
            last = max(frozen, key=lambda f: f.until)
            text = f"{last.kind} {last.target} frozen until {at_utc(last.until)}: {last.reason}"
            if opens is None:
                text += "; then no maintenance window opens"
            elif opens != last.until:
                text += f"; then its maintenance window opens at {at_utc(opens)}"
            return Verdict(False, Hold(HoldKind.FREEZE, last.target, text), opens)
        if opens == now:
            return ADMITTED
        if opens is None:
            text = f"the maintenance windows of {self.service} and {environment} never overlap"
            return Verdict(False, Hold(HoldKind.WINDOW, environment, text), None)
        text = f"maintenance window opens at {at_utc(opens)}"
        return Verdict(False, Hold(HoldKind.WINDOW, environment, text), opens)
