"""`rollout fleet`: which version runs where, and what is moving, held or failed, at a glance;
`--watch` follows it."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Annotated

import typer
from rich.console import RenderableType
from rich.live import Live

from rollout.api.schemas.fleet import FleetView
from rollout.cli.entry import out, pick_backend, refusals
from rollout.cli.output import Format, OutputOption, emit


def fleet(
    service: Annotated[str | None, typer.Option(help="only this service")] = None,
    stage: Annotated[str | None, typer.Option(help="only this stage's environments")] = None,
    environment: Annotated[str | None, typer.Option(help="only this environment")] = None,
    team: Annotated[str | None, typer.Option(help="only this team's services")] = None,
    watch: Annotated[
        bool, typer.Option("--watch", "-w", help="redraw as it changes, until Ctrl-C")
    ] = False,
    interval: Annotated[
        float, typer.Option(min=0.2, max=3600, help="--watch: seconds between reads")
    ] = 2.0,
    output: OutputOption = Format.TABLE,
) -> None:
    """The fleet at a glance: each service's installed version in each environment, marked
    when an upgrade is in flight, failed, held or queued, or the version is recalled;
    environments grouped by stage, summed up per stage when they do not fit."""
    from rollout.cli.matrix import fleet_matrix

    backend = pick_backend()

    def read() -> FleetView:
        with refusals():
            return backend.fleet(service=service, stage=stage, environment=environment, team=team)

    def draw(view: FleetView) -> Callable[[bool], RenderableType]:
        return lambda wide: fleet_matrix(view, wide, out.width)

    if not watch:
        view = read()
        emit(view, output, draw(view))
        return
    try:
        _watch(read, draw, output, interval)
    except KeyboardInterrupt:
        raise typer.Exit(0) from None


def _watch(
    read: Callable[[], FleetView],
    draw: Callable[[FleetView], Callable[[bool], RenderableType]],
    output: Format,
    interval: float,
) -> None:
    """On a terminal, redraw in place; piped (or as JSON/YAML), print once per change."""
    view = read()
    if out.is_terminal and output in (Format.TABLE, Format.WIDE):
        wide = output is Format.WIDE
        with Live(draw(view)(wide), console=out, auto_refresh=False) as live:
            while True:
                time.sleep(interval)
                view = read()
                live.update(draw(view)(wide), refresh=True)
    last = None
    while True:
        if view != last:
            emit(view, output, draw(view))
            sys.stdout.flush()
            last = view
        time.sleep(interval)
        view = read()
