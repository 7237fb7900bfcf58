"""Push mode: the agent's HTTP API, which the orchestrator's http driver calls."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from rollout.agent import KEY_PATTERN, Agent, Conflict, WrongEnvironment
from rollout.config.base import NAME_PATTERN, VERSION_PATTERN
from rollout.drivers import DeployRequest, Health
from rollout.json_types import JsonObject
from rollout.secrets import SecretError, SecretRef


class DeploymentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: Annotated[str, Field(pattern=KEY_PATTERN)]
    environment: Annotated[str, Field(pattern=NAME_PATTERN)]
    service: Annotated[str, Field(pattern=NAME_PATTERN)]
    # None removes the service (the rollback of a first install).
    version: Annotated[str, Field(pattern=VERSION_PATTERN)] | None


def push_app(agent: Agent, token: SecretRef | None) -> FastAPI:
    app = FastAPI(title="rollout agent", version="1")

    def authorized(request: Request) -> None:
        if token is None:
            return
        try:
            wanted = token.resolve()
        except SecretError as error:
            raise HTTPException(503, f"the agent cannot read its token: {error}") from None
        header = request.headers.get("authorization", "")
        kind, _, given = header.partition(" ")
        if kind.lower() != "bearer" or not hmac.compare_digest(given.strip(), wanted):
            raise HTTPException(401, "send the agent's token: Authorization: Bearer <token>")

    @app.post("/deployments", status_code=201, dependencies=[Depends(authorized)])
    def deploy(body: DeploymentIn, response: Response) -> JsonObject:
        """Start a deploy; the same key again is the same deploy (200), never a second one."""
        request = DeployRequest(body.key, body.environment, body.service, body.version)
        try:
            deployment, created = agent.deploy(request)
        except WrongEnvironment as error:
            raise HTTPException(422, str(error)) from None
        except Conflict as error:
            raise HTTPException(409, str(error)) from None
        if not created:
            response.status_code = 200
        return deployment.as_json()

    @app.get("/deployments/{key}", dependencies=[Depends(authorized)])
    def deployment(key: str) -> JsonObject:
        found = agent.status(key)
        if found is None:
            raise HTTPException(404, f"no deploy {key} here")
        return found.as_json()

    @app.get("/health")
    def health() -> JsonObject:
        """The agent is up; what runs in its environment (versions only)."""
        return {
            "status": "ok",
            "environment": agent.environment,
            "services": {s: d.version for s, d in sorted(agent.versions().items())},
        }

    @app.get("/health/{service}")
    def service_health(service: str, response: Response) -> JsonObject:
        """200 healthy, 503 unhealthy or not known yet; 404 a service never deployed here."""
        state = agent.health(service)
        if state is None:
            raise HTTPException(404, f"{service} was never deployed by this agent")
        running = agent.versions().get(service)
        if state is not Health.HEALTHY:
            response.status_code = 503
        return {
            "service": service,
            "status": state.value,
            "healthy": state is Health.HEALTHY,
            "version": None if running is None else running.version,
        }

    return app
