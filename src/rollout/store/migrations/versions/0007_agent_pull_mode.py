"""agent pull mode: desired deploys per environment, agent tokens' environments

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27 10:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import rollout.store.models

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "agent_deployments",
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("environment", sa.String(length=63), nullable=False),
        sa.Column("service", sa.String(length=63), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=True),
        sa.Column("phase", sa.String(length=16), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("requested_at", rollout.store.models.UTCDateTime(), nullable=False),
        sa.Column("reported_at", rollout.store.models.UTCDateTime(), nullable=True),
        sa.Column("health", sa.String(length=16), nullable=True),
        sa.Column("health_at", rollout.store.models.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_agent_deployments")),
    )
    with op.batch_alter_table("agent_deployments", schema=None) as batch_op:
        batch_op.create_index(
            "ix_agent_deployments_environment_phase", ["environment", "phase"], unique=False
        )
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.add_column(sa.Column("environments", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.drop_column("environments")
    with op.batch_alter_table("agent_deployments", schema=None) as batch_op:
        batch_op.drop_index("ix_agent_deployments_environment_phase")
    op.drop_table("agent_deployments")
