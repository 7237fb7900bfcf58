"""The history's derived facts: when each stage of a rollout passed, read off its upgrades."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

from rollout.domain.planning import StagePlan
from rollout.domain.states import UpgradeState


@dataclass(frozen=True)
class UpgradeFact:
    stage_index: int
    state: UpgradeState
    finished_at: datetime | None


@dataclass(frozen=True)
class StagePassed:
    index: int
    stage: str
    at: datetime
    required: int
    counted: int  # the stage's environments, those skipped left out


def stage_passages(
    stages: Sequence[StagePlan], upgrades: Sequence[UpgradeFact], stage_index: int
) -> Iterator[StagePassed]:
    """Each stage up to `stage_index` (the rollout's current one) that passed, at the time the
    last success its share needed finished: the planner marks it passed at its next plan,
    moments later, and keeps only the current stage's time. A stage left by force before
    enough passed has none (the forced promotion's event says so), nor has an empty one."""
    for index, stage in enumerate(stages[: stage_index + 1]):
        members = [
            u for u in upgrades if u.stage_index == index and u.state is not UpgradeState.SKIPPED
        ]
        required = stage.required(len(members))
        wins = sorted(
            u.finished_at
            for u in members
            if u.state is UpgradeState.SUCCEEDED and u.finished_at is not None
        )
        if required == 0 or len(wins) < required:
            continue
        yield StagePassed(index, stage.name, wins[required - 1], required, len(members))
