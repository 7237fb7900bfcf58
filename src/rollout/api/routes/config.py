"""The fleet config this API serves, for an admin to check what was loaded."""

from __future__ import annotations

from fastapi import APIRouter

from rollout.api.deps import Admin, Context
from rollout.json_types import JsonObject

router = APIRouter(tags=["config"])


@router.get("/v1/config")
def get_config(_: Admin, ctx: Context) -> JsonObject:
    """The fleet config this API serves, as loaded and validated. Secrets appear only as
    the references the config names ({env} or {file}), never their values."""
    return ctx.fleet.model_dump(mode="json")
