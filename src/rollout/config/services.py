"""Services: their gates, requirements, and how their artifacts enter air-gapped environments."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    ByteSize,
    Field,
    model_validator,
)

from rollout.config.base import (
    REQUIREMENT_OPERATORS,
    ConfigModel,
    Name,
    Version,
    check_placeholders,
)
from rollout.config.environments import (
    Environment,
    EnvironmentSelector,
    MaintenanceWindow,
    check_argv,
)
from rollout.config.gates import Gate, check_url
from rollout.domain.entry import LOCATION_PLACEHOLDERS, SCANNER_PLACEHOLDERS
from rollout.durations import PositiveDuration


def _scanner_argv(value: list[str]) -> list[str]:
    return check_argv(value, SCANNER_PLACEHOLDERS)


def _artifact_path(value: str) -> str:
    if not value.startswith("/"):
        raise ValueError(f"path {value!r} must be absolute (every worker reads it)")
    return check_placeholders(value, LOCATION_PLACEHOLDERS, "path")


def _artifact_url(value: str) -> str:
    check_url(value)
    return check_placeholders(value, LOCATION_PLACEHOLDERS, "url")


class Scanner(ConfigModel):
    """A program run on each artifact before it enters an air-gapped environment: exit 0 is
    clean, anything else a finding. An argument list, never a shell."""

    # Placeholders {artifact} (the file) {service} {version} {environment} {digest}.
    command: Annotated[list[str], Field(min_length=1), AfterValidator(_scanner_argv)]
    timeout: PositiveDuration = timedelta(minutes=5)


class Artifacts(ConfigModel):
    """Where the bytes of a service's version are, so that their digest can be checked."""

    # Exactly one of: a file every worker sees, or an http(s) URL; placeholders {service}
    # {version} {environment} {digest}.
    path: Annotated[str, AfterValidator(_artifact_path)] | None = None
    url: Annotated[str, AfterValidator(_artifact_url)] | None = None
    max_size: ByteSize = ByteSize(10 * 2**30)
    # For reading or downloading the artifact (the scanner has its own).
    timeout: PositiveDuration = timedelta(minutes=5)
    scanner: Scanner | None = None

    @model_validator(mode="after")
    def _one_location(self) -> Artifacts:
        if (self.path is None) == (self.url is None):
            raise ValueError("give exactly one of `path` and `url`")
        return self


REQUIREMENT = re.compile(r"\s*([^\s<>=!]+)\s*(>=|<=|==|!=|>|<)\s*(\S+)\s*")


class Requirement(ConfigModel):
    service: Name
    op: Literal[">=", ">", "==", "<=", "<", "!="]
    version: Version

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, data: Any) -> Any:
        if not isinstance(data, str):
            return data
        match = REQUIREMENT.fullmatch(data)
        if match is None:
            ops = " ".join(REQUIREMENT_OPERATORS)
            raise ValueError(
                f'invalid requirement {data!r}: use "SERVICE OP VERSION" with OP one of {ops}, '
                'e.g. "billing-db >= 2.3"'
            )
        return {"service": match.group(1), "op": match.group(2), "version": match.group(3)}

    def __str__(self) -> str:
        return f"{self.service} {self.op} {self.version}"


class Service(ConfigModel):
    name: Name
    team: Name
    # None: every environment.
    environments: EnvironmentSelector | None = None
    requires: list[Requirement] = Field(default_factory=list)
    gates: list[Gate] = Field(default_factory=list)
    # Upgrades start only inside one of these (and the environment's); none: always open.
    windows: list[MaintenanceWindow] = Field(default_factory=list)
    # Overrides the fleet's `artifacts` for this service.
    artifacts: Artifacts | None = None

    def runs_in(self, environment: Environment) -> bool:
        return self.environments is None or self.environments.matches(environment)
