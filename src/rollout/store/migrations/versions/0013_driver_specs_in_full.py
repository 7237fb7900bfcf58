"""driver specs in full: every upgrade's driver spec gets the keys older specs lack

An upgrade's driver spec is typed now (rollout.plan.driver) and validated as it is read.
Specs written before a setting existed lack its key, and the readers used to assume a
default (`driver.get("poll_interval_s", 1.0)`); here each gets that default, once.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05 09:30:00
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BATCH = 1000
_COMMON = {"poll_interval_s": 1.0, "deploy_timeout_s": 600.0}
# What the readers assumed when a spec lacked a key.
_DEFAULTS: dict[str, dict[str, object]] = {
    "simulated": {},
    "command": {
        "status": None,
        "remove": None,
        "health": None,
        "timeout_s": 600.0,
        "health_timeout_s": 30.0,
        "state_dir": None,
    },
    "http": {"mode": "push", "url": None, "token": None, "request_timeout_s": 10.0},
}


def filled(spec: dict[str, Any]) -> dict[str, Any]:
    """`spec` with every key of its type; a spec of no known type is left to fail on read."""
    defaults = _DEFAULTS.get(spec.get("type", ""))
    return spec if defaults is None else {**_COMMON, **defaults, **spec}


def upgrade() -> None:
    upgrades = sa.table("upgrades", sa.column("id", sa.Integer), sa.column("driver", sa.JSON))
    bind = op.get_bind()
    last = 0
    while True:
        rows = bind.execute(
            sa.select(upgrades.c.id, upgrades.c.driver)
            .where(upgrades.c.id > last)
            .order_by(upgrades.c.id)
            .limit(_BATCH)
        ).all()
        if not rows:
            return
        for upgrade_id, spec in rows:
            new = filled(spec or {})
            if new != spec:
                bind.execute(
                    sa.update(upgrades).where(upgrades.c.id == upgrade_id).values(driver=new)
                )
        last = rows[-1].id


def downgrade() -> None:
    # Older code reads the filled keys as it read their absence.
    pass
