"""Freezes: hold an environment or a service until a time, list them, lift one."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, HTTPException

from rollout.api.auth import actor_of
from rollout.api.deps import Context, NamePath, Reader, Steerer
from rollout.api.errors import conflict
from rollout.api.schemas import FreezeIn, FreezeKind, FreezeList, FreezeOut, UnfrozenOut
from rollout.api.views import freeze_out
from rollout.engine.freezes import (
    FreezeRefused,
    UnknownTarget,
    active_freezes,
    freeze,
    unfreeze,
)
from rollout.store.database import reading

router = APIRouter(tags=["freezes"])

REFUSED = conflict(
    "the time is not in the future, or the name is both an environment and a service"
)


@router.post("/v1/freezes", status_code=201, responses=REFUSED)
def post_freeze(body: Annotated[FreezeIn, Body()], token: Steerer, ctx: Context) -> FreezeOut:
    """Freeze an environment or a service until a time: no new upgrade starts there, and
    `rollout show` says so. Freezing it again replaces the time and the reason."""
    try:
        done = freeze(
            ctx.runtime,
            ctx.fleet,
            body.target,
            body.until,
            body.reason,
            body.kind,
            actor=actor_of(token),
        )
    except UnknownTarget as error:
        raise HTTPException(404, str(error)) from None
    except FreezeRefused as error:
        raise HTTPException(409, str(error)) from None
    return freeze_out(done)


@router.get("/v1/freezes")
def get_freezes(_: Reader, ctx: Context) -> FreezeList:
    """The freezes in force, the soonest to end first."""
    with reading(ctx.database_url) as session:
        found = active_freezes(session, ctx.runtime.now())
    return FreezeList(freezes=[freeze_out(f) for f in found])


@router.delete("/v1/freezes/{target}")
def delete_freeze(
    target: NamePath, token: Steerer, ctx: Context, kind: FreezeKind | None = None
) -> UnfrozenOut:
    """Lift the freeze of an environment or a service (`kind` only for a name that is
    both); what it held is planned at once. Lifting a freeze that is not there changes
    nothing."""
    done = unfreeze(ctx.runtime, target, kind, actor=actor_of(token))
    return UnfrozenOut(changed=done.changed, message=done.message)
