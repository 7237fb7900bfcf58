"""The fleet matrix read from rows: for each service of the config (filtered), the version
installed in each of its environments and what its newest upgrade there is doing."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rollout.api.schemas.fleet import FleetCell, FleetRow, FleetStage, FleetView
from rollout.config import Fleet
from rollout.domain.fleet import LastUpgrade, Mark, mark_of
from rollout.domain.states import ReleaseState, RolloutState, UpgradeState
from rollout.store.models import Installation, Release, Rollout, Upgrade


class UnknownFilter(LookupError):
    """A filter names what the fleet config does not have; the message lists what it has."""


def _check(kind: str, asked: str | None, known: list[str]) -> None:
    if asked is not None and asked not in known:
        raise UnknownFilter(f"unknown {kind} {asked!r} ({kind}s: {', '.join(known) or 'none'})")


def fleet_view(
    session: Session,
    fleet: Fleet,
    *,
    service: str | None = None,
    stage: str | None = None,
    environment: str | None = None,
    team: str | None = None,
) -> FleetView:
    """The matrix as the filters narrow it; a team's view is `team` given."""
    _check("service", service, [s.name for s in fleet.services])
    _check("stage", stage, [s.name for s in fleet.stages])
    _check("environment", environment, [e.name for e in fleet.environments])
    _check("team", team, [t.name for t in fleet.teams])
    services = [
        s
        for s in fleet.services
        if (service is None or s.name == service) and (team is None or s.team == team)
    ]
    columns = [
        e
        for e in fleet.environments
        if (stage is None or e.stage == stage) and (environment is None or e.name == environment)
    ]
    names = [s.name for s in services]
    installed = {
        (row.service, row.environment): row.version
        for row in session.scalars(select(Installation).where(Installation.service.in_(names)))
    }
    recalled = {
        (service_name, version): reason
        for service_name, version, reason in session.execute(
            select(Release.service, Release.version, Release.reason).where(
                Release.service.in_(names), Release.state == ReleaseState.RECALLED
            )
        )
    }
    newest = (
        select(func.max(Upgrade.id))
        .where(Upgrade.service.in_(names))
        .group_by(Upgrade.service, Upgrade.environment)
    )
    last: dict[tuple[str, str], tuple[Upgrade, str]] = {
        (u.service, u.environment): (u, rollout_state)
        for u, rollout_state in session.execute(
            select(Upgrade, Rollout.state)
            .join(Rollout, Rollout.id == Upgrade.rollout_id)
            .where(Upgrade.id.in_(newest))
        ).tuples()
    }
    shown = {e.name for e in columns}
    rows = []
    for spec in services:
        cells = []
        for env in fleet.environments_of(spec):
            if env.name not in shown:
                continue
            version = installed.get((spec.name, env.name))
            found = last.get((spec.name, env.name))
            why = recalled.get((spec.name, version), False)
            cells.append(_cell(env.name, env.stage, version, found, why))
        rows.append(FleetRow(service=spec.name, team=spec.team, cells=cells))
    stages = [
        FleetStage(name=s.name, environments=[e.name for e in columns if e.stage == s.name])
        for s in fleet.stages
        if stage is None or s.name == stage
    ]
    return FleetView(stages=[s for s in stages if s.environments], services=rows)


def _cell(
    environment: str,
    stage: str,
    version: str | None,
    found: tuple[Upgrade, str] | None,
    recalled: str | bool | None,
) -> FleetCell:
    """`recalled`: False, or the installed version's recall reason (None: none given)."""
    last = None
    if found is not None:
        upgrade, rollout_state = found
        last = LastUpgrade(
            state=UpgradeState(upgrade.state),
            rollout_state=RolloutState(rollout_state),
            to_version=upgrade.to_version,
            hold_kind=upgrade.hold_kind,
        )
    mark, about_upgrade = mark_of(last, ReleaseState.RECALLED if recalled is not False else None)
    if mark is None:
        return FleetCell(
            environment=environment,
            stage=stage,
            version=version,
            mark=None,
            to_version=None,
            rollout_id=None,
            state=None,
            reason=None,
        )
    if about_upgrade and found is not None:
        upgrade = found[0]
        reason = upgrade.hold_reason if mark in (Mark.HELD, Mark.QUEUED) else upgrade.reason
        return FleetCell(
            environment=environment,
            stage=stage,
            version=version,
            mark=mark,
            to_version=upgrade.to_version,
            rollout_id=upgrade.rollout_id,
            state=upgrade.state,
            reason=reason if mark is not Mark.IN_FLIGHT else None,
        )
    return FleetCell(
        environment=environment,
        stage=stage,
        version=version,
        mark=mark,
        to_version=version,
        rollout_id=None,
        state=None,
        reason=recalled if isinstance(recalled, str) else f"{version} is recalled",
    )
