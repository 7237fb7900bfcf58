"""The history read: a timeline of releases, stage passages, rollbacks, pages, rollout ends
and the recorded actions, from the audit trail and the engine's own rows."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from sqlalchemy import Select, or_, select
from sqlalchemy.orm import Session

from rollout.api.schemas.history import EventKind, EventView
from rollout.domain.history import UpgradeFact, stage_passages
from rollout.domain.states import UpgradeState
from rollout.engine.progress import stages_of
from rollout.store.models import Event, Page, Release, Rollout, Upgrade

ROLLED_BACK = (UpgradeState.ROLLED_BACK, UpgradeState.ROLLBACK_FAILED)
# Entries at the same instant: the cause before what follows from it.
_ORDER: dict[EventKind, int] = {
    "release": 0,
    "action": 1,
    "stage": 2,
    "page": 3,
    "rollback": 4,
    "rollout": 5,
}
Entry = tuple[EventView, int]  # the view, and its row's id to order ties by


def action_view(event: Event) -> EventView:
    return EventView(
        at=event.at,
        kind="action",
        action=event.action,
        who=event.actor,
        what=event.message,
        why=event.reason,
        service=event.service,
        rollout_id=event.rollout_id,
        subject=event.subject,
    )


def rollout_actions(session: Session, rollout_id: int) -> list[EventView]:
    """What people did to a rollout, oldest first."""
    query = select(Event).where(Event.rollout_id == rollout_id).order_by(Event.at, Event.id)
    return [action_view(e) for e in session.scalars(query)]


def timeline(
    session: Session,
    *,
    since: datetime,
    service: str | None = None,
    rollout_id: int | None = None,
    team: str | None = None,
    limit: int = 1000,
) -> list[EventView]:
    """The entries at or after `since` about `service`, or one rollout (and its release), or
    the whole fleet; only a team's when `team` is given. Oldest first, the newest `limit`."""
    events = select(Event).where(Event.at >= since)
    if service is not None:
        events = events.where(Event.service == service)
    if rollout_id is not None:
        events = events.where(Event.rollout_id == rollout_id)
    if team is not None:
        events = events.where(Event.team == team)
    entries: list[Entry] = [(action_view(e), e.id) for e in session.scalars(events)]
    rollouts = list(session.scalars(_rollouts(since, service, rollout_id, team)))
    entries += _releases(session, since, service, rollouts, rollout_id, team)
    entries += _pages(session, since, service, rollout_id, team)
    entries += _from_upgrades(session, since, rollouts)
    for r in rollouts:
        if r.finished_at is not None and r.finished_at >= since:
            what = f"rollout {r.id} of {r.service} {r.version} {r.state}"
            entries.append((_fact("rollout", r.state, r.finished_at, what, r.reason, r), r.id))
    entries.sort(key=lambda e: (e[0].at, _ORDER[e[0].kind], e[1]))
    return [view for view, _ in entries[-limit:]]


def _fact(
    kind: EventKind,
    action: str,
    at: datetime,
    what: str,
    why: str | None,
    rollout: Rollout | None,
    service: str | None = None,
    subject: str | None = None,
) -> EventView:
    return EventView(
        at=at,
        kind=kind,
        action=action,
        who=None,
        what=what,
        why=why,
        service=rollout.service if rollout is not None else service,
        rollout_id=rollout.id if rollout is not None else None,
        subject=subject,
    )


def _rollouts(
    since: datetime, service: str | None, rollout_id: int | None, team: str | None
) -> Select[tuple[Rollout]]:
    # A plan bumps updated_at; a recall's rollback may finish after its rollout did.
    rolled_back = select(Upgrade.rollout_id).where(
        Upgrade.state.in_(ROLLED_BACK), Upgrade.finished_at >= since
    )
    if service is not None:
        rolled_back = rolled_back.where(Upgrade.service == service)
    query = select(Rollout).where(
        or_(Rollout.updated_at >= since, Rollout.id.in_(rolled_back.scalar_subquery()))
    )
    if service is not None:
        query = query.where(Rollout.service == service)
    if rollout_id is not None:
        query = query.where(Rollout.id == rollout_id)
    if team is not None:
        query = query.where(Rollout.team == team)
    return query.order_by(Rollout.id)


def _releases(
    session: Session,
    since: datetime,
    service: str | None,
    rollouts: list[Rollout],
    rollout_id: int | None,
    team: str | None,
) -> list[Entry]:
    query = select(Release).where(Release.submitted_at >= since)
    if rollout_id is not None:
        query = query.where(Release.id.in_([r.release_id for r in rollouts]))
    if service is not None:
        query = query.where(Release.service == service)
    if team is not None:
        # A release has no team of its own: its rollouts' is the service's owner.
        owned = select(Rollout.release_id).where(Rollout.team == team)
        query = query.where(Release.id.in_(owned.scalar_subquery()))
    entries = []
    for release in session.scalars(query):
        digest = f" ({release.digest})" if release.digest else ""
        what = f"{release.service} {release.version} submitted{digest}: release {release.id}"
        view = _fact(
            "release", "submitted", release.submitted_at, what, None, None, release.service
        )
        entries.append((view, release.id))
    return entries


def _pages(
    session: Session,
    since: datetime,
    service: str | None,
    rollout_id: int | None,
    team: str | None,
) -> list[Entry]:
    query = select(Page).where(Page.created_at >= since)
    if service is not None:
        query = query.where(Page.service == service)
    if rollout_id is not None:
        query = query.where(Page.rollout_id == rollout_id)
    if team is not None:
        query = query.where(Page.team == team)
    entries = []
    for page in session.scalars(query):
        to = f"{page.recipient} of team {page.team}" if page.recipient else f"team {page.team}"
        what = f"page {page.id} ({page.severity}, {page.kind}) to {to}: {page.environment}"
        view = EventView(
            at=page.created_at,
            kind="page",
            action="paged",
            who=None,
            what=what,
            why=page.detail,
            service=page.service,
            rollout_id=page.rollout_id,
            subject=page.environment,
        )
        entries.append((view, page.id))
    return entries


def _from_upgrades(session: Session, since: datetime, rollouts: list[Rollout]) -> list[Entry]:
    """Stage passages (derived: no row keeps a passed stage's time) and rollbacks."""
    if not rollouts:
        return []
    rows = session.execute(
        select(
            Upgrade.id,
            Upgrade.rollout_id,
            Upgrade.environment,
            Upgrade.stage_index,
            Upgrade.state,
            Upgrade.from_version,
            Upgrade.to_version,
            Upgrade.reason,
            Upgrade.finished_at,
        ).where(Upgrade.rollout_id.in_([r.id for r in rollouts]))
    ).all()
    facts: dict[int, list[UpgradeFact]] = defaultdict(list)
    entries: list[Entry] = []
    by_id = {r.id: r for r in rollouts}
    for row in rows:
        state = UpgradeState(row.state)
        facts[row.rollout_id].append(UpgradeFact(row.stage_index, state, row.finished_at))
        if state in ROLLED_BACK and row.finished_at is not None and row.finished_at >= since:
            back = f"back to {row.from_version}" if row.from_version else "removed"
            what = (
                f"{row.environment}: {row.to_version} rolled back ({back})"
                if state is UpgradeState.ROLLED_BACK
                else f"{row.environment}: rolling back {row.to_version} failed"
            )
            rollout = by_id[row.rollout_id]
            view = _fact(
                "rollback", state, row.finished_at, what, row.reason, rollout, None, row.environment
            )
            entries.append((view, row.id))
    for r in rollouts:
        for passed in stage_passages(stages_of(r), facts[r.id], r.stage_index):
            if passed.at < since:
                continue
            what = (
                f"rollout {r.id}: stage {passed.stage} passed "
                f"({passed.required} of {passed.counted} environments)"
            )
            view = _fact("stage", "stage-passed", passed.at, what, None, r, subject=passed.stage)
            entries.append((view, r.id * 1000 + passed.index))
    return entries
