"""one live rollout per service: a partial unique index over running and paused rollouts

Before it, releases of one service submitted at the same moment could leave several rollouts
running. Those already in the database are superseded by the newest of their service, as a
submission would have done, so the index can be built.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04 04:00:00
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from rollout.store.models import UTCDateTime

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LIVE = "state IN ('running', 'paused')"


def upgrade() -> None:
    # The planner finishes what these have in flight and supersedes what they have not begun.
    statement = sa.text(
        f"""
        UPDATE rollouts SET state = 'superseding',
            reason = 'superseded by rollout ' || CAST((
                SELECT MAX(newer.id) FROM rollouts AS newer
                WHERE newer.service = rollouts.service AND newer.{LIVE}
            ) AS VARCHAR(20)) || ' (one live rollout per service)',
            due_at = :now
        WHERE {LIVE} AND id < (
            SELECT MAX(newer.id) FROM rollouts AS newer
            WHERE newer.service = rollouts.service AND newer.{LIVE}
        )
        """
    ).bindparams(sa.bindparam("now", type_=UTCDateTime()))
    op.get_bind().execute(statement, {"now": datetime.now(UTC)})
    op.create_index(
        "ux_rollouts_one_live_per_service",
        "rollouts",
        ["service"],
        unique=True,
        postgresql_where=sa.text(LIVE),
        sqlite_where=sa.text(LIVE),
    )


def downgrade() -> None:
    op.drop_index("ux_rollouts_one_live_per_service", table_name="rollouts")
