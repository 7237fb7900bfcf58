"""Durations, for the config and the plan: "250ms", "30s", "5m", "1h30m", "2d" or bare seconds."""

from __future__ import annotations

import math
import re
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import Annotated

from pydantic import BeforeValidator, JsonValue, PlainSerializer, WithJsonSchema

from rollout.quoting import quoted

__all__ = [
    "DURATION_FORMS",
    "Duration",
    "PositiveDuration",
    "format_duration",
    "parse_duration",
]

DURATION_FORMS = "use e.g. 250ms, 30s, 5m, 1h30m"

# Microseconds per unit; "ms" must be tried before "m" so "250ms" is not read as minutes.
_UNITS: dict[str, int] = {
    "d": 86_400_000_000,
    "h": 3_600_000_000,
    "m": 60_000_000,
    "s": 1_000_000,
    "ms": 1_000,
}
_RANK = {unit: rank for rank, unit in enumerate(_UNITS)}
_NUMBER = r"(?:\d+(?:\.\d*)?|\.\d+)"
_PART = re.compile(rf"({_NUMBER})\s*(ms|d|h|m|s)")
_WHOLE = re.compile(rf"\s*(?:{_NUMBER}\s*(?:ms|d|h|m|s)\s*)+")
_BARE = re.compile(rf"\s*{_NUMBER}\s*")


def _invalid(value: object) -> ValueError:
    return ValueError(f"invalid duration {quoted(value)} ({DURATION_FORMS})")


def _from_microseconds(micros: Decimal, value: object) -> timedelta:
    try:
        return timedelta(microseconds=int(micros.to_integral_value()))
    except (OverflowError, InvalidOperation):
        raise ValueError(f"duration {quoted(value)} is too large") from None


def parse_duration(value: object) -> timedelta:
    """Read a duration; raise ValueError naming the accepted forms for anything else."""
    if isinstance(value, timedelta):
        if value < timedelta(0):
            raise ValueError(f"duration {value} must not be negative")
        return value
    # bool is an int to Python, but `soak: true` is a mistake, not one second.
    if isinstance(value, bool):
        raise _invalid(value)
    if isinstance(value, int | float):
        if isinstance(value, float) and not math.isfinite(value):
            raise _invalid(value)
        if value < 0:
            raise ValueError(f"duration {quoted(value)} must not be negative")
        # Through str() so 0.1 means 100ms exactly, not the nearest binary fraction.
        return _from_microseconds(Decimal(str(value)) * _UNITS["s"], value)
    if not isinstance(value, str):
        raise _invalid(value)
    if _BARE.fullmatch(value):
        return _from_microseconds(Decimal(value.strip()) * _UNITS["s"], value)
    if not _WHOLE.fullmatch(value):
        raise _invalid(value)
    total = Decimal(0)
    last_rank = -1
    for number, unit in _PART.findall(value):
        rank = _RANK[unit]
        # "30s5m" or "1h1h" is more likely a typo than an intent: insist on d, h, m, s, ms order.
        if rank <= last_rank:
            raise ValueError(
                f"invalid duration {quoted(value)}: units must go from largest to smallest, "
                f"each at most once ({DURATION_FORMS})"
            )
        last_rank = rank
        total += Decimal(number) * _UNITS[unit]
    return _from_microseconds(total, value)


def format_duration(value: timedelta) -> str:
    """The shortest text parse_duration reads back as exactly `value` (e.g. "1h30m", "250ms")."""
    micros = (value.days * 86_400 + value.seconds) * 1_000_000 + value.microseconds
    if micros < 0:
        raise ValueError(f"duration {value} must not be negative")
    if micros == 0:
        return "0s"
    parts: list[str] = []
    for unit in ("d", "h", "m"):
        count, micros = divmod(micros, _UNITS[unit])
        if count:
            parts.append(f"{count}{unit}")
    seconds, fraction = divmod(micros, 1_000_000)
    if seconds == 0 and fraction and fraction % 1_000 == 0:
        parts.append(f"{fraction // 1_000}ms")
    elif fraction:
        parts.append(f"{seconds}.{fraction:06d}".rstrip("0") + "s")
    elif seconds:
        parts.append(f"{seconds}s")
    return "".join(parts)


def _parse_positive(value: object) -> timedelta:
    parsed = parse_duration(value)
    if parsed <= timedelta(0):
        raise ValueError(f"duration must be greater than 0s, got {quoted(value)}")
    return parsed


def _serialize(value: timedelta) -> str:
    return format_duration(value)


_SCHEMA: dict[str, JsonValue] = {
    "anyOf": [
        {"type": "string", "examples": ["250ms", "30s", "5m", "1h30m", "2d"]},
        {"type": "number", "minimum": 0},
    ]
}

# A timedelta read from text or seconds, written back as text in JSON (API, snapshots).
Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(_serialize, return_type=str, when_used="json"),
    WithJsonSchema(_SCHEMA),
]
PositiveDuration = Annotated[
    timedelta,
    BeforeValidator(_parse_positive),
    PlainSerializer(_serialize, return_type=str, when_used="json"),
    WithJsonSchema(_SCHEMA),
]


# parse_duration stops at days (the fleet config never needs more); a report window (rollout
# hygiene) often is weeks, so a leading "2w" is read here and the rest handed on.
_WEEKS = re.compile(r"\s*(\d+)\s*w\s*(.*)")


def parse_window(text: str) -> timedelta:
    """A window length: 30d, 12h, 2w, 2w3d; raise ValueError for anything else or zero."""
    weeks = _WEEKS.fullmatch(text)
    if weeks is None:
        window = parse_duration(text)
    else:
        rest = weeks.group(2)
        window = timedelta(weeks=int(weeks.group(1))) + (
            parse_duration(rest) if rest else timedelta(0)
        )
    if window <= timedelta(0):
        raise ValueError(f"the window must be longer than 0s, got {quoted(text)}")
    return window
