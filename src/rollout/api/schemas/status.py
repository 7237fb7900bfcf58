"""The status of a rollout, as a pipeline waits on it: where it is, what holds it and until
when, and the verdict (exit code and why) for a caller prepared to wait so long."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from rollout.api.schemas.base import Strict


class HoldView(Strict):
    """Pending upgrades that wait for one reason."""

    kind: str = Field(description="paused, stage, parallelism, busy, recalled, dependency, …")
    subject: str = Field(description="what it waits for: a stage, service, environment, id")
    text: str
    environments: list[str]
    clears_at: datetime | None = Field(
        description="when it clears by itself; null: no known instant (a person, another "
        "service, a stage) or never"
    )


class VerdictView(Strict):
    exit_code: int = Field(description="0 succeeded, 1 failed, 2 in progress, 3 held, 4 none")
    outcome: str = Field(description="succeeded, failed, in_progress, held or not_found")
    why: str = Field(description="one line")
    settled: bool = Field(description="true: waiting longer cannot change the outcome")


class RolloutStatus(Strict):
    id: int
    service: str
    version: str
    team: str
    state: str
    final: bool
    stage: str = Field(description="the stage it is at now")
    stage_index: int
    stages: int
    done: int = Field(description="environments upgraded")
    total: int
    counts: dict[str, int] = Field(description="upgrades by state")
    reason: str | None
    holds: list[HoldView]
    verdict: VerdictView
    updated_at: datetime
