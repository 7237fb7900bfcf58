"""Commands that run the product: the API, a worker, the ticker, and the embedded demo."""

from __future__ import annotations

import json
import signal
import threading
from typing import Annotated, Any

import typer

from rollout.cli.entry import ConfigOption, fail, fleet_or_exit, out
from rollout.settings import get_settings


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
        settings.resolved_database_url(), fleet_or_exit(config), broker_url=settings.broker_url
    )
    # log_config=None: uvicorn's lines go through the root handler, in ROLLOUT_LOG_FORMAT.
    uvicorn.run(application, host=host, port=port, log_level="info", log_config=None)


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


def demo(
    as_json: Annotated[bool, typer.Option("--json", help="print the summary as JSON")] = False,
    config: ConfigOption = None,
) -> None:
    """Run everything in one process on a simulated fleet, and summarise."""
    from rollout.cli.demo import run_demo

    summary = run_demo(config, console=None if as_json else out)
    if as_json:
        print(json.dumps(summary.model_dump(mode="json"), indent=2))
