"""The hygiene report: what paging cost each team and gate, and the anti-patterns it shows."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from rollout.api.schemas import HygieneGate, HygieneOut, HygieneTeam
from rollout.cli.output import Format, OutputOption, emit, snug
from rollout.durations import format_duration
from rollout.json_types import JsonObject


def _median(tally: HygieneTeam | HygieneGate) -> str:
    if tally.median_ack_seconds is None:
        return "—"
    return format_duration(timedelta(seconds=round(tally.median_ack_seconds)))


def _rate(part: int, rate: float) -> str:
    return f"{part} ({rate:.0%})"


def _tally_cells(tally: HygieneTeam | HygieneGate) -> tuple[str, ...]:
    return (
        str(tally.pages),
        str(tally.night_pages),
        f"{tally.acknowledged}/{tally.pages}",
        _median(tally),
        _rate(tally.misrouted, tally.misroute_rate),
        _rate(tally.not_actionable, tally.false_positive_rate),
    )


TALLY_COLUMNS = ("pages", "night", "acked", "median ack", "misrouted", "not actionable")


def report_json(result: HygieneOut) -> JsonObject:
    """The report as `--json` prints it: times in ISO 8601 with their offset."""
    return {
        **result.model_dump(),
        "since": result.since.isoformat(),
        "until": result.until.isoformat(),
    }


def print_report(result: HygieneOut) -> None:
    from rollout.cli.entry import out

    out.print(report_tables(result))


def _tally_table(title: str, name: str, rows: list[tuple[str, ...]], *last: str) -> Table:
    """A name column that gives way (an ellipsis, never a fold mid-word), then the tallies,
    each as wide as its values, their headers wrapping between words."""
    table = Table(title=title, title_justify="left")
    table.add_column(name, overflow="ellipsis")
    for index, column in enumerate((*TALLY_COLUMNS, *last), start=1):
        table.add_column(column, width=snug(column, [row[index] for row in rows]))
    for row in rows:
        table.add_row(*row)
    return table


def report_tables(result: HygieneOut) -> Group:
    """The report for people: a header, a table of teams and one of gates, then findings."""
    from rollout.cli.zone import shown

    parts: list[RenderableType] = [
        Text(f"Paging hygiene, {shown(result.since)} to {shown(result.until)}")
    ]
    teams = [(t.team, *_tally_cells(t), f"{t.night_budget:.3g}") for t in result.teams]
    parts.append(_tally_table("Teams", "team", teams, "night budget"))
    gates = [(f"{g.service}/{g.gate}", *_tally_cells(g)) for g in result.gates]
    parts.append(_tally_table("Gates", "gate", gates))
    parts.append(Text("Findings"))
    parts.extend(
        Text(f"  {finding.kind}: {finding.message}", overflow="ellipsis")
        for finding in result.findings
    )
    if not result.findings:
        parts.append(Text("  none"))
    parts.extend(Text(f"note: {note}") for note in result.notes)
    return Group(*parts)


def hygiene(
    since: Annotated[
        str, typer.Option(help="how far back to look: 30d, 12h, 2w, or a time (ISO 8601)")
    ] = "30d",
    team: Annotated[str | None, typer.Option(help="only this team's pages")] = None,
    output: OutputOption = Format.TABLE,
    as_json: Annotated[bool, typer.Option("--json", help="the same as -o json")] = False,
    config: Annotated[Path | None, typer.Option("--config", "-c")] = None,
    night_budget: Annotated[
        float, typer.Option(min=0, help="night pages a team may get per week")
    ] = 2.0,
) -> None:
    """Per team and gate: pages, night pages, time to acknowledge, misroutes, false positives."""
    from rollout.cli.entry import pick_backend, refusals
    from rollout.cli.zone import read_since, window_text

    window = read_since("--since", since)
    with refusals():
        result = pick_backend(config).hygiene(window_text(since, window), team, night_budget)
    emit(result, Format.JSON if as_json else output, lambda wide: report_tables(result))
