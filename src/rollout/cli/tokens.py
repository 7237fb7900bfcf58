"""Commands about API tokens: create one (its secret shown once), revoke, list."""

from __future__ import annotations

from typing import Annotated

import typer

from rollout.api.schemas import TokenList
from rollout.cli.entry import (
    ConfigOption,
    TokenId,
    err,
    fail,
    out,
    pick_backend,
    refusals,
    token_app,
)
from rollout.cli.output import Format, OutputOption, emit


@token_app.command("create")
def token_create(
    scope: Annotated[str, typer.Option(help="pipeline, team, operator, admin or agent")],
    service: Annotated[
        list[str] | None, typer.Option(help="a service a pipeline token may submit (repeat)")
    ] = None,
    team: Annotated[str | None, typer.Option(help="the team of a team token")] = None,
    note: Annotated[str | None, typer.Option(help="what the token is for")] = None,
    config: ConfigOption = None,
    environment: Annotated[
        list[str] | None, typer.Option(help="an environment an agent token serves (repeat)")
    ] = None,
) -> None:
    """Create an API token; its secret is printed this once, and only its hash is kept."""
    from rollout.store.tokens import Scope

    if scope not in {s.value for s in Scope}:
        raise fail(f"unknown scope {scope!r} (one of: {', '.join(s.value for s in Scope)})")
    with refusals():
        created = pick_backend(config).create_token(
            scope, service or [], team, note, environment or []
        )
    token_id, secret = created.token.id, created.secret
    err.print(f"token {token_id} created; its secret is shown only now:", highlight=False)
    print(secret)


@token_app.command("revoke")
def token_revoke(token_id: TokenId) -> None:
    """Revoke a token: the API refuses it from the next request on."""
    with refusals():
        pick_backend().revoke_token(token_id)
    out.print(f"token {token_id} revoked", highlight=False)


@token_app.command("list")
def token_list(output: OutputOption = Format.TABLE) -> None:
    """List tokens (never their secrets)."""
    from rollout.cli.render import tokens_table

    with refusals():
        tokens = pick_backend().tokens()
    emit(TokenList(tokens=tokens), output, lambda wide: tokens_table(tokens))
