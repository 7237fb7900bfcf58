"""Pages: list them, and the receiver's answers (acknowledge, resolve, feedback)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, HTTPException, Query
from sqlalchemy import select
from sqlalchemy.orm import Session

from rollout.api import reads
from rollout.api.auth import actor_of, check_team, visible_team
from rollout.api.context import ApiContext
from rollout.api.deps import MAX_ID, Context, Id, Limit, NameQuery, Reader
from rollout.api.errors import conflict
from rollout.api.schemas import AnsweredOut, FeedbackIn, MisroutedIn, PageList, PageView
from rollout.domain.pages import PageAction
from rollout.paging.responding import Response as PageResponse
from rollout.paging.responding import ResponseRefused, respond
from rollout.plan import PagingSpec
from rollout.plan.build import paging_spec
from rollout.store.database import reading, transaction
from rollout.store.models import Page
from rollout.store.tokens import TokenInfo

router = APIRouter(tags=["pages"])


@router.get("/v1/pages")
def list_pages(
    token: Reader,
    ctx: Context,
    team: NameQuery = None,
    state: Annotated[str | None, Query(pattern=r"^[a-z_]{1,16}$")] = None,
    service: NameQuery = None,
    rollout_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    open_only: Annotated[bool, Query(alias="open", description="only pages not resolved")] = False,
    limit: Limit = 100,
) -> PageList:
    """Pages, newest first, with how each channel took them. A team token sees its own
    team's only."""
    team = visible_team(token, team)
    with reading(ctx.database_url) as session:
        pages = reads.list_pages(
            session,
            team=team,
            state=state,
            service=service,
            rollout_id=rollout_id,
            open_only=open_only,
            limit=limit,
        )
    return PageList(pages=pages)


@router.post("/v1/pages/{page_id}/acknowledge", responses=conflict("the page is resolved already"))
def acknowledge_page(page_id: Id, token: Reader, ctx: Context) -> PageView:
    """Acknowledge a page: someone is on it. Asking again changes nothing."""
    return _respond(ctx, page_id, token, PageResponse(PageAction.ACKNOWLEDGE.value))


@router.post("/v1/pages/{page_id}/resolve")
def resolve_page(page_id: Id, token: Reader, ctx: Context) -> PageView:
    """Resolve a page. Asking again changes nothing."""
    return _respond(ctx, page_id, token, PageResponse(PageAction.RESOLVE.value))


@router.post("/v1/pages/{page_id}/feedback")
def page_feedback(
    page_id: Id, body: Annotated[FeedbackIn, Body()], token: Reader, ctx: Context
) -> AnsweredOut:
    """Tell whether the page was misrouted (and whose it was: `repaged` is the page that
    team gets) or not actionable."""
    team = body.team if isinstance(body, MisroutedIn) else None
    if team is not None and team not in {t.name for t in ctx.fleet.teams}:
        raise HTTPException(404, f"unknown team {team!r}")
    to_paging = paging_spec(ctx.fleet.team(team)) if team is not None else None
    response = PageResponse.MISROUTED if team is not None else PageResponse.NOT_ACTIONABLE
    return _respond(
        ctx, page_id, token, response, note=body.note, to_team=team, to_paging=to_paging
    )


def _respond(
    ctx: ApiContext,
    page_id: int,
    token: TokenInfo,
    response: PageResponse,
    note: str | None = None,
    to_team: str | None = None,
    to_paging: PagingSpec | None = None,
) -> AnsweredOut:
    # The engine's rules: acknowledging stops escalation and tells the page's channels;
    # a misroute resolves it here and pages the right team.
    with transaction(ctx.database_url) as session:
        page = _page_for(session, page_id, token)
        try:
            again = respond(
                session,
                page,
                response,
                ctx.now(),
                actor=actor_of(token),
                note=note,
                to_team=to_team,
                to_paging=to_paging,
            )
        except ResponseRefused as refused:
            raise HTTPException(409, str(refused)) from None
        views = reads.page_views(session, [page] if again is None else [page, again])
        return AnsweredOut(**views[0].model_dump(), repaged=views[1] if again else None)


def _page_for(session: Session, page_id: int, token: TokenInfo) -> Page:
    # Locked: two people acknowledging at once make one event, not two.
    page = session.scalars(select(Page).where(Page.id == page_id).with_for_update()).one_or_none()
    if page is None:
        raise HTTPException(404, f"no page {page_id}")
    check_team(token, page.team, f"page {page_id}")
    return page
