"""The history's read models: a timeline of releases, stages, failures, rollbacks and the
actions people took, oldest first."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from rollout.api.schemas.base import Strict

# Where an entry comes from: an action someone took (recorded as it happened), or a fact
# of the engine's rows (a release submitted, a stage passed, a rollback, a page, an end).
EventKind = Literal["action", "release", "stage", "rollback", "page", "rollout"]


class EventView(Strict):
    at: datetime = Field(description="when, with its zone")
    kind: EventKind
    action: str = Field(description="pause, skip, submitted, stage-passed, rolled-back, …")
    who: str | None = Field(
        description="the token (id and note) or the local user; null: the engine"
    )
    what: str = Field(description="what happened, in one line")
    why: str | None = Field(description="the reason given, or the engine's")
    service: str | None
    rollout_id: int | None
    subject: str | None = Field(description="the environment, stage, page or token concerned")


class EventList(Strict):
    events: list[EventView] = Field(description="oldest first")
