"""Pull-mode agents' endpoints: what an environment should run, and what its agent did."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Path
from pydantic import Field
from sqlalchemy import select

from rollout.api.auth import forbidden
from rollout.api.deps import Agent, Context
from rollout.api.schemas import Strict
from rollout.store.database import is_postgresql, reading, transaction
from rollout.store.models import AgentDeployment
from rollout.store.tokens import TokenInfo

FINAL = ("succeeded", "failed")
Environment = Annotated[str, Path(pattern=r"^[a-z][a-z0-9-]{0,62}$", max_length=63)]

router = APIRouter(prefix="/v1/agents", tags=["agents"])


class DesiredDeploy(Strict):
    key: str = Field(description="the idempotency key: apply it once, however often it is read")
    service: str
    version: str | None = Field(description="null: remove the service")


class Desired(Strict):
    environment: str
    deployments: list[DesiredDeploy] = Field(description="oldest first; apply in this order")


class ReportIn(Strict):
    key: Annotated[str, Field(min_length=1, max_length=100)]
    phase: Literal["running", "succeeded", "failed"]
    message: Annotated[str, Field(max_length=2000)] = ""


class HealthIn(Strict):
    services: Annotated[
        dict[
            Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,62}$")],
            Literal["healthy", "unhealthy", "unknown"],
        ],
        Field(max_length=500),
    ]


class HealthOut(Strict):
    recorded: list[str] = Field(description="services whose health was recorded")


class ReportOut(Strict):
    key: str
    phase: str = Field(description="the deploy's phase as recorded (the first final report wins)")


def _bound(token: TokenInfo, environment: str) -> None:
    if environment not in token.environments:
        raise forbidden(
            f"this agent token is for {', '.join(token.environments)}, not {environment}"
        )


@router.get("/{environment}/desired")
def desired(environment: Environment, token: Agent, ctx: Context) -> Desired:
    """The deploys the engine wants in this environment and has no outcome for yet."""
    _bound(token, environment)
    with reading(ctx.database_url) as session:
        rows = session.scalars(
            select(AgentDeployment)
            .where(
                AgentDeployment.environment == environment,
                AgentDeployment.phase == "running",
            )
            .order_by(AgentDeployment.requested_at, AgentDeployment.key)
        )
        wanted = [DesiredDeploy(key=r.key, service=r.service, version=r.version) for r in rows]
    return Desired(environment=environment, deployments=wanted)


@router.post("/{environment}/reports", responses={404: {"description": "no such deploy"}})
def report(environment: Environment, body: ReportIn, token: Agent, ctx: Context) -> ReportOut:
    """An outcome of a deploy; reporting it again changes nothing."""
    _bound(token, environment)
    with transaction(ctx.database_url) as session:
        row = session.get(
            AgentDeployment, body.key, with_for_update=is_postgresql(ctx.database_url)
        )
        if row is None or row.environment != environment:
            raise HTTPException(404, f"no deploy {body.key} for {environment}")
        if row.phase not in FINAL:
            row.phase = body.phase
            row.message = body.message or None
            row.reported_at = ctx.now()
        return ReportOut(key=row.key, phase=row.phase)


@router.post("/{environment}/health")
def health(environment: Environment, body: HealthIn, token: Agent, ctx: Context) -> HealthOut:
    """How the services the agent deployed are doing (a pull agent serves no probe);
    recorded on each service's newest succeeded deploy, for the soak gate."""
    _bound(token, environment)
    recorded = []
    with transaction(ctx.database_url) as session:
        for service, state in sorted(body.services.items()):
            row = session.scalars(
                select(AgentDeployment)
                .where(
                    AgentDeployment.environment == environment,
                    AgentDeployment.service == service,
                    AgentDeployment.phase == "succeeded",
                )
                .order_by(AgentDeployment.requested_at.desc())
                .limit(1)
            ).first()
            if row is not None:
                row.health, row.health_at = state, ctx.now()
                recorded.append(service)
    return HealthOut(recorded=recorded)
