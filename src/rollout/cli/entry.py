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
from sqlalchemy.exc import SQLAlchemyError

from rollout.config import ConfigError, Fleet, load_fleet
from rollout.quoting import cut_quoted
from rollout.settings import SettingsError, get_settings
from rollout.store import MAX_ID

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
    # Whatever a refusal quotes back of the input is cut: it may be a pasted 10 kB blob.
    _one_line(cut_quoted(message))
    return typer.Exit(code)


def fleet_or_exit(path: Path | None) -> Fleet:
    try:
        return load_fleet(path or get_settings().config)
    except ConfigError as error:
        for problem in error.problems:
            _one_line(cut_quoted(str(problem)))
        raise typer.Exit(1) from None


# Ids as the store has them (1 to PostgreSQL's largest integer): anything else is refused
# here, in one line, before it reaches a database driver.
RolloutId = Annotated[int, typer.Argument(help="the rollout's id", min=1, max=MAX_ID)]
PageId = Annotated[int, typer.Argument(help="the page's id", min=1, max=MAX_ID)]
TokenId = Annotated[int, typer.Argument(help="the token's id", min=1, max=MAX_ID)]

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
    """Run the command; a mistake of usage, a setting or a database it cannot use ends it
    with one line on stderr (never a traceback) and a non-zero exit."""
    from rollout.cli.failures import database_problem, usage_problem

    try:
        return app(standalone_mode=False)
    except typer.Abort:
        _one_line("aborted")
    except typer.TyperException as error:
        if type(error).__name__ != "NoArgsIsHelpError":  # the help is what it printed
            _one_line(usage_problem(error))
        sys.exit(getattr(error, "exit_code", 2))
    except SettingsError as error:
        _one_line(str(error))
    except SQLAlchemyError as error:
        _one_line(database_problem(error))
    sys.exit(1)


def _one_line(message: str) -> None:
    # Markup off: the message quotes what was typed, which may hold [brackets].
    err.print("[red]error:[/red] ", end="", highlight=False)
    err.print(message, markup=False, highlight=False, soft_wrap=True)
