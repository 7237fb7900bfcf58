"""What the API and the CLI read: rows turned into views of operational data only (versions,
states, gate values and conditions), never drivers, labels or an environment's payload."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session

from rollout.api.history import rollout_actions
from rollout.api.schemas import (
    DeliveryView,
    EnvironmentView,
    GateInfo,
    GateView,
    HygieneFinding,
    HygieneGate,
    HygieneOut,
    HygieneTeam,
    Installed,
    PageView,
    ReleaseView,
    RolloutDetailView,
    RolloutGate,
    RolloutSummary,
    ServicePlacement,
    ServiceView,
    StageView,
    UpgradeView,
)
from rollout.api.schemas.history import EventView
from rollout.config import Fleet
from rollout.domain.gates import reading
from rollout.domain.hygiene import EventFact, PageFact, Tally, report
from rollout.domain.pages import PageState
from rollout.domain.states import RolloutState
from rollout.plan.models import GateSpec, HttpGateSpec, PrometheusGateSpec
from rollout.store.models import (
    Delivery,
    Installation,
    Measurement,
    Page,
    PageEvent,
    Rollout,
    Upgrade,
)
from rollout.store.queries import RolloutDetail, rollout_detail


def list_rollouts(
    session: Session,
    *,
    service: str | None = None,
    state: str | None = None,
    stage: str | None = None,
    team: str | None = None,
    limit: int = 50,
) -> list[RolloutSummary]:
    """Rollouts, newest first; `stage` is the stage a rollout is at now."""
    query = select(Rollout).order_by(Rollout.id.desc()).limit(limit)
    if service:
        query = query.where(Rollout.service == service)
    if state:
        query = query.where(Rollout.state == state)
    if team:
        query = query.where(Rollout.team == team)
    if stage:
        # The current stage's name lives in the plan; its upgrades carry it as a column.
        query = query.where(
            exists().where(
                Upgrade.rollout_id == Rollout.id,
                Upgrade.stage_index == Rollout.stage_index,
                Upgrade.stage == stage,
            )
        )
    rollouts = list(session.scalars(query))
    if not rollouts:
        return []
    counts: dict[int, dict[str, int]] = defaultdict(dict)
    for rollout_id, upgrade_state, n in session.execute(
        select(Upgrade.rollout_id, Upgrade.state, func.count())
        .where(Upgrade.rollout_id.in_([r.id for r in rollouts]))
        .group_by(Upgrade.rollout_id, Upgrade.state)
    ):
        counts[rollout_id][upgrade_state] = n
    rows = []
    for r in rollouts:
        by_state = counts[r.id]
        stages = r.plan.stages
        rows.append(
            RolloutSummary(
                id=r.id,
                service=r.service,
                version=r.version,
                team=r.team,
                state=r.state,
                stage=stages[min(r.stage_index, len(stages) - 1)].name,
                done=by_state.get("succeeded", 0),
                total=sum(by_state.values()),
                reason=r.reason,
                created_at=r.created_at,
                updated_at=r.updated_at,
            )
        )
    return rows


def _gates(measured: dict[str, list[Measurement]]) -> list[GateView]:
    views = []
    for gate, rows in measured.items():
        last = rows[-1]
        metric, number = reading(last.value)
        views.append(
            GateView(
                name=gate,
                metric=metric,
                value=number,
                observed=last.value,
                condition=last.condition,
                outcome=last.outcome,
                taken=len(rows),
                failures=sum(m.outcome == "failure" for m in rows),
                errors=sum(m.outcome == "error" for m in rows),
                last_at=last.taken_at,
            )
        )
    return views


def page_view(page: Page, deliveries: list[Delivery] | None = None) -> PageView:
    return PageView(
        id=page.id,
        team=page.team,
        severity=page.severity,
        kind=page.kind,
        state=page.state,
        rollout_id=page.rollout_id,
        service=page.service,
        version=page.version,
        environment=page.environment,
        stage=page.stage,
        gate=page.gate,
        detail=page.detail,
        summary=page.summary,
        created_at=page.created_at,
        recipient=page.recipient,
        role=page.role,
        deliveries=[
            DeliveryView(channel=d.channel, action=d.action, state=d.state, attempts=d.attempts)
            for d in deliveries or []
        ],
    )


def page_views(session: Session, pages: list[Page]) -> list[PageView]:
    """Pages with how each channel took them."""
    deliveries: dict[int, list[Delivery]] = defaultdict(list)
    query = select(Delivery).where(Delivery.page_id.in_([p.id for p in pages]))
    for delivery in session.scalars(query.order_by(Delivery.id)):
        deliveries[delivery.page_id].append(delivery)
    return [page_view(p, deliveries[p.id]) for p in pages]


def detail_view(
    detail: RolloutDetail, pages: list[PageView], actions: list[EventView] | None = None
) -> RolloutDetailView:
    r, release = detail.rollout, detail.release
    return RolloutDetailView(
        id=r.id,
        service=r.service,
        version=r.version,
        team=r.team,
        state=r.state,
        reason=r.reason,
        stage_index=r.stage_index,
        stages=[
            StageView(name=s.name, soak_s=s.soak_s, promote_share=s.promote_share)
            for s in r.plan.stages
        ],
        release=ReleaseView(
            id=release.id,
            state=release.state,
            digest=release.digest,
            reason=release.reason,
            submitted_at=release.submitted_at,
        ),
        upgrades=[
            UpgradeView(
                id=u.id,
                environment=u.environment,
                stage_index=u.stage_index,
                stage=u.stage,
                state=u.state,
                from_version=u.from_version,
                to_version=u.to_version,
                reason=u.reason,
                hold_reason=u.hold_reason,
                hold_kind=u.hold_kind,
                gates=_gates(detail.measurements.get(u.id, {})),
            )
            for u in detail.upgrades
        ],
        pages=pages,
        created_at=r.created_at,
        updated_at=r.updated_at,
        finished_at=r.finished_at,
        gates=[_rollout_gate(g) for g in r.plan.gates],
        soak_ends_at=_soak_ends_at(r),
        actions=actions or [],
    )


def _rollout_gate(gate: GateSpec) -> RolloutGate:
    """A gate of the plan as people read it: its PromQL query and conditions. URLs stay in
    the engine's rows (they name hosts, and may carry credentials)."""
    if isinstance(gate, PrometheusGateSpec | HttpGateSpec):
        return RolloutGate(
            name=gate.name,
            type=gate.type,
            query=gate.query if isinstance(gate, PrometheusGateSpec) else None,
            success_condition=gate.success_condition,
            failure_condition=gate.failure_condition,
        )
    return RolloutGate(
        name=gate.name, type=gate.type, query=None, success_condition=None, failure_condition=None
    )


def _soak_ends_at(rollout: Rollout) -> datetime | None:
    """When the current stage's soak ends, while it soaks (it passed, the next waits)."""
    stages = rollout.plan.stages
    if rollout.stage_passed_at is None or rollout.stage_index >= len(stages):
        return None
    if RolloutState(rollout.state).final:
        return None
    return rollout.stage_passed_at + stages[rollout.stage_index].soak


def show_rollout(session: Session, rollout_id: int) -> RolloutDetailView | None:
    detail = rollout_detail(session, rollout_id)
    if detail is None:
        return None
    return detail_view(
        detail, page_views(session, detail.pages), rollout_actions(session, rollout_id)
    )


def rollout_team(session: Session, rollout_id: int) -> str | None:
    """The owning team of a rollout; None if there is no such rollout."""
    return session.scalar(select(Rollout.team).where(Rollout.id == rollout_id))


def environments(
    session: Session, fleet: Fleet, services: set[str] | None = None
) -> list[EnvironmentView]:
    """Every environment with the versions installed there (of `services` only, if given)."""
    query = select(Installation).order_by(Installation.environment, Installation.service)
    if services is not None:
        query = query.where(Installation.service.in_(sorted(services)))
    installed: dict[str, list[Installed]] = defaultdict(list)
    for row in session.scalars(query):
        installed[row.environment].append(
            Installed(service=row.service, version=row.version, updated_at=row.updated_at)
        )
    views = [
        EnvironmentView(name=e.name, stage=e.stage, installed=installed.pop(e.name, []))
        for e in fleet.environments
    ]
    # Installations in environments the config no longer names are still facts: show them.
    views += [EnvironmentView(name=n, stage=None, installed=rows) for n, rows in installed.items()]
    return views


def service_view(session: Session, fleet: Fleet, name: str) -> ServiceView | None:
    try:
        spec = fleet.service(name)
    except KeyError:
        return None
    versions = {
        environment: version
        for environment, version in session.execute(
            select(Installation.environment, Installation.version).where(
                Installation.service == name
            )
        )
    }
    return ServiceView(
        name=spec.name,
        team=spec.team,
        gates=[GateInfo(name=g.name, type=g.type) for g in spec.gates],
        requires=[str(r) for r in spec.requires],
        environments=[
            ServicePlacement(environment=e.name, stage=e.stage, version=versions.get(e.name))
            for e in fleet.environments_of(spec)
        ],
        rollouts=list_rollouts(session, service=name, limit=10),
    )


def list_pages(
    session: Session,
    *,
    team: str | None = None,
    state: str | None = None,
    service: str | None = None,
    rollout_id: int | None = None,
    open_only: bool = False,
    limit: int = 100,
) -> list[PageView]:
    """Pages, newest first, with how each channel took them; `open_only`: not resolved."""
    query = select(Page).order_by(Page.id.desc()).limit(limit)
    if team:
        query = query.where(Page.team == team)
    if state:
        query = query.where(Page.state == state)
    if service:
        query = query.where(Page.service == service)
    if rollout_id is not None:
        query = query.where(Page.rollout_id == rollout_id)
    if open_only:
        query = query.where(Page.state != PageState.RESOLVED)
    return page_views(session, list(session.scalars(query)))


def hygiene_report(
    session: Session,
    fleet: Fleet,
    start: datetime,
    until: datetime,
    team: str | None = None,
    night_budget: float = 2.0,
) -> HygieneOut:
    """Paging hygiene over the pages written in [start, until), and what people did with them."""
    page_query = select(
        Page.id, Page.team, Page.service, Page.gate, Page.created_at, Page.recipient
    ).where(Page.created_at >= start)
    event_query = (
        select(PageEvent.page_id, PageEvent.action, PageEvent.at, PageEvent.misrouted_to)
        .join(Page, Page.id == PageEvent.page_id)
        .where(Page.created_at >= start)
    )
    if team is not None:
        page_query = page_query.where(Page.team == team)
        event_query = event_query.where(Page.team == team)
    page_rows = list(session.execute(page_query))
    events: dict[int, list[EventFact]] = {}
    for page_id, action, at, misrouted_to in session.execute(event_query):
        events.setdefault(page_id, []).append(EventFact(action, at, misrouted_to))
    facts = [
        PageFact(
            id=row.id,
            team=row.team,
            service=row.service,
            gate=row.gate,
            created_at=row.created_at,
            recipient=row.recipient,
            events=tuple(events.get(row.id, ())),
        )
        for row in page_rows
    ]
    zones = {m.name: m.zone for t in fleet.teams for m in t.members}
    # No recipient (the page went to the whole team): the team's first member stands in.
    team_zones = {t.name: t.members[0].zone for t in fleet.teams if t.members}
    result = report(
        facts,
        start,
        until,
        zones,
        night_budget,
        team_zones=team_zones,
        teams=[team] if team is not None else [t.name for t in fleet.teams],
    )
    return HygieneOut(
        since=result.since,
        until=result.until,
        night_budget_per_week=result.night_budget_per_week,
        teams=[
            HygieneTeam(
                team=t.team,
                **_tally(t.tally),
                night_budget=t.night_budget,
                zone_assumed=t.zone_assumed,
            )
            for t in result.teams
        ],
        gates=[
            HygieneGate(service=g.service, gate=g.gate, **_tally(g.tally)) for g in result.gates
        ],
        findings=[
            HygieneFinding(kind=str(f.kind), subject=f.subject, message=f.message)
            for f in result.findings
        ],
        notes=list(result.notes),
    )


def _tally(tally: Tally) -> dict[str, int | float | None]:
    return {
        "pages": tally.pages,
        "night_pages": tally.night_pages,
        "acknowledged": tally.acknowledged,
        "median_ack_seconds": tally.median_ack_seconds,
        "misrouted": tally.misrouted,
        "misroute_rate": tally.misroute_rate,
        "not_actionable": tally.not_actionable,
        "false_positive_rate": tally.false_positive_rate,
    }
