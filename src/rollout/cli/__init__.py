"""The `rollout` command: operators query and steer, pipelines submit."""

from __future__ import annotations

import json
import signal
import sys
import threading
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from sqlalchemy.exc import OperationalError, ProgrammingError

from rollout.config import ConfigError, Fleet, load_fleet
from rollout.settings import get_settings

app = typer.Typer(
    help="A continuous-upgrade rollout orchestrator.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
config_app = typer.Typer(help="The fleet config.", no_args_is_help=True)
db_app = typer.Typer(help="The database schema.", no_args_is_help=True)
app.add_typer(config_app, name="config")
app.add_typer(db_app, name="db")

out = Console()
err = Console(stderr=True)


class UserError(Exception):
    """A mistake of the caller: one line to stderr, non-zero exit, never a traceback."""


def fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def _fleet(path: Path | None) -> Fleet:
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


@config_app.command("validate")
def config_validate(
    files: Annotated[list[Path], typer.Argument(help="config files or directories")],
) -> None:
    """Check fleet configs; print every problem with file, line, path and field."""
    failed = False
    for path in files:
        try:
            fleet = load_fleet(path)
        except ConfigError as error:
            failed = True
            for problem in error.problems:
                err.print(f"[red]error:[/red] {problem}", highlight=False, soft_wrap=True)
            continue
        out.print(
            f"{path}: ok ({len(fleet.teams)} teams, {len(fleet.services)} services, "
            f"{len(fleet.stages)} stages, {len(fleet.environments)} environments)",
            highlight=False,
        )
    if failed:
        raise typer.Exit(1)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the schema to the newest version."""
    from rollout.store.database import migrate

    url = get_settings().resolved_database_url()
    migrate(url)
    out.print("database schema is up to date", highlight=False)


@app.command()
def submit(
    service: Annotated[str, typer.Argument(help="the service to release")],
    version: Annotated[str, typer.Argument(help="the new version")],
    digest: Annotated[str | None, typer.Option(help="artifact digest, sha256:<64 hex>")] = None,
    config: ConfigOption = None,
) -> None:
    """Submit a release; it rolls out through the stages."""
    from rollout.engine.runtime import Runtime
    from rollout.engine.submission import SubmitError
    from rollout.engine.submission import submit as submit_release

    fleet = _fleet(config)
    try:
        result = submit_release(Runtime.from_settings(), fleet, service, version, digest)
    except SubmitError as error:
        raise fail(str(error)) from None
    if result.created:
        out.print(f"submitted {service} {version}: rollout {result.rollout_id}", highlight=False)
        for old in result.superseded:
            out.print(f"rollout {old} superseded", highlight=False)
    else:
        out.print(
            f"{service} {version} was already submitted: rollout {result.rollout_id}",
            highlight=False,
        )


@app.command("list")
def list_(
    service: Annotated[str | None, typer.Option(help="only this service")] = None,
    state: Annotated[str | None, typer.Option(help="only rollouts in this state")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
) -> None:
    """List rollouts, newest first."""
    from rollout.cli.render import rollouts_table
    from rollout.domain.states import RolloutState
    from rollout.store.database import transaction
    from rollout.store.queries import list_rollouts

    if state is not None and state not in {s.value for s in RolloutState}:
        raise fail(f"unknown state {state!r} (one of: {', '.join(s.value for s in RolloutState)})")
    with transaction(get_settings().resolved_database_url()) as session:
        rows = list_rollouts(session, service, state, limit)
    out.print(rollouts_table(rows))


@app.command()
def show(rollout_id: Annotated[int, typer.Argument(help="the rollout's id")]) -> None:
    """Show a rollout: stages, environments, gate values against conditions, why it waits."""
    from rollout.cli.render import print_story
    from rollout.store.database import transaction
    from rollout.store.queries import rollout_detail

    with transaction(get_settings().resolved_database_url()) as session:
        detail = rollout_detail(session, rollout_id)
        if detail is None:
            raise fail(f"no rollout {rollout_id}")
        print_story(out, detail)


@app.command()
def worker(
    concurrency: Annotated[int, typer.Option(min=1, help="processes in the pool")] = 2,
    pool: Annotated[str, typer.Option(help="prefork, or solo: one process, no pool")] = "prefork",
    loglevel: Annotated[str, typer.Option()] = "INFO",
) -> None:
    """Start a Celery worker: runs upgrade steps, gates and rollbacks."""
    import os

    from rollout.engine.celery_app import QUEUE
    from rollout.engine.celery_app import app as celery

    if pool not in ("prefork", "solo"):
        raise fail(f"unknown pool {pool!r} (prefork or solo)")
    # The pid keeps node names unique when several workers share a host.
    name = f"rollout-{os.getpid()}@%h"
    celery.worker_main(
        [
            "worker",
            "-Q",
            QUEUE,
            "-c",
            str(concurrency),
            "-P",
            pool,
            "--loglevel",
            loglevel,
            "-n",
            name,
        ]
    )


@app.command()
def ticker(
    interval: Annotated[float | None, typer.Option(help="seconds between ticks")] = None,
) -> None:
    """Claim due waits and stale work from the database and nudge workers."""
    from rollout.engine.celery_app import CeleryDispatcher
    from rollout.engine.runtime import Runtime
    from rollout.engine.ticker import run_ticker

    settings = get_settings()
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    out.print("ticker started", highlight=False)
    run_ticker(Runtime.from_settings(CeleryDispatcher()), interval or settings.tick_seconds, stop)


@app.command()
def demo(
    as_json: Annotated[bool, typer.Option("--json", help="print the summary as JSON")] = False,
    config: ConfigOption = None,
) -> None:
    """Run everything in one process on a simulated fleet, and summarise."""
    from rollout.cli.demo import run_demo

    summary = run_demo(config, console=None if as_json else out)
    if as_json:
        print(json.dumps(summary, indent=2))


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
