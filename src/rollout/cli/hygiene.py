"""The hygiene report: what paging cost each team and gate, and the anti-patterns it shows."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from rollout.api.schemas import HygieneGate, HygieneOut, HygieneTeam
from rollout.durations import format_duration, parse_window
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

    out.print(
        f"Paging hygiene, {result.since:%Y-%m-%d %H:%M} to {result.until:%Y-%m-%d %H:%M} UTC",
        highlight=False,
    )
    teams = Table(title="Teams", title_justify="left")
    for column in ("team", *TALLY_COLUMNS, "night budget"):
        teams.add_column(column, overflow="fold")
    for t in result.teams:
        teams.add_row(t.team, *_tally_cells(t), f"{t.night_budget:.3g}")
    out.print(teams)
    gates = Table(title="Gates", title_justify="left")
    for column in ("gate", *TALLY_COLUMNS):
        gates.add_column(column, overflow="fold")
    for g in result.gates:
        gates.add_row(f"{g.service}/{g.gate}", *_tally_cells(g))
    out.print(gates)
    out.print("Findings", highlight=False)
    for finding in result.findings:
        out.print(f"  {finding.kind}: {finding.message}", highlight=False, soft_wrap=True)
    if not result.findings:
        out.print("  none", highlight=False)
    for note in result.notes:
        out.print(f"note: {note}", highlight=False, soft_wrap=True)


def hygiene(
    since: Annotated[str, typer.Option(help="how far back to look: e.g. 30d, 12h, 2w")] = "30d",
    team: Annotated[str | None, typer.Option(help="only this team's pages")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
    config: Annotated[Path | None, typer.Option("--config", "-c")] = None,
    night_budget: Annotated[
        float, typer.Option(min=0, help="night pages a team may get per week")
    ] = 2.0,
) -> None:
    """Per team and gate: pages, night pages, time to acknowledge, misroutes, false positives."""
    from rollout.cli.entry import fail, pick_backend, refusals

    try:
        parse_window(since)
    except ValueError as error:
        raise fail(f"--since: {error}") from None
    with refusals():
        result = pick_backend(config).hygiene(since, team, night_budget)
    if as_json:
        print(json.dumps(report_json(result), indent=2))
    else:
        print_report(result)
