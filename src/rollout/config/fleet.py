"""The fleet: every team, stage, environment and service, checked against each other."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, cast

from pydantic import (
    Field,
    ModelWrapValidatorHandler,
    PrivateAttr,
    ValidationError,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from rollout.config.base import ConfigModel, Name, Severity
from rollout.config.environments import Environment, Stage
from rollout.config.references import Loc, reference_problems, value_at
from rollout.config.services import Artifacts, Service
from rollout.config.simulation import Simulation
from rollout.config.teams import Team
from rollout.domain.constraints import next_open_in_all


class Operations(ConfigModel):
    team: Name


class Fleet(ConfigModel):
    teams: list[Team] = Field(default_factory=list)
    # The order in the file is the pipeline order.
    stages: Annotated[list[Stage], Field(min_length=1)]
    environments: list[Environment] = Field(default_factory=list)
    services: list[Service] = Field(default_factory=list)
    # Only the simulated driver reads this (demo, tests, benchmarks).
    simulation: Simulation | None = None
    # The facility's 24/7 operations rotation (the NOC): pages about air-gapped environments
    # reach it too, since only its people have hands on those networks.
    operations: Operations | None = None
    # Where artifacts are found, to be verified before they enter an air-gapped environment.
    artifacts: Artifacts | None = None

    _stage_index: dict[str, int] = PrivateAttr(default_factory=dict)
    _services: dict[str, Service] = PrivateAttr(default_factory=dict)
    _teams: dict[str, Team] = PrivateAttr(default_factory=dict)
    _environments: dict[str, Environment] = PrivateAttr(default_factory=dict)

    def model_post_init(self, context: Any, /) -> None:
        # The engine asks these per upgrade: index once instead of scanning lists.
        self._stage_index = {s.name: i for i, s in enumerate(self.stages)}
        self._services = {s.name: s for s in self.services}
        self._teams = {t.name: t for t in self.teams}
        self._environments = {e.name: e for e in self.environments}

    @model_validator(mode="wrap")
    @classmethod
    def _cross_checks(cls, data: Any, handler: ModelWrapValidatorHandler[Fleet]) -> Fleet:
        # Run the reference checks on the raw input even when fields failed, so one load
        # reports every problem, each with its own location.
        if isinstance(data, Fleet):
            return data
        errors: list[InitErrorDetails] = []
        fleet: Fleet | None = None
        try:
            fleet = handler(data)
        except ValidationError as exc:
            errors = [_reraise(error, data) for error in exc.errors()]
        if isinstance(data, Mapping):
            errors += [
                {"type": PydanticCustomError("reference", message), "loc": loc, "input": None}
                for loc, message in reference_problems(data)
            ]
        if errors:
            raise ValidationError.from_exception_data(cls.__name__, errors)
        assert fleet is not None
        return fleet

    def stage(self, name: str) -> Stage:
        return self.stages[self.stage_index(name)]

    def stage_index(self, name: str) -> int:
        """Position of the stage in the pipeline; KeyError if unknown."""
        return self._stage_index[name]

    def service(self, name: str) -> Service:
        """KeyError if unknown."""
        return self._services[name]

    def team(self, name: str) -> Team:
        """KeyError if unknown."""
        return self._teams[name]

    def environment(self, name: str) -> Environment:
        """KeyError if unknown."""
        return self._environments[name]

    def environments_of(self, service: Service) -> list[Environment]:
        """The environments the service runs in: in stage order, then file order."""
        chosen = [e for e in self.environments if service.runs_in(e)]
        # sorted() is stable, so file order holds within a stage.
        return sorted(chosen, key=lambda e: self._stage_index[e.stage])

    def warnings(self) -> list[str]:
        """What is allowed but unwise: a team without rotations or channels; a rotation of
        more than six people (shifts come round so rarely that people lose touch with the
        systems); a service in an air-gapped environment (its releases need a digest); a
        service whose maintenance windows never overlap an environment's."""
        found = self._unreachable_teams()
        for index, team in enumerate(self.teams):
            if team.rotations is None:
                continue
            for role in ("primary", "secondary"):
                members = getattr(team.rotations, role).members
                if len(members) > 6:
                    found.append(
                        f"teams[{index}].rotations.{role}: {len(members)} members; more than 6 "
                        "and each comes round too rarely to stay in practice"
                    )
        for index, environment in enumerate(self.environments):
            if not self.air_gapped(environment):
                continue
            unchecked = [
                s.name
                for s in self.services
                if s.runs_in(environment) and self.artifacts_for(s) is None
            ]
            if unchecked:
                names = ", ".join(unchecked[:3])
                if len(unchecked) > 3:
                    names += f" and {len(unchecked) - 3} more"
                found.append(
                    f"environments[{index}]: {environment.name} is air-gapped, but no "
                    f"`artifacts` location is set for {names}: what enters it is not verified"
                )
        found += self._digests_needed()
        # Windows that never overlap hold a service's upgrades in an environment for ever.
        since = datetime(2026, 1, 5, tzinfo=UTC)
        for index, service in enumerate(self.services):
            for environment in self.environments_of(service):
                if not (service.windows and environment.windows):
                    continue
                groups = [[w.window() for w in service.windows]]
                groups.append([w.window() for w in environment.windows])
                if next_open_in_all(groups, since) is None:
                    found.append(
                        f"services[{index}].windows: never overlap the windows of environment "
                        f"{environment.name}; {service.name} would never upgrade there"
                    )
        return found

    def _unreachable_teams(self) -> list[str]:
        """A team no one person is on call for, or whose pages go out on no channel."""
        found = []
        for index, team in enumerate(self.teams):
            if team.rotations is None:
                found.append(
                    f"teams[{index}]: {team.name} has no rotations: its pages go to the "
                    "whole team, no one person is on call"
                )
            if not team.channels:
                found.append(
                    f"teams[{index}]: {team.name} has no channels: its pages are recorded "
                    "but reach no one"
                )
        return found

    def _digests_needed(self) -> list[str]:
        """A service that deploys into an air-gapped environment: a release of it without a
        digest is blocked there, so say so before the first one is."""
        found = []
        for index, service in enumerate(self.services):
            gapped = [e.name for e in self.environments_of(service) if self.air_gapped(e)]
            if gapped:
                names = ", ".join(gapped[:3]) + (
                    f" and {len(gapped) - 3} more" if len(gapped) > 3 else ""
                )
                found.append(
                    f"services[{index}]: {service.name} deploys into air-gapped {names}: a "
                    "release of it without --digest is blocked there"
                )
        return found

    def artifacts_for(self, service: Service) -> Artifacts | None:
        return service.artifacts or self.artifacts

    def air_gapped(self, environment: Environment) -> bool:
        return environment.labels.get("air_gapped") == "true"

    def severity_for_stage(self, stage_name: str) -> Severity:
        """The stage's page severity: its own, or P0 last, P2 before last, P3 earlier."""
        index = self.stage_index(stage_name)
        configured = self.stages[index].page_severity
        if configured is not None:
            return configured
        from_end = len(self.stages) - 1 - index
        return "P0" if from_end == 0 else "P2" if from_end == 1 else "P3"


def _reraise(error: Any, data: Any) -> InitErrorDetails:
    """One of the handler's errors, passed on (with a clearer word for an owner-less service)."""
    loc = cast(Loc, tuple(error["loc"]))
    if (
        len(loc) == 3
        and loc[0] == "services"
        and loc[2] == "team"
        and (error["type"] == "missing" or error["input"] is None)
    ):
        name = value_at(value_at(data, "services", loc[1]), "name")
        shown = repr(name) if isinstance(name, str) else f"#{loc[1]}"
        message = f"service {shown} has no owning team (field `team`)"
        return {"type": PydanticCustomError("no_owner", message), "loc": loc, "input": None}
    details: InitErrorDetails = {"type": error["type"], "loc": loc, "input": error["input"]}
    if "ctx" in error:
        details["ctx"] = error["ctx"]
    try:
        ValidationError.from_exception_data("check", [details])
    except (KeyError, TypeError, ValueError):
        # Not a built-in error type pydantic can rebuild: keep its message as it is.
        custom = PydanticCustomError(error["type"], error["msg"])
        return {"type": custom, "loc": loc, "input": error["input"]}
    return details
