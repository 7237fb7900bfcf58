"""The simulated fleet's faults (demo, tests, benchmarks)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    model_validator,
)

from rollout.config.base import ConfigModel, Version, check_name, check_version


def _name_or_any(value: str) -> str:
    return value if value == "*" else check_name(value)


def _version_or_any(value: object) -> object:
    return value if value == "*" else check_version(value)


class Fault(ConfigModel):
    # "*" matches any service, any version.
    service: Annotated[str, AfterValidator(_name_or_any)] = "*"
    version: Annotated[str, BeforeValidator(_version_or_any)] = "*"
    health: Literal["healthy", "unhealthy", "flaky"] = "healthy"
    # Share of probes that cannot be taken, when health is flaky.
    flaky_rate: Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)] = 0.2
    # What the fake health endpoint reports; default 0.2 when unhealthy, else 0.0.
    error_rate: Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)] = 0.0
    deploy_seconds: Annotated[float, Field(ge=0, allow_inf_nan=False)] = 0.0
    deploy_fails: bool = False

    @model_validator(mode="before")
    @classmethod
    def _default_error_rate(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and data.get("error_rate") is None:
            rate = 0.2 if data.get("health") == "unhealthy" else 0.0
            return {**data, "error_rate": rate}
        return data

    def specificity(self) -> int:
        # An exact version beats a service-wide rule, as in the simulated driver.
        return (self.version != "*") * 2 + (self.service != "*")

    def matches(self, service: str, version: str) -> bool:
        return self.service in ("*", service) and self.version in ("*", version)


class Simulation(ConfigModel):
    initial_version: Version | None = None
    faults: list[Fault] = Field(default_factory=list)

    def fault_for(self, service: str, version: str) -> Fault | None:
        """The most specific fault for (service, version); the first in the file on a tie."""
        found = [f for f in self.faults if f.matches(service, version)]
        return max(found, key=Fault.specificity, default=None)
