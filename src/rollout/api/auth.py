"""Bearer tokens and scopes: who is asking, and what each scope may see and do."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import HTTPException, Request

from rollout.api.context import context
from rollout.domain.audit import Actor
from rollout.store.database import reading
from rollout.store.tokens import Scope, TokenInfo, find_token

READERS = (Scope.TEAM, Scope.OPERATOR, Scope.ADMIN)
STEERERS = (Scope.OPERATOR, Scope.ADMIN)


class Unauthenticated(HTTPException):
    def __init__(self, detail: str) -> None:
        super().__init__(401, detail, headers={"WWW-Authenticate": "Bearer"})


def forbidden(detail: str) -> HTTPException:
    return HTTPException(403, detail)


def authenticate(request: Request) -> TokenInfo:
    header = request.headers.get("authorization")
    if header is None:
        raise Unauthenticated("no token: send Authorization: Bearer <token>")
    kind, _, secret = header.partition(" ")
    if kind.lower() != "bearer" or not secret.strip():
        raise Unauthenticated("malformed Authorization header: expected Bearer <token>")
    with reading(context(request).database_url) as session:
        token = find_token(session, secret.strip())
    if token is None:
        raise Unauthenticated("unknown token")
    if token.revoked_at is not None:
        # Not its id: whoever holds a revoked secret learns nothing about the token table.
        raise Unauthenticated("revoked token")
    return token


def allow(*scopes: Scope) -> Callable[[Request], TokenInfo]:
    """A dependency: the caller's token, if its scope is one of `scopes`."""
    wanted = ", ".join(scopes)

    def dependency(request: Request) -> TokenInfo:
        token = authenticate(request)
        if token.scope not in scopes:
            raise forbidden(f"a {token.scope} token may not do this (needs: {wanted})")
        return token

    return dependency


def visible_team(token: TokenInfo, asked: str | None) -> str | None:
    """The team whose data a read may return: a team token's own, whatever else it asks."""
    if token.scope is not Scope.TEAM:
        return asked
    if asked is not None and asked != token.team:
        raise forbidden(f"this token is team {token.team}'s; it may not read team {asked}'s data")
    return token.team


def actor_of(token: TokenInfo) -> Actor:
    """Who the audit trail says acted: the token, by id and note (never its secret)."""
    return Actor.token(token.id, token.note)


def check_team(token: TokenInfo, owner: str, what: str) -> None:
    if token.scope is Scope.TEAM and owner != token.team:
        raise forbidden(f"{what} belongs to team {owner}; this token is team {token.team}'s")


def check_rollout_reader(token: TokenInfo, team: str, service: str, what: str) -> None:
    """A pipeline reads the rollouts of its own services (it waits on what it submitted); a
    team its team's; an operator and an admin every one."""
    if token.scope is Scope.PIPELINE and service not in token.services:
        raise forbidden(
            f"{what} is of service {service}; this token may read only "
            f"{', '.join(token.services)}'s rollouts"
        )
    check_team(token, team, what)
