"""artifact checks: the verdict on each artifact entering an air-gapped environment

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27 10:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "artifact_checks",
        sa.Column("upgrade_id", sa.Integer(), nullable=False),
        sa.Column("admitted", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("digest", sa.String(length=71), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("scanner_exit", sa.Integer(), nullable=True),
        sa.Column("scanner_output", sa.Text(), nullable=True),
        sa.Column("checked_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["upgrade_id"],
            ["upgrades.id"],
            name=op.f("fk_artifact_checks_upgrade_id_upgrades"),
        ),
        sa.PrimaryKeyConstraint("upgrade_id", name=op.f("pk_artifact_checks")),
    )


def downgrade() -> None:
    op.drop_table("artifact_checks")
