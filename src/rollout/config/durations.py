"""The config's durations: rollout.durations, under the name config's importers know."""

from rollout.durations import (
    DURATION_FORMS,
    Duration,
    PositiveDuration,
    format_duration,
    parse_duration,
)

__all__ = [
    "DURATION_FORMS",
    "Duration",
    "PositiveDuration",
    "format_duration",
    "parse_duration",
]
