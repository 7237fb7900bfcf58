"""The `rollout` command: operators query and steer, pipelines submit."""

from __future__ import annotations

import json
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from sqlalchemy.exc import OperationalError, ProgrammingError

from rollout.config import ConfigError, Fleet, load_fleet
from rollout.config.slow_io import longer_than_lease
from rollout.settings import get_settings

if TYPE_CHECKING:
    from rollout.cli.backend import Backend, Steering

app = typer.Typer(
    help="A continuous-upgrade rollout orchestrator.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
config_app = typer.Typer(help="The fleet config.", no_args_is_help=True)
db_app = typer.Typer(help="The database schema.", no_args_is_help=True)
token_app = typer.Typer(help="API tokens.", no_args_is_help=True)
app.add_typer(config_app, name="config")
app.add_typer(db_app, name="db")
app.add_typer(token_app, name="token")

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
        lease = timedelta(seconds=get_settings().lease_seconds)
        for warning in fleet.warnings() + longer_than_lease(fleet, lease):
            err.print(f"[yellow]warning:[/yellow] {path}: {warning}", highlight=False)
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


def pick_backend(config: Path | None = None) -> Backend:
    """The API when ROLLOUT_API_URL and ROLLOUT_TOKEN are set, else the database (and the
    fleet config of `config`, read only if an operation needs it)."""
    from rollout.cli.backend import BackendError, choose_backend

    try:
        return choose_backend(
            lambda: get_settings().resolved_database_url(), lambda: _fleet(config)
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


@app.command()
def submit(
    service: Annotated[str, typer.Argument(help="the service to release")],
    version: Annotated[str, typer.Argument(help="the new version")],
    digest: Annotated[str | None, typer.Option(help="artifact digest, sha256:<64 hex>")] = None,
    config: ConfigOption = None,
) -> None:
    """Submit a release; it rolls out through the stages (through the API when
    ROLLOUT_API_URL and ROLLOUT_TOKEN are set)."""
    from rollout.observability import setup

    # The rollout's trace starts here when OTEL_* asks (through the API: in its header);
    # the SDK sends what it holds when the process exits.
    setup("cli", log_format=None)
    with refusals():
        result = pick_backend(config).submit(service, version, digest)
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
    stage: Annotated[str | None, typer.Option(help="only rollouts now at this stage")] = None,
    team: Annotated[str | None, typer.Option(help="only this team's rollouts")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
) -> None:
    """List rollouts, newest first."""
    from rollout.cli.render import rollouts_table
    from rollout.domain.states import RolloutState

    if state is not None and state not in {s.value for s in RolloutState}:
        raise fail(f"unknown state {state!r} (one of: {', '.join(s.value for s in RolloutState)})")
    with refusals():
        rows = pick_backend().list_rollouts(
            service=service, state=state, stage=stage, team=team, limit=limit
        )
    out.print(rollouts_table(rows))


@app.command()
def show(rollout_id: Annotated[int, typer.Argument(help="the rollout's id")]) -> None:
    """Show a rollout: stages, environments, gate values against conditions, why it waits."""
    from rollout.cli.render import print_story

    with refusals():
        view = pick_backend().show_rollout(rollout_id)
    print_story(out, view)


def _steer(
    rollout_id: int, action: Steering, reason: str | None, config: Path | None = None
) -> None:
    """Pause, resume, abort, retry or promote a rollout; print what happened in one line, or
    refuse in one line with a non-zero exit."""
    with refusals():
        done = pick_backend(config).steer(rollout_id, action, reason)
    out.print(done.message, highlight=False, soft_wrap=True)


RolloutId = Annotated[int, typer.Argument(help="the rollout's id")]
Reason = Annotated[str | None, typer.Option(help="why: recorded on the rollout")]


@app.command()
def pause(rollout_id: RolloutId, reason: Reason = None) -> None:
    """Pause a running rollout: nothing new starts, upgrades in flight finish."""
    _steer(rollout_id, "pause", reason)


@app.command()
def resume(rollout_id: RolloutId, reason: Reason = None) -> None:
    """Resume a paused rollout; upgrades awaiting a decision (an inconclusive gate) pass."""
    _steer(rollout_id, "resume", reason)


@app.command()
def abort(rollout_id: RolloutId, reason: Reason = None) -> None:
    """Halt a rollout like a failure; upgrades awaiting a decision roll back; no page."""
    _steer(rollout_id, "abort", reason)


@app.command()
def retry(rollout_id: RolloutId, config: ConfigOption = None) -> None:
    """Roll a failed rollout's release out again, planned from the current config."""
    _steer(rollout_id, "retry", None, config)


@app.command()
def promote(rollout_id: RolloutId) -> None:
    """Skip the rest of the current stage's soak, once the stage has passed."""
    _steer(rollout_id, "promote", None)


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
def token_revoke(token_id: Annotated[int, typer.Argument(help="the token's id")]) -> None:
    """Revoke a token: the API refuses it from the next request on."""
    with refusals():
        pick_backend().revoke_token(token_id)
    out.print(f"token {token_id} revoked", highlight=False)


@token_app.command("list")
def token_list() -> None:
    """List tokens (never their secrets)."""
    from rollout.cli.render import tokens_table

    with refusals():
        tokens = pick_backend().tokens()
    out.print(tokens_table(tokens))


@app.command()
def api(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="port to listen on")] = 8000,
    config: ConfigOption = None,
) -> None:
    """Serve the HTTP API (OpenAPI document at /docs and /openapi.json)."""
    import uvicorn

    from rollout.api import create_app
    from rollout.observability import setup

    settings = get_settings()
    setup("api", log_format=settings.log_format)  # /metrics is on the API's own port
    application = create_app(
        settings.resolved_database_url(), _fleet(config), broker_url=settings.broker_url
    )
    # log_config=None: uvicorn's lines go through the root handler, in ROLLOUT_LOG_FORMAT.
    uvicorn.run(application, host=host, port=port, log_level="info", log_config=None)


@app.command()
def recall(
    service: Annotated[str, typer.Argument(help="the service")],
    version: Annotated[str, typer.Argument(help="the version to recall")],
    reason: Annotated[str | None, typer.Option(help="why; recorded and shown")] = None,
) -> None:
    """Recall a release: no new upgrade to it anywhere; where it runs, roll off to the last
    good version at once (no gates, no ramp)."""
    with refusals():
        recalled = pick_backend().recall(service, version, reason)
    out.print(recalled.message, highlight=False)


MetricsPort = Annotated[
    int | None,
    typer.Option(min=0, max=65535, help="serve /metrics here [default: ROLLOUT_METRICS_PORT]"),
]
MetricsHost = Annotated[
    str | None,
    typer.Option(
        help="address /metrics listens on; 0.0.0.0 for every interface "
        "[default: ROLLOUT_METRICS_HOST, else 127.0.0.1]"
    ),
]


@app.command()
def worker(
    concurrency: Annotated[int, typer.Option(min=1, help="processes in the pool")] = 2,
    pool: Annotated[str, typer.Option(help="prefork, or solo: one process, no pool")] = "prefork",
    loglevel: Annotated[str, typer.Option()] = "INFO",
    metrics_port: MetricsPort = None,
    metrics_host: MetricsHost = None,
) -> None:
    """Start a Celery worker: runs upgrade steps, gates and rollbacks."""
    import os

    from rollout.observability import metrics, setup

    if pool not in ("prefork", "solo"):
        raise fail(f"unknown pool {pool!r} (prefork or solo)")
    settings = get_settings()
    port = settings.metrics_port if metrics_port is None else metrics_port
    if port is not None:
        # The pool processes record into files there; this process serves their sum.
        metrics.use_multiprocess_dir()
    host = metrics_host or settings.metrics_host
    setup("worker", log_format=settings.log_format, metrics_port=port, metrics_host=host)

    from celery.signals import celeryd_init

    from rollout.engine.celery_app import QUEUE
    from rollout.engine.celery_app import app as celery

    # Celery's worker_main drops the worker's exit code: a worker that stops on an
    # unrecoverable error ("Could not start worker processes", a broker error it cannot
    # handle) would exit 0, and a supervisor restarting on failure would leave it down.
    started: list[Any] = []
    celeryd_init.connect(lambda instance, **_: started.append(instance), weak=False)

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
    code = started[-1].exitcode if started else None
    if code:
        raise typer.Exit(code)


@app.command()
def ticker(
    interval: Annotated[float | None, typer.Option(help="seconds between ticks")] = None,
    metrics_port: MetricsPort = None,
    metrics_host: MetricsHost = None,
) -> None:
    """Claim due waits and stale work from the database and nudge workers."""
    from rollout.engine.celery_app import CeleryDispatcher
    from rollout.engine.runtime import Runtime
    from rollout.engine.ticker import run_ticker
    from rollout.observability import setup

    settings = get_settings()
    port = settings.metrics_port if metrics_port is None else metrics_port
    host = metrics_host or settings.metrics_host
    setup("ticker", log_format=settings.log_format, metrics_port=port, metrics_host=host)
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
        print(json.dumps(summary.model_dump(mode="json"), indent=2))


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


# Commands about people live in their own module; registered here so `rollout --help` lists
# them with the rest.
from rollout.cli.freezes import freeze, freezes, unfreeze  # noqa: E402
from rollout.cli.hygiene import hygiene  # noqa: E402
from rollout.cli.paging import (  # noqa: E402
    ack,
    misrouted,
    not_actionable,
    oncall,
    override,
    pages,
    resolve,
)

for command in (oncall, pages, override, ack, resolve, misrouted, hygiene):
    app.command()(command)
app.command()(freeze)
app.command()(unfreeze)
app.command()(freezes)
app.command("not-actionable")(not_actionable)

from rollout.cli.agent import agent  # noqa: E402

app.command()(agent)
