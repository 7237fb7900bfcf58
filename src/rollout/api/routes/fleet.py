"""The fleet as it runs: the matrix of services × environments, environments with their
installed versions, and services."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException

from rollout.api import reads
from rollout.api.auth import check_team, visible_team
from rollout.api.deps import Context, NamePath, NameQuery, Reader
from rollout.api.fleet_read import UnknownFilter, fleet_view
from rollout.api.schemas import EnvironmentList, ServiceBrief, ServiceList, ServiceView
from rollout.api.schemas.fleet import FleetView
from rollout.store.database import reading
from rollout.store.tokens import Scope

router = APIRouter()


@router.get("/v1/environments", tags=["environments"])
def list_environments(token: Reader, ctx: Context) -> EnvironmentList:
    """Every environment with the versions installed there (a team: its services')."""
    services = None
    if token.scope is Scope.TEAM:
        services = {s.name for s in ctx.fleet.services if s.team == token.team}
    with reading(ctx.database_url) as session:
        return EnvironmentList(environments=reads.environments(session, ctx.fleet, services))


@router.get("/v1/services", tags=["services"])
def list_services(token: Reader, ctx: Context, team: NameQuery = None) -> ServiceList:
    """The services of the fleet config and their owning teams."""
    team = visible_team(token, team)
    return ServiceList(
        services=[
            ServiceBrief(name=s.name, team=s.team)
            for s in ctx.fleet.services
            if team is None or s.team == team
        ]
    )


@router.get("/v1/services/{name}", tags=["services"])
def show_service(name: NamePath, token: Reader, ctx: Context) -> ServiceView:
    """A service: its team, gates, environments with installed versions, rollouts."""
    if not any(s.name == name for s in ctx.fleet.services):
        raise HTTPException(404, f"unknown service {name!r}")
    check_team(token, ctx.fleet.service(name).team, f"service {name}")
    with reading(ctx.database_url) as session:
        view = reads.service_view(session, ctx.fleet, name)
    assert view is not None
    return view


@router.get("/v1/fleet", tags=["environments"], responses={404: {"description": "unknown filter"}})
def show_fleet(
    token: Reader,
    ctx: Context,
    service: NameQuery = None,
    stage: NameQuery = None,
    environment: NameQuery = None,
    team: NameQuery = None,
) -> FleetView:
    """The fleet at a glance: each service's installed version in each environment, marked
    when an upgrade is in flight, failed, held or queued, or the version is recalled; the
    environments grouped by stage in the config's order. A team token sees its services."""
    team = visible_team(token, team)
    try:
        with reading(ctx.database_url) as session:
            return fleet_view(
                session, ctx.fleet, service=service, stage=stage, environment=environment, team=team
            )
    except UnknownFilter as error:
        raise HTTPException(404, str(error)) from None
