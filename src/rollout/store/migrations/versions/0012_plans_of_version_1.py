"""plans of version 1: every rollout's plan snapshot gets what older snapshots lack

The plan is typed now (rollout.plan.Plan) and a row's plan is validated as it is read.
Snapshots written before windows, requirements, air-gapped paging, artifacts or Slack
contacts existed lack those keys; the readers used to guess them (`plan.get("windows") or
{}`). Here each gets, once, what those guesses were, and `version: 1`.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05 09:00:00
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BATCH = 500
# What the readers assumed when a gate's snapshot lacked a key.
_GATE_DEFAULTS: dict[str, dict[str, Any]] = {
    "http": {"no_data": "error", "success_condition": None, "failure_condition": None},
    "prometheus": {
        "value_name": "value",
        "no_data": "error",
        "nan": "error",
        "success_condition": None,
        "failure_condition": None,
    },
    "webhook": {"url": None, "url_env": None, "token_env": None},
    "soak": {},
}
_COMMON_GATE_DEFAULTS: dict[str, Any] = {"consecutive_successes": None, "dry_run": False}


def _paging(spec: dict[str, Any] | None, team: str) -> dict[str, Any]:
    paging = {"team": team, "rotations": None, **(spec or {})}
    paging["members"] = [
        {"email": None, "slack": None, **member} for member in paging.get("members") or []
    ]
    paging["escalation"] = paging.get("escalation") or []
    paging["channels"] = paging.get("channels") or []
    return paging


def filled(plan: dict[str, Any], team: str) -> dict[str, Any]:
    """`plan` with every key a version 1 plan has; the values older readers assumed."""
    plan = {
        "stages": [],
        "gates": [],
        "environments": [],
        "air_gapped": [],
        "operations": None,
        "artifacts": None,
        "requires": [],
        **plan,
        "version": 1,
    }
    plan["paging"] = _paging(plan.get("paging"), team)
    if plan["operations"]:
        plan["operations"] = _paging(plan["operations"], plan["operations"].get("team", team))
    windows = plan.get("windows") or {}
    plan["windows"] = {
        "service": windows.get("service") or [],
        "environments": windows.get("environments") or {},
    }
    plan["gates"] = [
        {**_COMMON_GATE_DEFAULTS, **_GATE_DEFAULTS.get(gate.get("type"), {}), **gate}
        for gate in plan["gates"]
    ]
    if plan["artifacts"]:
        plan["artifacts"] = {"path": None, "url": None, "scanner": None, **plan["artifacts"]}
    return plan


def upgrade() -> None:
    rollouts = sa.table(
        "rollouts", sa.column("id", sa.Integer), sa.column("team"), sa.column("plan", sa.JSON)
    )
    bind = op.get_bind()
    last = 0
    while True:
        rows = bind.execute(
            sa.select(rollouts.c.id, rollouts.c.team, rollouts.c.plan)
            .where(rollouts.c.id > last)
            .order_by(rollouts.c.id)
            .limit(_BATCH)
        ).all()
        if not rows:
            return
        for rollout_id, team, plan in rows:
            new = filled(plan or {}, team)
            if new != plan:
                bind.execute(
                    sa.update(rollouts).where(rollouts.c.id == rollout_id).values(plan=new)
                )
        last = rows[-1].id


def downgrade() -> None:
    # Older code reads the filled keys as it read their absence; `version` it ignores.
    pass
