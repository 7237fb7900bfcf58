"""Who is on call for a team at an instant, and why; someone covering a rotation a while."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Body, HTTPException, Query

from rollout.api.auth import actor_of, check_team
from rollout.api.context import ApiContext
from rollout.api.deps import Context, NamePath, Reader
from rollout.api.schemas import OnCallOut, OverrideIn, OverrideOut
from rollout.api.views import oncall_out, override_out
from rollout.config import Team
from rollout.paging.outbox import on_call_now
from rollout.plan.build import paging_spec
from rollout.store.database import reading, transaction
from rollout.store.overrides import OverrideRefused, add_override
from rollout.store.tokens import TokenInfo

router = APIRouter(tags=["on-call"])


@router.get("/v1/teams/{team}/oncall")
def team_oncall(
    team: NamePath,
    token: Reader,
    ctx: Context,
    at: Annotated[datetime | None, Query(description="ISO 8601 with a zone")] = None,
) -> OnCallOut:
    """Who is primary and secondary on call for a team at an instant (default: now), and
    why: the rotation, an override, or the rest rule."""
    spec = _team(ctx, token, team)
    if spec.rotations is None:
        raise HTTPException(404, f"team {team!r} has no rotations in the fleet config")
    if at is not None and at.tzinfo is None:
        raise HTTPException(422, "at: give the time with its zone, e.g. +02:00 or Z")
    if at is not None and _out_of_range(at):
        raise HTTPException(422, "at: the time is out of range")
    when = at or ctx.now()
    with reading(ctx.database_url) as session:
        on_call = on_call_now(session, paging_spec(spec), when)
    assert on_call is not None
    return oncall_out(team, on_call, when)


@router.post("/v1/teams/{team}/overrides", status_code=201)
def post_override(
    team: NamePath, body: Annotated[OverrideIn, Body()], token: Reader, ctx: Context
) -> OverrideOut:
    """Let a member cover the team's primary or secondary rotation from `starts_at` to
    `ends_at` (optionally only in place of `replaces`): an override wins over the rota."""
    spec = _team(ctx, token, team)
    if body.starts_at.tzinfo is None or body.ends_at.tzinfo is None:
        raise HTTPException(422, "give starts_at and ends_at with their zone, e.g. +02:00 or Z")
    if body.ends_at <= body.starts_at:
        raise HTTPException(422, "ends_at must be after starts_at")
    try:
        with transaction(ctx.database_url) as session:
            row = add_override(
                session,
                spec,
                body.member,
                body.starts_at,
                body.ends_at,
                ctx.now(),
                role=body.role,
                replaces=body.replaces,
                actor=actor_of(token),
            )
            return override_out(row)
    except OverrideRefused as error:
        raise HTTPException(422, str(error)) from None


def _team(ctx: ApiContext, token: TokenInfo, team: str) -> Team:
    if team not in {t.name for t in ctx.fleet.teams}:
        raise HTTPException(404, f"unknown team {team!r}")
    check_team(token, team, f"team {team}")
    return ctx.fleet.team(team)


def _out_of_range(at: datetime) -> bool:
    # An offset can carry a time past year 9999 or before year 1, which no UTC time holds.
    try:
        at.astimezone(UTC)
    except OverflowError:
        return True
    return False
