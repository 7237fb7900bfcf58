"""structured holds: an upgrade's hold has a kind and a subject beside its text

Wakes matched the text ("waits for <service> ") until now. Pending upgrades that wait for a
service get their kind and subject from that text here; every other hold is rewritten by
its rollout's next plan.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04 04:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PREFIX = "waits for "


def upgrade() -> None:
    with op.batch_alter_table("upgrades", schema=None) as batch_op:
        batch_op.add_column(sa.Column("hold_kind", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("hold_subject", sa.String(length=64), nullable=True))
    bind = op.get_bind()
    waiting = bind.execute(
        sa.text(
            "SELECT id, hold_reason FROM upgrades"
            " WHERE state = 'pending' AND hold_reason LIKE 'waits for %'"
        )
    ).all()
    for upgrade_id, reason in waiting:
        service = reason[len(_PREFIX) :].split(" ", 1)[0]
        bind.execute(
            sa.text(
                "UPDATE upgrades SET hold_kind = 'dependency', hold_subject = :service"
                " WHERE id = :id"
            ),
            {"service": service, "id": upgrade_id},
        )


def downgrade() -> None:
    with op.batch_alter_table("upgrades", schema=None) as batch_op:
        batch_op.drop_column("hold_subject")
        batch_op.drop_column("hold_kind")
