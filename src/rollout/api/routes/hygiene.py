"""Paging hygiene: what paging cost each team and gate, and the anti-patterns it shows."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query

from rollout.api import reads
from rollout.api.auth import visible_team
from rollout.api.deps import Context, NameQuery, Reader, Window, window_of
from rollout.api.schemas import HygieneOut
from rollout.store.database import reading

router = APIRouter(tags=["pages"])


@router.get("/v1/hygiene")
def get_hygiene(
    token: Reader,
    ctx: Context,
    since: Window = "30d",
    team: NameQuery = None,
    night_budget: Annotated[
        float, Query(ge=0, le=1e6, description="night pages a team may get per week")
    ] = 2.0,
) -> HygieneOut:
    """Per team and gate: pages, night pages, time to acknowledge, misroutes and false
    positives over the window, and the findings. A team token sees its own team's only."""
    window = window_of(since)
    team = visible_team(token, team)
    known = [t.name for t in ctx.fleet.teams]
    if team is not None and team not in known:
        raise HTTPException(404, f"unknown team {team!r} (teams: {', '.join(known) or 'none'})")
    until = ctx.now()
    with reading(ctx.database_url) as session:
        return reads.hygiene_report(session, ctx.fleet, until - window, until, team, night_budget)
