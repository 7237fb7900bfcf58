"""The reader's zone: how the CLI reads a time typed without a zone and shows times in tables
(TZ, else the system's zone; UTC with `rollout --utc`)."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta, tzinfo
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from rollout import times
from rollout.durations import format_duration, parse_window

_forced_utc = False


def force_utc() -> None:
    """`rollout --utc`: every table shows UTC, and a time without a zone is UTC."""
    global _forced_utc
    _forced_utc = True


@cache
def _system_zone() -> tzinfo:
    name = os.environ.get("TZ", "").strip().lstrip(":")
    if name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            pass  # a POSIX rule such as "CET-1": the C library's offset below still holds it
    elif os.path.exists("/etc/localtime"):
        try:
            with open("/etc/localtime", "rb") as source:
                return ZoneInfo.from_file(source)
        except (OSError, ValueError):
            pass
    fixed = datetime.now().astimezone().tzinfo
    return fixed if fixed is not None else UTC


def reader_zone() -> tzinfo:
    return UTC if _forced_utc else _system_zone()


def read_time(option: str, text: str, *, past: bool = False) -> datetime:
    """An input time by the one rule (rollout.times), or the command's one-line error naming
    the option and the value."""
    from rollout.cli.entry import fail

    try:
        return times.parse_time(text, datetime.now(UTC), reader_zone(), past=past)
    except times.TimeError as error:
        raise fail(f"{option}: {error}") from None


def read_since(option: str, text: str) -> timedelta:
    """How far back a --since reaches (7d, or a time in the past), or a one-line error."""
    from rollout.cli.entry import fail

    try:
        return times.parse_since(text, datetime.now(UTC), reader_zone())
    except times.TimeError as error:
        raise fail(f"{option}: {error}") from None


def shown(when: datetime, *, seconds: bool = False) -> str:
    """An instant as the tables print it: in the reader's zone, with its name."""
    return times.shown(when, reader_zone(), seconds=seconds)


def window_text(given: str, window: timedelta) -> str:
    """--since as both backends take it: the duration as typed, or a time as the whole
    seconds back to it (the API's window reads 4d2h3s, not instants)."""
    try:
        parse_window(given)
    except ValueError:
        # Whole seconds down: the window then starts at the time given or just after, never before.
        return format_duration(timedelta(seconds=max(1, int(window.total_seconds()))))
    return given.strip()
