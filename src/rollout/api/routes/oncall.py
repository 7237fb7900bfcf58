"""Who is on call for a team at an instant, and why."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query

from rollout.api.auth import check_team
from rollout.api.deps import Context, NamePath, Reader
from rollout.api.schemas import OnCallOut
from rollout.api.views import oncall_out
from rollout.engine.outbox import on_call_now
from rollout.engine.submission import paging_spec
from rollout.store.database import reading

router = APIRouter(tags=["on-call"])


@router.get("/v1/teams/{team}/oncall")
def team_oncall(
    team: NamePath,
    token: Reader,
    ctx: Context,
    at: Annotated[datetime | None, Query(description="ISO 8601 with a zone")] = None,
) -> OnCallOut:
    """Who is primary and secondary on call for a team at an instant (default: now), and
    why: the rotation, an override, or the rest rule."""
    if team not in {t.name for t in ctx.fleet.teams}:
        raise HTTPException(404, f"unknown team {team!r}")
    check_team(token, team, f"team {team}")
    spec = ctx.fleet.team(team)
    if spec.rotations is None:
        raise HTTPException(404, f"team {team!r} has no rotations in the fleet config")
    if at is not None and at.tzinfo is None:
        raise HTTPException(422, "at: give the time with its zone, e.g. +02:00 or Z")
    when = at or ctx.now()
    with reading(ctx.database_url) as session:
        on_call = on_call_now(session, paging_spec(spec), when)
    assert on_call is not None
    return oncall_out(team, on_call, when)
