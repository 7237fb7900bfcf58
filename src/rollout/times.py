"""The one rule for a time a person types: ISO 8601 with an offset, a duration from now, or a
time without a zone read in the reader's zone (refused when that zone skips or repeats it)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo

from rollout.durations import parse_duration, parse_window

__all__ = ["TIME_FORMS", "TimeError", "parse_since", "parse_time", "shown"]

TIME_FORMS = (
    "use ISO 8601 (2026-12-24T18:00+01:00, or without a zone in yours), "
    "a duration (2h, 90m, 1d, 2w) or now"
)
# An echoed value is cut so a mistake pasted from a log stays one readable line.
_ECHO = 80


class TimeError(ValueError):
    """A time that cannot be read; the message names the value and the accepted forms."""


def _echo(text: str) -> str:
    return repr(text if len(text) <= _ECHO else text[: _ECHO - 1] + "…")


def parse_time(text: str, now: datetime, zone: tzinfo, *, past: bool = False) -> datetime:
    """The instant `text` names, in UTC. A duration counts from `now`: ahead, or back when
    `past` (as --since reads it); a time without a zone is a wall-clock time in `zone`."""
    if now.tzinfo is None:
        raise ValueError("now must carry its zone")
    given = text.strip()
    if given.lower() == "now":
        return now.astimezone(UTC)
    span = _span(given)
    if span is not None:
        try:
            return (now - span if past else now + span).astimezone(UTC)
        except OverflowError:
            raise TimeError(f"{_echo(given)} is out of range") from None
    try:
        parsed = datetime.fromisoformat(given)
    except ValueError:
        raise TimeError(f"invalid time {_echo(given)} ({TIME_FORMS})") from None
    if parsed.tzinfo is None:
        parsed = _wall_clock(parsed, zone, given)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        raise TimeError(f"{_echo(given)} is out of range") from None


def _span(given: str) -> timedelta | None:
    """A duration (2h, 2w3d), zero included ("0s" is now); None when it is not one."""
    try:
        return parse_window(given)
    except ValueError:
        pass
    # parse_window refuses nothing-long windows; a bare number is no duration here (it
    # would read "2026" as seconds), so only a unit-suffixed zero gets this far.
    if given[-1:].isalpha():
        try:
            return parse_duration(given)
        except ValueError:
            return None
    return None


def _wall_clock(naive: datetime, zone: tzinfo, given: str) -> datetime:
    """`naive` read on the clocks of `zone`; a time they skip (spring forward) or show twice
    (fall back) has no one meaning, so the reader is asked for the offset instead of a guess."""
    first, second = naive.replace(tzinfo=zone, fold=0), naive.replace(tzinfo=zone, fold=1)
    name = first.tzname() or str(zone)
    try:
        round_trip = first.astimezone(UTC).astimezone(zone).replace(tzinfo=None)
    except OverflowError:
        raise TimeError(f"{_echo(given)} is out of range") from None
    if round_trip != naive:
        raise TimeError(
            f"{_echo(given)} does not exist in {_zone_name(zone, name)} (the clocks skip it): "
            "give its offset, e.g. +01:00"
        )
    if first.utcoffset() != second.utcoffset():
        offsets = " or ".join(_offset(d.utcoffset()) for d in (first, second))
        raise TimeError(
            f"{_echo(given)} happens twice in {_zone_name(zone, name)} (the clocks go back): "
            f"give its offset, {offsets}"
        )
    return first


def _zone_name(zone: tzinfo, fallback: str) -> str:
    key = getattr(zone, "key", None)
    return key if isinstance(key, str) else fallback


def _offset(delta: timedelta | None) -> str:
    minutes = int((delta or timedelta(0)).total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    hours, rest = divmod(abs(minutes), 60)
    return f"{sign}{hours:02d}:{rest:02d}"


def parse_since(text: str, now: datetime, zone: tzinfo) -> timedelta:
    """How far back --since reaches: a duration (7d: seven days before now) or a time; refused
    when that time is not in the past."""
    since = parse_time(text, now, zone, past=True)
    window = now - since
    if window <= timedelta(0):
        raise TimeError(f"{_echo(text.strip())} is not in the past")
    return window


def shown(when: datetime, zone: tzinfo, *, seconds: bool = False) -> str:
    """An instant as a table prints it: on the clocks of `zone`, with the zone's name."""
    local = when.astimezone(zone)
    return local.strftime("%Y-%m-%d %H:%M:%S %Z" if seconds else "%Y-%m-%d %H:%M %Z")
