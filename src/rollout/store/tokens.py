"""API tokens: created with a secret shown once, kept only as a hash, revocable."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from rollout.config import NAME_PATTERN, Fleet
from rollout.domain.audit import Act, Actor
from rollout.quoting import cut, quoted
from rollout.store.events import record
from rollout.store.models import ApiToken

# A recognisable prefix lets secret scanners find a leaked token.
PREFIX = "rollout_"
NOTE_MAX = 200


class Scope(StrEnum):
    PIPELINE = "pipeline"  # submits releases of its listed services
    TEAM = "team"  # reads its own services' rollouts, acts on its own pages
    OPERATOR = "operator"  # reads everything, steers rollouts
    ADMIN = "admin"  # all an operator may, plus tokens and config
    AGENT = "agent"  # a pull-mode agent: its environments' desired versions and reports


class TokenError(ValueError):
    """The token was refused; the message says why, and nothing was written."""


@dataclass(frozen=True)
class TokenInfo:
    """A token as it may be shown: never its secret."""

    id: int
    scope: Scope
    services: tuple[str, ...]
    team: str | None
    note: str | None
    created_at: datetime
    revoked_at: datetime | None
    environments: tuple[str, ...] = ()

    @classmethod
    def of(cls, row: ApiToken) -> TokenInfo:
        return cls(
            row.id,
            Scope(row.scope),
            tuple(row.services),
            row.team,
            row.note,
            row.created_at,
            row.revoked_at,
            tuple(row.environments or ()),
        )


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def check_grant(
    scope: Scope, services: list[str], team: str | None, environments: list[str] | None = None
) -> None:
    """What each scope needs: a pipeline its services, a team its name, an agent its
    environments, the others none."""
    environments = environments or []
    for name in [*services, *environments, *([team] if team is not None else [])]:
        if not re.fullmatch(NAME_PATTERN, name):
            raise TokenError(f"malformed name {quoted(name)}: expected {NAME_PATTERN}")
    if environments and scope is not Scope.AGENT:
        raise TokenError("only an agent token is bound to environments: drop --environment")
    if scope is Scope.AGENT:
        if not environments:
            raise TokenError("an agent token needs its environment(s) (--environment)")
        if services or team is not None:
            raise TokenError("an agent token is for environments: drop --service and --team")
    elif scope is Scope.PIPELINE:
        if not services:
            raise TokenError("a pipeline token needs the services it may submit (--service)")
        if team is not None:
            raise TokenError("a pipeline token is for services, not a team: drop --team")
    elif scope is Scope.TEAM:
        if team is None:
            raise TokenError("a team token needs its team (--team)")
        if services:
            raise TokenError("a team token sees its team's services: drop --service")
    elif services or team is not None:
        raise TokenError(f"an {scope} token sees everything: drop --service and --team")


def grant_problem(
    fleet: Fleet, services: list[str], team: str | None, environments: list[str] | None = None
) -> str | None:
    """What is wrong with the names a token would grant (a typo would grant nothing)."""
    places = {e.name for e in fleet.environments}
    strangers = [e for e in environments or [] if e not in places]
    if strangers:
        return f"unknown environment(s): {cut(', '.join(strangers))} (known: {_names(places)})"
    known = {s.name for s in fleet.services}
    unknown = [s for s in services if s not in known]
    if unknown:
        return f"unknown service(s): {cut(', '.join(unknown))} (known: {_names(known)})"
    if team is not None and team not in {t.name for t in fleet.teams}:
        return f"unknown team {quoted(team)} (known: {_names({t.name for t in fleet.teams})})"
    return None


def _names(names: set[str]) -> str:
    return ", ".join(sorted(names))


def create_token(
    session: Session,
    scope: Scope,
    now: datetime,
    services: list[str] | None = None,
    team: str | None = None,
    note: str | None = None,
    environments: list[str] | None = None,
    *,
    actor: Actor,
) -> tuple[TokenInfo, str]:
    """Record a new token; the secret returned here is never available again."""
    services = sorted(set(services or []))
    environments = sorted(set(environments or []))
    check_grant(scope, services, team, environments)
    if note is not None and len(note) > NOTE_MAX:
        raise TokenError(f"the note is longer than {NOTE_MAX} characters")
    secret = PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(
        secret_hash=hash_secret(secret),
        scope=scope,
        services=services,
        team=team,
        note=note,
        created_at=now,
        environments=environments or None,
    )
    session.add(row)
    session.flush()
    # What it grants, never its secret.
    grant = services or environments or ([team] if team else [])
    granted = f" for {', '.join(grant)}" if grant else ""
    record(
        session,
        actor,
        Act.TOKEN_CREATE,
        now,
        f"{scope} token {row.id} created{granted}",
        reason=note,
        team=team,
        subject=f"token {row.id}",
    )
    return TokenInfo.of(row), secret


def revoke_token(
    session: Session, token_id: int, now: datetime, *, actor: Actor
) -> TokenInfo | None:
    """Revoke a token (revoking twice keeps the first time); None if there is no such token."""
    row = session.get(ApiToken, token_id)
    if row is None:
        return None
    if row.revoked_at is None:
        row.revoked_at = now
        record(
            session,
            actor,
            Act.TOKEN_REVOKE,
            now,
            f"{row.scope} token {row.id} revoked",
            team=row.team,
            subject=f"token {row.id}",
        )
    return TokenInfo.of(row)


def list_tokens(session: Session) -> list[TokenInfo]:
    return [TokenInfo.of(row) for row in session.scalars(select(ApiToken).order_by(ApiToken.id))]


def find_token(session: Session, secret: str) -> TokenInfo | None:
    """The token a secret belongs to, revoked or not; None if it is no token of ours."""
    if not secret.startswith(PREFIX):
        return None
    wanted = hash_secret(secret)
    row = session.scalars(select(ApiToken).where(ApiToken.secret_hash == wanted)).one_or_none()
    # The lookup is by hash, so it leaks nothing about the secret; compare in constant time
    # all the same, in case the index ever answers for a near match (collation, truncation).
    if row is None or not hmac.compare_digest(row.secret_hash, wanted):
        return None
    return TokenInfo.of(row)
