"""Operator commands about freezes: hold an environment or a service, lift it, list them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from rollout.api.schemas import FreezeList, FreezeOut
from rollout.cli.output import Format, OutputOption, emit, snug

Target = Annotated[str, typer.Argument(help="an environment or a service", metavar="ENV|SERVICE")]
Kind = Annotated[
    str | None,
    typer.Option(help="environment or service: only for a name that is both"),
]


def _kind(kind: str | None) -> str | None:
    from rollout.cli.entry import fail

    if kind not in (None, "environment", "service"):
        raise fail(f"unknown --kind {kind!r} (environment or service)")
    return kind


def freeze(
    target: Target,
    until: Annotated[
        str,
        typer.Option(help="ISO 8601 (without a zone: yours) or a duration from now: 2h, 90m, 1d"),
    ],
    reason: Annotated[str, typer.Option(help="why; shown with every upgrade it holds")],
    kind: Kind = None,
    config: Annotated[Path | None, typer.Option("--config", "-c")] = None,
) -> None:
    """Freeze an environment or a service: no new upgrade starts there until the time."""
    from rollout.cli.entry import out, pick_backend, refusals
    from rollout.cli.zone import read_time

    kind = _kind(kind)
    ends = read_time("--until", until)
    with refusals():
        done = pick_backend(config).freeze(target, ends.isoformat(), reason, kind)
    out.print(done.message, highlight=False, soft_wrap=True)


def unfreeze(target: Target, kind: Kind = None) -> None:
    """Lift the freeze of an environment or a service; what it held starts planning at once."""
    from rollout.cli.entry import out, pick_backend, refusals

    kind = _kind(kind)
    with refusals():
        done = pick_backend().unfreeze(target, kind)
    out.print(done.message, highlight=False, soft_wrap=True)


def freezes(output: OutputOption = Format.TABLE) -> None:
    """The freezes in force, the soonest to end first (times in your zone, or --utc)."""
    from rollout.cli.entry import pick_backend, refusals

    with refusals():
        rows = pick_backend().freezes()
    emit(FreezeList(freezes=rows), output, lambda wide: _freezes_table(rows))


def _freezes_table(rows: list[FreezeOut]) -> Table | Text:
    if not rows:
        return Text("nothing is frozen")
    from rollout.cli.zone import shown

    # Kinds and times never break; the target and the reason give way, the reason wrapping
    # between words; a word that still does not fit ends in an ellipsis, never folds.
    untils = [shown(f.until, seconds=True) for f in rows]
    table = Table(title="Freezes", title_justify="left")
    table.add_column("kind", width=snug("kind", [f.kind for f in rows]))
    table.add_column("target", overflow="ellipsis")
    table.add_column("until", width=snug("until", untils))
    table.add_column("reason", overflow="ellipsis")
    for f, until in zip(rows, untils, strict=True):
        table.add_row(f.kind, f.target, until, f.reason)
    return table
