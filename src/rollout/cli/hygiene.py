"""The hygiene report: what paging cost each team and gate, and the anti-patterns it shows."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from sqlalchemy import select

from rollout.config import Fleet
from rollout.config.durations import format_duration, parse_duration
from rollout.domain.hygiene import EventFact, HygieneReport, PageFact, Tally, report
from rollout.settings import get_settings

# parse_duration stops at days (the fleet config never needs more); a report window often is
# weeks, so a leading "2w" is read here and the rest handed on.
_WEEKS = re.compile(r"\s*(\d+)\s*w\s*(.*)")


def parse_window(text: str) -> timedelta:
    """A window length: 30d, 12h, 2w, 2w3d; raise ValueError for anything else or zero."""
    weeks = _WEEKS.fullmatch(text)
    if weeks is None:
        window = parse_duration(text)
    else:
        rest = weeks.group(2)
        window = timedelta(weeks=int(weeks.group(1))) + (
            parse_duration(rest) if rest else timedelta(0)
        )
    if window <= timedelta(0):
        raise ValueError(f"the window must be longer than 0s, got {text!r}")
    return window


def _median(tally: Tally) -> str:
    if tally.median_ack_seconds is None:
        return "—"
    return format_duration(timedelta(seconds=round(tally.median_ack_seconds)))


def _rate(part: int, rate: float) -> str:
    return f"{part} ({rate:.0%})"


def _tally_cells(tally: Tally) -> tuple[str, ...]:
    return (
        str(tally.pages),
        str(tally.night_pages),
        f"{tally.acknowledged}/{tally.pages}",
        _median(tally),
        _rate(tally.misrouted, tally.misroute_rate),
        _rate(tally.not_actionable, tally.false_positive_rate),
    )


TALLY_COLUMNS = ("pages", "night", "acked", "median ack", "misrouted", "not actionable")


def _tally_json(tally: Tally) -> dict[str, Any]:
    return {
        "pages": tally.pages,
        "night_pages": tally.night_pages,
        "acknowledged": tally.acknowledged,
        "median_ack_seconds": tally.median_ack_seconds,
        "misrouted": tally.misrouted,
        "misroute_rate": tally.misroute_rate,
        "not_actionable": tally.not_actionable,
        "false_positive_rate": tally.false_positive_rate,
    }


def report_json(result: HygieneReport) -> dict[str, Any]:
    return {
        "since": result.since.isoformat(),
        "until": result.until.isoformat(),
        "night_budget_per_week": result.night_budget_per_week,
        "teams": [
            {
                "team": t.team,
                **_tally_json(t.tally),
                "night_budget": t.night_budget,
                "zone_assumed": t.zone_assumed,
            }
            for t in result.teams
        ],
        "gates": [
            {"service": g.service, "gate": g.gate, **_tally_json(g.tally)} for g in result.gates
        ],
        "findings": [
            {"kind": str(f.kind), "subject": f.subject, "message": f.message}
            for f in result.findings
        ],
        "notes": list(result.notes),
    }


def print_report(result: HygieneReport) -> None:
    from rollout.cli import out

    out.print(
        f"Paging hygiene, {result.since:%Y-%m-%d %H:%M} to {result.until:%Y-%m-%d %H:%M} UTC",
        highlight=False,
    )
    teams = Table(title="Teams", title_justify="left")
    for column in ("team", *TALLY_COLUMNS, "night budget"):
        teams.add_column(column, overflow="fold")
    for t in result.teams:
        teams.add_row(t.team, *_tally_cells(t.tally), f"{t.night_budget:.3g}")
    out.print(teams)
    gates = Table(title="Gates", title_justify="left")
    for column in ("gate", *TALLY_COLUMNS):
        gates.add_column(column, overflow="fold")
    for g in result.gates:
        gates.add_row(g.subject, *_tally_cells(g.tally))
    out.print(gates)
    out.print("Findings", highlight=False)
    for finding in result.findings:
        out.print(f"  {finding.kind}: {finding.message}", highlight=False, soft_wrap=True)
    if not result.findings:
        out.print("  none", highlight=False)
    for note in result.notes:
        out.print(f"note: {note}", highlight=False, soft_wrap=True)


def gather(
    database_url: str,
    fleet: Fleet,
    start: datetime,
    until: datetime,
    team: str | None = None,
    night_budget: float = 2.0,
) -> HygieneReport:
    """The report over the pages written in [start, until), and what people did with them."""
    from rollout.store.database import reading
    from rollout.store.models import Page, PageEvent

    known = [t.name for t in fleet.teams]

    page_query = select(
        Page.id, Page.team, Page.service, Page.gate, Page.created_at, Page.recipient
    ).where(Page.created_at >= start)
    event_query = (
        select(PageEvent.page_id, PageEvent.action, PageEvent.at, PageEvent.misrouted_to)
        .join(Page, Page.id == PageEvent.page_id)
        .where(Page.created_at >= start)
    )
    if team is not None:
        page_query = page_query.where(Page.team == team)
        event_query = event_query.where(Page.team == team)
    with reading(database_url) as session:
        page_rows = list(session.execute(page_query))
        events: dict[int, list[EventFact]] = {}
        for page_id, action, at, misrouted_to in session.execute(event_query):
            events.setdefault(page_id, []).append(EventFact(action, at, misrouted_to))

    facts = [
        PageFact(
            id=row.id,
            team=row.team,
            service=row.service,
            gate=row.gate,
            created_at=row.created_at,
            recipient=row.recipient,
            events=tuple(events.get(row.id, ())),
        )
        for row in page_rows
    ]
    zones = {m.name: m.zone for t in fleet.teams for m in t.members}
    # No recipient (the page went to the whole team): the team's first member stands in.
    team_zones = {t.name: t.members[0].zone for t in fleet.teams if t.members}
    return report(
        facts,
        start,
        until,
        zones,
        night_budget,
        team_zones=team_zones,
        teams=[team] if team is not None else known,
    )


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
    from rollout.cli import _fleet, fail

    try:
        window = parse_window(since)
    except ValueError as error:
        raise fail(f"--since: {error}") from None
    fleet = _fleet(config)
    known = [t.name for t in fleet.teams]
    if team is not None and team not in known:
        raise fail(f"unknown team {team!r} (teams: {', '.join(known) or 'none'})")
    until = datetime.now(UTC)
    result = gather(
        get_settings().resolved_database_url(), fleet, until - window, until, team, night_budget
    )
    if as_json:
        print(json.dumps(report_json(result), indent=2))
    else:
        print_report(result)
