"""The http driver in pull mode: the engine records the deploy it wants in its own database
and reads the outcome the environment's agent reported; it never calls into the network."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from rollout.drivers import DeployPhase, DeployRequest, DeployStatus, Health
from rollout.store.database import reading, transaction
from rollout.store.models import AgentDeployment

# A health report older than this says nothing about now.
HEALTH_MAX_AGE = timedelta(seconds=60)


class PullDriver:
    def __init__(self, database_url: str) -> None:
        self.database_url = database_url

    def start(self, request: DeployRequest) -> None:
        now = datetime.now(UTC)
        try:
            with transaction(self.database_url) as session:
                if session.get(AgentDeployment, request.key) is not None:
                    return  # the same key again is the same deploy
                # A newer deploy of the service (the rollback after a hung one) is what the
                # agent should apply: the older one is no longer wanted.
                session.execute(
                    update(AgentDeployment)
                    .where(
                        AgentDeployment.environment == request.environment,
                        AgentDeployment.service == request.service,
                        AgentDeployment.phase == DeployPhase.RUNNING,
                    )
                    .values(phase=DeployPhase.FAILED, message=f"superseded by {request.key}")
                )
                session.add(
                    AgentDeployment(
                        key=request.key,
                        environment=request.environment,
                        service=request.service,
                        version=request.version,
                        phase=DeployPhase.RUNNING,
                        requested_at=now,
                    )
                )
        except IntegrityError:
            return  # another worker recorded the same key at the same moment

    def status(self, key: str) -> DeployStatus:
        with reading(self.database_url) as session:
            row = session.get(AgentDeployment, key)
            if row is None:
                # Every worker sees this table: no row means the request was never recorded.
                return DeployStatus(DeployPhase.UNKNOWN, f"no deploy {key} was recorded")
            if row.phase == DeployPhase.RUNNING:
                waiting = "applying" if row.reported_at else "waiting for the agent to pull it"
                return DeployStatus(DeployPhase.RUNNING, row.message or waiting)
            return DeployStatus(DeployPhase(row.phase), row.message or "")

    def health(self, environment: str, service: str) -> Health:
        """What the agent last reported for the service's newest deploy, if recent."""
        with reading(self.database_url) as session:
            row = session.scalars(
                select(AgentDeployment)
                .where(
                    AgentDeployment.environment == environment,
                    AgentDeployment.service == service,
                    AgentDeployment.phase == DeployPhase.SUCCEEDED,
                )
                .order_by(AgentDeployment.requested_at.desc())
                .limit(1)
            ).first()
            if row is None or row.health is None or row.health_at is None:
                return Health.UNKNOWN
            if datetime.now(UTC) - row.health_at > HEALTH_MAX_AGE:
                return Health.UNKNOWN  # an agent that stopped reporting is not known healthy
            return Health(row.health)
