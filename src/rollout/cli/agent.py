"""`rollout agent`: the process an environment runs to apply versions (push or pull mode)."""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer
from rich.console import Console

err = Console(stderr=True)


def agent(
    config: Annotated[Path, typer.Argument(help="the agent's YAML config")],
    port: Annotated[
        int | None, typer.Option(min=0, max=65535, help="listen here (push; overrides config)")
    ] = None,
    host: Annotated[str | None, typer.Option(help="address to listen on (push)")] = None,
) -> None:
    """Run an environment's agent: it applies versions through its deploy command. Push
    mode serves the API the http driver calls; with `pull:` in its config it polls the
    orchestrator's API instead (for networks that accept no inbound calls)."""
    from rollout.agent import Agent, AgentConfigError, load_agent_config

    try:
        settings = load_agent_config(config)
    except AgentConfigError as error:
        err.print(f"[red]error:[/red] {error}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    worker = Agent(settings)
    worker.recover()
    if settings.pull is not None:
        from rollout.agent.pull import pull_forever

        if settings.token is None:
            err.print("[red]error:[/red] pull mode needs `token`: the agent's API token")
            raise typer.Exit(1)
        stop = threading.Event()

        def stopping(signum: int, frame: FrameType | None) -> None:
            stop.set()

        signal.signal(signal.SIGTERM, stopping)
        signal.signal(signal.SIGINT, stopping)
        pull_forever(worker, settings.pull, settings.token, stop)
        return

    import uvicorn

    from rollout.agent.push import push_app

    application = push_app(worker, settings.token)
    uvicorn.run(
        application,
        host=host or settings.host,
        port=settings.port if port is None else port,
        log_level="warning",
    )
