"""Releases: a pipeline submits one, an operator recalls one."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, HTTPException, Response

from rollout.api.auth import actor_of, forbidden
from rollout.api.deps import Context, Pipeline, Steerer
from rollout.api.schemas import ErrorOut, RecalledOut, RecallIn, SubmitIn, SubmittedOut
from rollout.api.views import recalled_out
from rollout.engine.recall import NoSuchRelease, recall
from rollout.engine.submission import SubmitError, submit
from rollout.observability import metrics
from rollout.store.database import reading
from rollout.store.models import Release

router = APIRouter(tags=["releases"])


@router.post(
    "/v1/releases",
    status_code=201,
    responses={
        200: {"model": SubmittedOut, "description": "submitted before: the same release"},
        409: {
            "model": ErrorOut,
            "description": "the version was submitted with another digest",
        },
    },
)
def submit_release(
    body: SubmitIn, response: Response, token: Pipeline, ctx: Context
) -> SubmittedOut:
    """Submit a release. The same service, version and digest again is the same release
    (200); the same version with another digest is refused (409)."""
    if body.service not in token.services:
        raise forbidden(
            f"this token may submit only {', '.join(token.services)}, not {body.service}"
        )
    if not any(s.name == body.service for s in ctx.fleet.services):
        raise HTTPException(404, f"unknown service {body.service!r}")
    try:
        result = submit(ctx.runtime, ctx.fleet, body.service, body.version, body.digest)
    except SubmitError as error:
        # Pattern checks ran above, so what submit() refuses is a clash with the record.
        metrics.SUBMISSIONS.labels("refused").inc()
        raise HTTPException(409, str(error)) from None
    metrics.SUBMISSIONS.labels("created" if result.created else "same").inc()
    with reading(ctx.database_url) as session:
        release = session.get(Release, result.release_id)
        digest = release.digest if release is not None else body.digest
    if not result.created:
        response.status_code = 200
    return SubmittedOut(
        release_id=result.release_id,
        rollout_id=result.rollout_id,
        service=body.service,
        version=body.version,
        digest=digest,
        created=result.created,
        superseded=list(result.superseded),
    )


@router.post("/v1/releases/recall")
def recall_release(body: Annotated[RecallIn, Body()], token: Steerer, ctx: Context) -> RecalledOut:
    """Recall a release: no new upgrade to it anywhere; every environment running it rolls
    off to its last good version at once (no gates, no ramp). Recalling again changes
    nothing."""
    try:
        done = recall(ctx.runtime, body.service, body.version, body.reason, actor=actor_of(token))
    except NoSuchRelease as error:
        raise HTTPException(404, str(error)) from None
    return recalled_out(done)
