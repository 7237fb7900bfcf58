"""Holds: why a pending upgrade waits, as a kind and a subject the engine schedules by and a
text people read."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class HoldKind(StrEnum):
    PAUSED = "paused"  # the rollout is paused; no subject (the text says why)
    STAGE = "stage"  # an earlier stage has not passed or is soaking; subject: that stage
    PARALLELISM = "parallelism"  # the stage has enough in flight; subject: the stage
    BUSY = "busy"  # another rollout of the service moves the environment; subject: its id
    RECALLED = "recalled"  # the version is recalled; subject: the version
    DEPENDENCY = "dependency"  # a required service's version; subject: that service
    FREEZE = "freeze"  # subject: the frozen environment or service
    WINDOW = "window"  # no maintenance window is open; subject: the environment


@dataclass(frozen=True)
class Hold:
    """Why one upgrade waits. Wakes match `kind` and `subject`, never `text`: rewording what
    people read changes nothing about who is woken."""

    kind: HoldKind
    subject: str
    text: str
