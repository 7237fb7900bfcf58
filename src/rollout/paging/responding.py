"""People answering pages: acknowledge, resolve, misrouted (the right team is paged and the
misroute recorded), not actionable (a false positive). Each is one transaction of the
caller's, and each change goes out to the channels the page went through."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from rollout.domain.audit import Act, Actor
from rollout.domain.pages import PageAction, PageActionRefused, PageState, page_move
from rollout.paging import Action
from rollout.paging.outbox import SAME_FACTS, address
from rollout.plan import PagingSpec
from rollout.store.events import record
from rollout.store.models import Delivery, Page, PageEvent


class Response(StrEnum):
    ACKNOWLEDGE = "acknowledge"
    RESOLVE = "resolve"
    MISROUTED = "misrouted"
    NOT_ACTIONABLE = "not_actionable"


_ACTS = {
    Response.ACKNOWLEDGE: Act.ACKNOWLEDGE,
    Response.RESOLVE: Act.RESOLVE,
    Response.MISROUTED: Act.MISROUTED,
    Response.NOT_ACTIONABLE: Act.NOT_ACTIONABLE,
}


class ResponseRefused(ValueError):
    """The response does not fit the page (resolved already, sent to that team already)."""


def respond(
    session: Session,
    page: Page,
    response: Response,
    now: datetime,
    *,
    actor: Actor,
    note: str | None = None,
    to_team: str | None = None,
    to_paging: PagingSpec | None = None,
) -> Page | None:
    """Apply a response to a page; return the new page when a misroute re-pages a team.
    What changed is recorded in the audit trail, in the caller's transaction."""
    if response in (Response.ACKNOWLEDGE, Response.RESOLVE):
        if _move(session, page, PageAction(response.value), now, actor):
            _audit(session, page, response, now, actor, f"page {page.id} {page.state}")
        return None
    if response is Response.MISROUTED:
        if to_team is None or to_paging is None:
            raise ResponseRefused("a misroute names the team the page belongs to")
        if to_team == page.team:
            raise ResponseRefused(f"page {page.id} went to team {page.team} already")
    _event(session, page, response.value, now, actor, note, to_team)
    if page.state != PageState.RESOLVED:
        _move(session, page, PageAction.RESOLVE, now, actor)
    told = f"page {page.id} misrouted: it is team {to_team}'s" if to_team else ""
    _audit(session, page, response, now, actor, told or f"page {page.id} not actionable", note)
    if response is not Response.MISROUTED:
        return None
    assert to_team is not None and to_paging is not None
    again = Page(
        **{column: getattr(page, column) for column in SAME_FACTS},
        dedup_key=f"{page.dedup_key}/to-{to_team}",
        team=to_team,
        state=PageState.OPEN,
        created_at=now,
    )
    if session.scalar(select(Page.id).where(Page.dedup_key == again.dedup_key)) is not None:
        return None  # re-paged already: once per dedup key
    session.add(again)
    address(session, again, to_paging, now)
    return again


def _move(
    session: Session,
    page: Page,
    action: PageAction,
    now: datetime,
    actor: Actor,
) -> bool:
    """Move the page as `action` asks; False: it was so already."""
    try:
        move = page_move(page.id, PageState(page.state), action)
    except PageActionRefused as refused:
        raise ResponseRefused(str(refused)) from None
    if not move.changed:
        return False
    page.state = move.state
    page.escalate_at = None  # someone is on it: nobody else needs waking
    _event(session, page, move.state, now, actor)
    # Tell every channel the page went through, once per channel and action.
    done = {
        d.channel
        for d in session.scalars(
            select(Delivery).where(Delivery.page_id == page.id, Delivery.action == action.value)
        )
    }
    seen: set[str] = set()
    for sent in session.scalars(
        select(Delivery).where(Delivery.page_id == page.id).order_by(Delivery.id)
    ):
        if sent.channel in seen or sent.channel in done:
            continue
        seen.add(sent.channel)
        session.add(_follow_up(sent, Action(action.value), now))
    return True


def _audit(
    session: Session,
    page: Page,
    response: Response,
    now: datetime,
    actor: Actor,
    message: str,
    reason: str | None = None,
) -> None:
    record(
        session,
        actor,
        _ACTS[response],
        now,
        message,
        reason=reason,
        service=page.service,
        rollout_id=page.rollout_id,
        team=page.team,
        subject=f"page {page.id}",
    )


def _follow_up(sent: Delivery, action: Action, now: datetime) -> Delivery:
    """The same channel, told that the page was acknowledged or resolved."""
    return Delivery(
        page_id=sent.page_id,
        channel=sent.channel,
        channel_spec=sent.channel_spec,
        action=action,
        state="pending",
        attempts=0,
        claim=0,
        due_at=now,
        created_at=now,
    )


def _event(
    session: Session,
    page: Page,
    action: str,
    now: datetime,
    actor: Actor,
    note: str | None = None,
    misrouted_to: str | None = None,
) -> None:
    session.add(
        PageEvent(
            page_id=page.id,
            action=action,
            misrouted_to=misrouted_to,
            note=note,
            token_id=actor.token_id,
            actor=actor.name,
            at=now,
        )
    )
