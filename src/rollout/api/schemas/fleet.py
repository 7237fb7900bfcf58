"""The fleet at a glance, as the API serves it and the CLI draws it: services × environments,
each cell the installed version and what is happening to it, environments grouped by stage."""

from __future__ import annotations

from pydantic import Field

from rollout.api.schemas.base import Strict
from rollout.domain.fleet import Mark


class FleetStage(Strict):
    """A stage of the fleet config and its environments, in the config's order."""

    name: str
    environments: list[str]


class FleetCell(Strict):
    """One service in one environment."""

    environment: str
    stage: str
    version: str | None = Field(description="installed and healthy; null: none known")
    mark: Mark | None = Field(
        description="in_flight, failed, held, queued or recalled; null: nothing under way"
    )
    to_version: str | None = Field(description="the version the mark is about")
    rollout_id: int | None = Field(description="the rollout the mark comes from")
    state: str | None = Field(description="that rollout's upgrade here: verifying, rolled_back…")
    reason: str | None = Field(description="why: held, failed or recalled")


class FleetRow(Strict):
    """A service and its cells: only the environments it runs in, in column order."""

    service: str
    team: str
    cells: list[FleetCell]


class FleetView(Strict):
    stages: list[FleetStage] = Field(description="the columns, grouped by stage, in order")
    services: list[FleetRow]
