"""Rollouts: list and show them, and steer one (pause, resume, abort, retry, promote, and
the escape hatches: promote by force, skip an environment)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Body, HTTPException

from rollout.api import reads
from rollout.api.auth import actor_of, check_rollout_reader, visible_team
from rollout.api.deps import Context, Id, Limit, NameQuery, Reader, RolloutReader, Steerer
from rollout.api.errors import conflict
from rollout.api.schemas import RolloutDetailView, RolloutList, SteeredOut, SteerIn
from rollout.api.schemas.steering import ForcedPromoteIn, PromoteBody, PromoteIn, SkipIn
from rollout.api.status import rollout_owner
from rollout.api.views import steered_out
from rollout.domain.states import RolloutState
from rollout.engine import steering
from rollout.engine.steering import NoSuchRollout, NotInRollout, Steered, SteeringRefused
from rollout.store.database import reading

router = APIRouter()

SteerBody = Annotated[SteerIn | None, Body()]
REFUSED = conflict("the rollout's state does not allow this")


@router.get("/v1/rollouts", tags=["rollouts"])
def list_rollouts(
    token: Reader,
    ctx: Context,
    service: NameQuery = None,
    state: RolloutState | None = None,
    stage: NameQuery = None,
    team: NameQuery = None,
    limit: Limit = 50,
) -> RolloutList:
    """Rollouts, newest first. A team token sees its own team's only."""
    team = visible_team(token, team)
    with reading(ctx.database_url) as session:
        rows = reads.list_rollouts(
            session, service=service, state=state, stage=stage, team=team, limit=limit
        )
    return RolloutList(rollouts=rows)


@router.get("/v1/rollouts/{rollout_id}", tags=["rollouts"])
def show_rollout(rollout_id: Id, token: RolloutReader, ctx: Context) -> RolloutDetailView:
    """A rollout: stages, upgrades, each gate's last value against its condition, pages. A
    pipeline token reads its own services' rollouts."""
    with reading(ctx.database_url) as session:
        owner = rollout_owner(session, rollout_id)
        if owner is None:
            raise HTTPException(404, f"no rollout {rollout_id}")
        check_rollout_reader(token, owner.team, owner.service, f"rollout {rollout_id}")
        view = reads.show_rollout(session, rollout_id)
    assert view is not None
    return view


@router.post("/v1/rollouts/{rollout_id}/pause", tags=["steering"], responses=REFUSED)
def pause_rollout(
    rollout_id: Id, token: Steerer, ctx: Context, body: SteerBody = None
) -> SteeredOut:
    """Pause a running rollout: nothing new starts, upgrades in flight finish. Pausing a
    paused rollout changes nothing."""
    return _steer(
        lambda: steering.pause(ctx.runtime, rollout_id, _reason(body), actor=actor_of(token))
    )


@router.post("/v1/rollouts/{rollout_id}/resume", tags=["steering"], responses=REFUSED)
def resume_rollout(
    rollout_id: Id, token: Steerer, ctx: Context, body: SteerBody = None
) -> SteeredOut:
    """Resume a paused rollout; upgrades awaiting a decision (an inconclusive gate) pass."""
    return _steer(
        lambda: steering.resume(ctx.runtime, rollout_id, _reason(body), actor=actor_of(token))
    )


@router.post("/v1/rollouts/{rollout_id}/abort", tags=["steering"], responses=REFUSED)
def abort_rollout(
    rollout_id: Id, token: Steerer, ctx: Context, body: SteerBody = None
) -> SteeredOut:
    """Halt a running or paused rollout like a failure; upgrades awaiting a decision roll
    back. No page is sent. Aborting a halted rollout changes nothing."""
    return _steer(
        lambda: steering.abort(ctx.runtime, rollout_id, _reason(body), actor=actor_of(token))
    )


@router.post("/v1/rollouts/{rollout_id}/retry", tags=["steering"], responses=REFUSED)
def retry_rollout(
    rollout_id: Id, token: Steerer, ctx: Context, body: SteerBody = None
) -> SteeredOut:
    """Roll a failed rollout's release out again, planned from the current config, unless
    a newer rollout of the service exists. Answers with the new rollout."""
    actor = actor_of(token)
    return _steer(lambda: steering.retry(ctx.runtime, ctx.fleet, rollout_id, actor=actor))


@router.post("/v1/rollouts/{rollout_id}/promote", tags=["steering"], responses=REFUSED)
def promote_rollout(
    rollout_id: Id,
    token: Steerer,
    ctx: Context,
    body: Annotated[PromoteBody | None, Body()] = None,
) -> SteeredOut:
    """Skip the rest of the current stage's soak; only once the stage has passed. With
    `force` (and a reason), move on to the next stage even if it has not passed."""
    asked = body or PromoteIn()
    force = isinstance(asked, ForcedPromoteIn)
    return _steer(
        lambda: steering.promote(
            ctx.runtime, rollout_id, asked.reason, actor=actor_of(token), force=force
        )
    )


@router.post("/v1/rollouts/{rollout_id}/skip", tags=["steering"], responses=REFUSED)
def skip_environment(
    rollout_id: Id, body: Annotated[SkipIn, Body()], token: Steerer, ctx: Context
) -> SteeredOut:
    """Leave one environment whose upgrade has not started out of its stage's count, so
    the stage can pass; the upgrade ends `skipped`. An upgrade in flight is refused."""
    return _steer(
        lambda: steering.skip(
            ctx.runtime, rollout_id, body.environment, body.reason, actor=actor_of(token)
        )
    )


def _steer(act: Callable[[], Steered]) -> SteeredOut:
    try:
        done = act()
    except (NoSuchRollout, NotInRollout) as error:
        raise HTTPException(404, str(error)) from None
    except SteeringRefused as error:
        raise HTTPException(409, str(error)) from None
    return steered_out(done)


def _reason(body: SteerIn | None) -> str | None:
    return None if body is None else body.reason
