"""the audit trail: an events table, one row per action (who, when, what, why)

Every steering action, recall, freeze, override, token change and page answer writes its
event in its own transaction. The new final upgrade state `skipped` (an operator left the
environment out of its stage) needs no change: `upgrades.state` is a plain string.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04 19:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from rollout.store.models import UTCDateTime

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("actor", sa.String(length=255), nullable=False),
        sa.Column("token_id", sa.Integer(), nullable=True),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("service", sa.String(length=63), nullable=True),
        sa.Column("rollout_id", sa.Integer(), nullable=True),
        sa.Column("team", sa.String(length=63), nullable=True),
        sa.Column("subject", sa.String(length=255), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["token_id"], ["api_tokens.id"], name=op.f("fk_events_token_id_api_tokens")
        ),
        sa.ForeignKeyConstraint(
            ["rollout_id"], ["rollouts.id"], name=op.f("fk_events_rollout_id_rollouts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
    )
    op.create_index(op.f("ix_events_at"), "events", ["at"])
    op.create_index(op.f("ix_events_service"), "events", ["service"])
    op.create_index(op.f("ix_events_rollout_id"), "events", ["rollout_id"])


def downgrade() -> None:
    # An upgrade skipped by an operator reads as cancelled to older code: never started.
    op.execute("UPDATE upgrades SET state = 'cancelled' WHERE state = 'skipped'")
    op.drop_index(op.f("ix_events_rollout_id"), table_name="events")
    op.drop_index(op.f("ix_events_service"), table_name="events")
    op.drop_index(op.f("ix_events_at"), table_name="events")
    op.drop_table("events")
