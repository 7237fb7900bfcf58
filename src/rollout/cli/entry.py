"""The command line's entry: the Typer app, its consoles, and how a command reaches the
engine (a Backend) and turns a refusal into one line."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from sqlalchemy.exc import OperationalError, ProgrammingError

from rollout.config import ConfigError, Fleet, load_fleet
from rollout.settings import get_settings

if TYPE_CHECKING:
    from rollout.cli.backend import Backend

app = typer.Typer(
    help="A continuous-upgrade rollout orchestrator.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,
)
config_app = typer.Typer(help="The fleet config.", no_args_is_help=True)
db_app = typer.Typer(help="The database schema.", no_args_is_help=True)
token_app = typer.Typer(help="API tokens.", no_args_is_help=True)
app.add_typer(config_app, name="config")
app.add_typer(db_app, name="db")
app.add_typer(token_app, name="token")

out = Console()
err = Console(stderr=True)


def _version(asked: bool) -> None:
    if asked:
        from importlib.metadata import version

        print(f"rollout {version('rollout')}")
        raise typer.Exit()


@app.callback()
def root(
    utc: Annotated[
        bool,
        typer.Option("--utc", help="tables show times in UTC; a time without a zone is UTC"),
    ] = False,
    show_version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="print the version and exit"
        ),
    ] = False,
) -> None:
    """A continuous-upgrade rollout orchestrator."""
    if utc:
        from rollout.cli.zone import force_utc

        force_utc()


class UserError(Exception):
    """A mistake of the caller: one line to stderr, non-zero exit, never a traceback."""


def fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def fleet_or_exit(path: Path | None) -> Fleet:
    try:
        return load_fleet(path or get_settings().config)
    except ConfigError as error:
        for problem in error.problems:
            err.print(f"[red]error:[/red] {problem}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None


ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config", "-c", help="fleet config file or directory (default: $ROLLOUT_CONFIG)"
    ),
]


def pick_backend(config: Path | None = None) -> Backend:
    """The API when ROLLOUT_API_URL and ROLLOUT_TOKEN are set, else the database (and the
    fleet config of `config`, read only if an operation needs it)."""
    from rollout.cli.backend import BackendError, choose_backend

    try:
        return choose_backend(
            lambda: get_settings().resolved_database_url(), lambda: fleet_or_exit(config)
        )
    except BackendError as error:
        raise fail(str(error)) from None


@contextmanager
def refusals() -> Iterator[None]:
    """A refusal of the backend (the engine's or the API's) becomes the command's one-line
    error and a non-zero exit."""
    from rollout.cli.backend import BackendError

    try:
        yield
    except BackendError as error:
        raise fail(str(error)) from None


def main() -> Any:
    try:
        return app()
    except (OperationalError, ProgrammingError) as error:
        message = str(error.orig).strip().splitlines()[0] if error.orig else str(error)
        err.print(
            f"[red]error:[/red] database: {message} (is it reachable, and is the schema "
            "current? run `rollout db upgrade`)",
            highlight=False,
            soft_wrap=True,
        )
        sys.exit(1)
