"""Paging hygiene: what paging cost each team and gate, and the anti-patterns it shows."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query

from rollout.api import reads
from rollout.api.auth import visible_team
from rollout.api.deps import Context, NameQuery, Reader
from rollout.api.schemas import HygieneOut
from rollout.durations import parse_window
from rollout.store.database import reading

router = APIRouter(tags=["pages"])

# What parse_window takes, every part above zero and bounded: the schema says exactly what
# the endpoint accepts (a window of 600 years still ends after year 1).
WINDOW_PATTERN = (
    r"^([1-9]\d{0,3}w)?([1-9]\d{0,4}d)?([1-9]\d{0,5}h)?([1-9]\d{0,6}m)?([1-9]\d{0,7}s)?$"
)


@router.get("/v1/hygiene")
def get_hygiene(
    token: Reader,
    ctx: Context,
    since: Annotated[
        str,
        Query(
            min_length=2,
            max_length=32,
            pattern=WINDOW_PATTERN,
            description="how far back to look: 30d, 12h, 2w, 2w3d",
        ),
    ] = "30d",
    team: NameQuery = None,
    night_budget: Annotated[
        float, Query(ge=0, le=1e6, description="night pages a team may get per week")
    ] = 2.0,
) -> HygieneOut:
    """Per team and gate: pages, night pages, time to acknowledge, misroutes and false
    positives over the window, and the findings. A team token sees its own team's only."""
    try:
        window: timedelta = parse_window(since)
    except ValueError as error:
        raise HTTPException(422, f"since: {error}") from None
    team = visible_team(token, team)
    known = [t.name for t in ctx.fleet.teams]
    if team is not None and team not in known:
        raise HTTPException(404, f"unknown team {team!r} (teams: {', '.join(known) or 'none'})")
    until = ctx.now()
    with reading(ctx.database_url) as session:
        return reads.hygiene_report(session, ctx.fleet, until - window, until, team, night_budget)
