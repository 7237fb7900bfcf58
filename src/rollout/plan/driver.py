"""The driver spec an upgrade carries: how its environment's driver is reached, typed."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from rollout.secrets import SecretRef


class _Spec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class _DriverSpec(_Spec):
    poll_interval_s: float
    deploy_timeout_s: float

    @property
    def poll_interval(self) -> timedelta:
        return timedelta(seconds=self.poll_interval_s)

    @property
    def deploy_timeout(self) -> timedelta:
        return timedelta(seconds=self.deploy_timeout_s)


class SimulatedDriverSpec(_DriverSpec):
    type: Literal["simulated"]


class CommandDriverSpec(_DriverSpec):
    type: Literal["command"]
    deploy: tuple[str, ...]
    status: tuple[str, ...] | None
    remove: tuple[str, ...] | None
    health: tuple[str, ...] | None
    timeout_s: float
    health_timeout_s: float
    state_dir: str | None


class HttpDriverSpec(_DriverSpec):
    type: Literal["http"]
    mode: Literal["push", "pull"]
    url: str | None  # rendered for its environment: the worker knows no config
    token: SecretRef | None  # the reference: the worker reads the token at each call
    request_timeout_s: float


DriverSpec = Annotated[
    SimulatedDriverSpec | CommandDriverSpec | HttpDriverSpec, Field(discriminator="type")
]
