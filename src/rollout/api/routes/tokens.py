"""API tokens: an admin lists, creates and revokes them; a secret is shown once."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, HTTPException

from rollout.api.auth import actor_of
from rollout.api.deps import Admin, Context, Id
from rollout.api.schemas import (
    AgentTokenIn,
    PipelineTokenIn,
    TeamTokenIn,
    TokenCreated,
    TokenIn,
    TokenList,
    TokenView,
)
from rollout.api.views import token_view
from rollout.store.database import reading, transaction
from rollout.store.tokens import (
    TokenError,
    create_token,
    grant_problem,
    list_tokens,
    revoke_token,
)

router = APIRouter(tags=["tokens"])


@router.get("/v1/tokens")
def get_tokens(_: Admin, ctx: Context) -> TokenList:
    """Every token, revoked ones too; never a secret."""
    with reading(ctx.database_url) as session:
        return TokenList(tokens=[token_view(t) for t in list_tokens(session)])


@router.post("/v1/tokens", status_code=201)
def post_token(body: Annotated[TokenIn, Body()], token: Admin, ctx: Context) -> TokenCreated:
    """Create a token; its secret is in this answer only."""
    services = body.services if isinstance(body, PipelineTokenIn) else []
    team = body.team if isinstance(body, TeamTokenIn) else None
    places = body.environments if isinstance(body, AgentTokenIn) else []
    problem = grant_problem(ctx.fleet, services, team, places)
    if problem is not None:
        raise HTTPException(404, problem)
    try:
        with transaction(ctx.database_url) as session:
            info, secret = create_token(
                session,
                body.scope,
                ctx.now(),
                services,
                team,
                body.note,
                places,
                actor=actor_of(token),
            )
    except TokenError as error:
        raise HTTPException(422, str(error)) from None
    return TokenCreated(token=token_view(info), secret=secret)


@router.post("/v1/tokens/{token_id}/revoke")
def post_revoke(token_id: Id, token: Admin, ctx: Context) -> TokenView:
    """Revoke a token; it is refused from the next request on."""
    with transaction(ctx.database_url) as session:
        info = revoke_token(session, token_id, ctx.now(), actor=actor_of(token))
    if info is None:
        raise HTTPException(404, f"no token {token_id}")
    return token_view(info)
