"""`rollout status`, the CI contract: where a rollout is and why, waited on until it settles,
and an exit code a pipeline acts on; also how `--watch` follows a rollout, list or story."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from rollout.api.schemas import RolloutSummary
from rollout.api.schemas.status import RolloutStatus
from rollout.cli.entry import err, fail, out, pick_backend, refusals
from rollout.cli.output import Format, OutputOption, emit
from rollout.domain.verdict import Outcome

if TYPE_CHECKING:
    from rollout.cli.backend import Backend, RolloutRef

DEFAULT_TIMEOUT = "30m"
# PostgreSQL's integer, the ids' column type (as the API's ids).
LARGEST_ID = 2**31 - 1
# `list --watch` reads the list again this often (a list has no one rollout to stream).
LIST_EVERY_SECONDS = 2.0

TimeoutOption = Annotated[
    str,
    typer.Option(
        help="how long to wait (30s, 10m, 1h); a hold that clears only later exits 3 at once"
    ),
]
WaitOption = Annotated[
    bool, typer.Option("--wait", help="wait until it succeeds, fails, or the timeout passes")
]
WatchOption = Annotated[
    bool, typer.Option("--watch", "-w", help="redraw while it changes; ends when it is final")
]


def timeout_of(text: str) -> timedelta:
    from rollout.durations import parse_duration

    try:
        return parse_duration(text)
    except ValueError as error:
        raise fail(f"--timeout: {error}") from None


def target_of(rollout: str, version: str | None) -> RolloutRef:
    """ROLLOUT_ID, or SERVICE VERSION (the release's newest rollout)."""
    if version is not None:
        return (rollout, version)
    if not rollout.isdigit():
        raise fail(f"expected a rollout id or SERVICE VERSION, got {rollout[:64]!r}")
    if not 0 < int(rollout) <= LARGEST_ID:
        # Past the ids' column type: no such rollout, and never a database error.
        raise fail(f"no rollout {rollout[:20]}", Outcome.NOT_FOUND)
    return int(rollout)


# --- drawing -------------------------------------------------------------------------------


def _environments(names: list[str], wide: bool) -> str:
    if wide or len(names) <= 3:
        return ", ".join(names)
    return f"{', '.join(names[:3])} and {len(names) - 3} more"


def status_table(status: RolloutStatus, wide: bool = False) -> Table:
    from rollout.cli.render import state_text

    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    head = Text.assemble(
        f"rollout {status.id}: {status.service} {status.version} (team {status.team}) ",
        state_text(status.state),
    )
    table.add_row("rollout", head)
    table.add_row("stage", f"{status.stage} ({status.stage_index + 1} of {status.stages})")
    counts = ", ".join(f"{n} {state}" for state, n in status.counts.items())
    table.add_row("upgraded", f"{status.done} of {status.total} environments ({counts})")
    if status.reason:
        table.add_row("reason", status.reason)
    for index, hold in enumerate(status.holds):
        clears = "" if hold.clears_at is None else f" (clears {hold.clears_at:%Y-%m-%d %H:%M:%S}Z)"
        where = _environments(hold.environments, wide)
        table.add_row("" if index else "waits", f"{where}: {hold.text}{clears if wide else ''}")
    verdict = status.verdict
    table.add_row("verdict", f"{verdict.outcome} (exit {verdict.exit_code}): {verdict.why}")
    return table


def status_line(status: RolloutStatus) -> str:
    """One line for a log (stdout not a terminal): a new state is a new line."""
    return f"rollout {status.id} {status.service} {status.version}: {status.verdict.why}"


@contextmanager
def drawing(lines: bool) -> Iterator[Callable[[RenderableType, str], None]]:
    """A way to show each new state: redrawn in place on a terminal, else a line each."""
    if lines:
        printed = [""]

        def print_line(_drawn: RenderableType, line: str) -> None:
            # A change people do not see in the line (a timestamp) prints nothing new.
            if line != printed[0]:
                out.print(line, highlight=False, soft_wrap=True)
                printed[0] = line

        yield print_line
        return
    with Live(console=out, auto_refresh=False, transient=False) as live:
        yield lambda drawn, _line: live.update(drawn, refresh=True)


def _no_watch_for_machines(output: Format) -> None:
    if output in (Format.JSON, Format.YAML):
        raise fail("--watch draws for people; with -o json or yaml use `rollout status --wait`")


# --- waiting -------------------------------------------------------------------------------


def wait_for_verdict(backend: Backend, rollout: RolloutRef, timeout: timedelta) -> RolloutStatus:
    """The status once it is settled (final, or held past the deadline) or at the timeout."""
    start = time.monotonic()
    status = backend.rollout_status(rollout, timeout, timedelta(0))
    while not status.verdict.settled:
        elapsed = timedelta(seconds=time.monotonic() - start)
        if elapsed >= timeout:
            break
        status = backend.rollout_status(status.id, timeout - elapsed, timeout - elapsed)
    return status


def follow(
    backend: Backend,
    rollout: RolloutRef,
    timeout: timedelta,
    draw: Callable[[RolloutStatus], tuple[RenderableType, str]],
    until_final: bool = False,
) -> RolloutStatus:
    """Show each change of the rollout until it settles (`until_final`: until it is final,
    however long) or the timeout passes; the last status read."""
    status = backend.rollout_status(rollout, timeout, timedelta(0))
    start = time.monotonic()
    with drawing(not out.is_terminal) as show:
        show(*draw(status))
        done = status.final if until_final else status.verdict.settled
        if done:
            return status
        for change in backend.rollout_changes(status.id, timeout):
            if change is not None and change != status:
                status = change
                show(*draw(status))
                if status.final or (not until_final and status.verdict.settled):
                    break
            if not until_final and time.monotonic() - start >= timeout.total_seconds():
                break
    return status


def exit_with(status: RolloutStatus) -> None:
    if status.verdict.exit_code != 0:
        raise typer.Exit(status.verdict.exit_code)


@contextmanager
def verdicts() -> Iterator[None]:
    """A missing rollout is exit 4 (the contract), any other refusal exit 1, in one line."""
    from rollout.cli.backend import BackendError, NotFound

    try:
        yield
    except NotFound as error:
        raise fail(str(error), Outcome.NOT_FOUND) from None
    except BackendError as error:
        raise fail(str(error)) from None


def report(
    backend: Backend,
    rollout: RolloutRef,
    timeout: timedelta,
    wait: bool,
    watch: bool,
    output: Format,
) -> None:
    """Print the status as asked and exit with its verdict's code."""
    with verdicts():
        if watch:
            status = follow(backend, rollout, timeout, lambda s: (status_table(s), status_line(s)))
        elif wait:
            status = wait_for_verdict(backend, rollout, timeout)
        else:
            status = backend.rollout_status(rollout, timeout, timedelta(0))
    if not watch:
        emit(status, output, lambda wide: status_table(status, wide))
    exit_with(status)


def status(
    rollout: Annotated[str, typer.Argument(help="a rollout id, or a SERVICE", show_default=False)],
    version: Annotated[
        str | None, typer.Argument(help="with a SERVICE: the release's VERSION", show_default=False)
    ] = None,
    wait: WaitOption = False,
    timeout: TimeoutOption = DEFAULT_TIMEOUT,
    watch: WatchOption = False,
    output: OutputOption = Format.TABLE,
) -> None:
    """Where a rollout is and why; exits 0 succeeded, 1 failed (or rolled back, aborted,
    superseded), 2 still in progress at the timeout, 3 held past the timeout, 4 not found."""
    if watch:
        _no_watch_for_machines(output)
    target = target_of(rollout, version)
    report(pick_backend(), target, timeout_of(timeout), wait, watch, output)


# --- watching show and list ----------------------------------------------------------------


def watch_story(rollout_id: int, output: Format, everything: bool = False) -> None:
    """`show --watch`: the story redrawn at each change until the rollout is final; exits
    with the status code then."""
    from rollout.cli.render import rollout_story

    _no_watch_for_machines(output)
    backend = pick_backend()

    def draw(status: RolloutStatus) -> tuple[RenderableType, str]:
        return rollout_story(backend.show_rollout(status.id), everything), status_line(status)

    with verdicts():
        # A story is followed to its end; no deadline (Ctrl-C stops it).
        status = follow(backend, rollout_id, timedelta(days=1), draw, until_final=True)
        if not out.is_terminal:
            out.print(rollout_story(backend.show_rollout(rollout_id), everything))
    exit_with(status)


def watch_list(read: Callable[[], list[RolloutSummary]], output: Format) -> None:
    """`list --watch`: the list read again every few seconds, redrawn when it changes, until
    every listed rollout is final (or Ctrl-C)."""
    from rollout.cli.render import rollouts_table
    from rollout.domain.states import RolloutState

    _no_watch_for_machines(output)
    seen: dict[int, RolloutSummary] = {}
    try:
        with drawing(not out.is_terminal) as show:
            while True:
                with refusals():
                    rows = read()
                changed = [r for r in rows if seen.get(r.id) != r]
                if changed or not seen:
                    lines = [
                        f"rollout {r.id} {r.service} {r.version}: {r.state} at {r.stage}, "
                        f"{r.done}/{r.total}" + (f": {r.reason}" if r.reason else "")
                        for r in changed
                    ]
                    show(rollouts_table(rows), "\n".join(lines) if lines else "no rollouts")
                    seen = {r.id: r for r in rows}
                if all(RolloutState(r.state).final for r in rows):
                    return
                time.sleep(LIST_EVERY_SECONDS)
    except KeyboardInterrupt:
        err.print("stopped", highlight=False)
