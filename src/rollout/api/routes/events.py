"""The history: a timeline of releases, stage passages, failures, rollbacks and actions."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query

from rollout.api import reads
from rollout.api.auth import check_team, visible_team
from rollout.api.deps import MAX_ID, Context, Limit, NameQuery, Reader
from rollout.api.history import timeline
from rollout.api.routes.hygiene import WINDOW_PATTERN
from rollout.api.schemas.history import EventList
from rollout.durations import parse_window
from rollout.store.database import reading

router = APIRouter(tags=["history"])


@router.get("/v1/events")
def get_events(
    token: Reader,
    ctx: Context,
    service: NameQuery = None,
    rollout: Annotated[int | None, Query(ge=1, le=MAX_ID, description="one rollout's")] = None,
    since: Annotated[
        str,
        Query(
            min_length=2,
            max_length=32,
            pattern=WINDOW_PATTERN,
            description="how far back to look: 7d, 12h, 2w",
        ),
    ] = "7d",
    limit: Limit = 1000,
) -> EventList:
    """The timeline, oldest first: releases submitted, stages passed, pages, rollbacks,
    rollouts ended, and what people did (who, when, why). A team token sees its team's
    only."""
    try:
        window: timedelta = parse_window(since)
    except ValueError as error:
        raise HTTPException(422, f"since: {error}") from None
    team = visible_team(token, None)
    with reading(ctx.database_url) as session:
        if rollout is not None:
            owner = reads.rollout_team(session, rollout)
            if owner is None:
                raise HTTPException(404, f"no rollout {rollout}")
            check_team(token, owner, f"rollout {rollout}")
        events = timeline(
            session,
            since=ctx.now() - window,
            service=service,
            rollout_id=rollout,
            team=team,
            limit=limit,
        )
    return EventList(events=events)
