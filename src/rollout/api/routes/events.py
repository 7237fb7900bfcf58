"""The history: a timeline of releases, stage passages, failures, rollbacks and actions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query

from rollout.api import reads
from rollout.api.auth import check_team, visible_team
from rollout.api.deps import MAX_ID, Context, Limit, NameQuery, Reader, Window, window_of
from rollout.api.history import timeline
from rollout.api.schemas.history import EventList
from rollout.store.database import reading

router = APIRouter(tags=["history"])


@router.get("/v1/events")
def get_events(
    token: Reader,
    ctx: Context,
    service: NameQuery = None,
    rollout: Annotated[int | None, Query(ge=1, le=MAX_ID, description="one rollout's")] = None,
    since: Window = "7d",
    limit: Limit = 1000,
) -> EventList:
    """The timeline, oldest first: releases submitted, stages passed, pages, rollbacks,
    rollouts ended, and what people did (who, when, why). A team token sees its team's
    only."""
    window = window_of(since)
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
