"""`rollout history`: the timeline of a service, a rollout or the fleet, oldest first; and
the lines of a rollout's recorded actions, for `rollout show`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer
from rich.console import RenderableType
from rich.table import Table
from rich.text import Text

from rollout.api.schemas import RolloutDetailView
from rollout.api.schemas.history import EventList, EventView
from rollout.cli.entry import fail, pick_backend, refusals
from rollout.cli.output import Format, OutputOption, emit
from rollout.store import MAX_ID


def when(at: datetime) -> str:
    """A time as the history prints it: to the second, in the reader's zone, which it names
    (UTC with `rollout --utc`)."""
    from rollout.cli.zone import shown

    return shown(at, seconds=True)


def history(
    service: Annotated[str | None, typer.Argument(help="only this service's history")] = None,
    rollout: Annotated[
        int | None, typer.Option("--rollout", help="only this rollout's", min=1, max=MAX_ID)
    ] = None,
    since: Annotated[
        str, typer.Option(help="how far back to look: 7d, 12h, 2w, or a time (ISO 8601)")
    ] = "7d",
    output: OutputOption = Format.TABLE,
) -> None:
    """What happened, oldest first: releases submitted, stages passed, pages, rollbacks,
    rollouts ended, and who paused, aborted, skipped, froze… when and why."""
    from rollout.cli.zone import read_since, window_text

    if service is not None and rollout is not None:
        raise fail("give a service or --rollout, not both")
    # The one time rule: a window or a time; the API is asked for a window either way.
    window = read_since("--since", since)
    with refusals():
        found = pick_backend().history(service, rollout, window_text(since, window))
    emit(found, output, lambda wide: history_table(found, since, wide))


def history_table(found: EventList, since: str, wide: bool = False) -> RenderableType:
    if not found.events:
        return Text(f"nothing happened in the last {since}")
    table = Table(title=f"History (last {since})", title_justify="left")
    # The time is read whole, whatever the width; the what and the why wrap at words.
    stamp = max(len(when(e.at)) for e in found.events)
    table.add_column("time", no_wrap=True, min_width=stamp)
    table.add_column("who", no_wrap=True, max_width=28)
    if wide:
        for column in ("kind", "action", "rollout"):
            table.add_column(column, no_wrap=True)
    table.add_column("what", ratio=3)
    table.add_column("why", ratio=2)
    for event in found.events:
        cells = [when(event.at), event.who or "-", event.what, event.why or ""]
        if wide:
            rollout = "" if event.rollout_id is None else str(event.rollout_id)
            cells[2:2] = [event.kind, event.action, rollout]
        table.add_row(*cells)
    return table


def action_lines(view: RolloutDetailView) -> list[str]:
    """A rollout's recorded actions, one line each, oldest first: when, who, what, why."""
    return [_line(event) for event in view.actions]


def _line(event: EventView) -> str:
    line = f"{when(event.at)}  {event.who or '-'}: {event.what}"
    # Most messages quote the reason already: say it once.
    if event.why and event.why not in event.what:
        line += f" (why: {event.why})"
    return line
