"""Operator commands about people: who is on call, and which pages went out to whom."""

from __future__ import annotations

import getpass
import socket
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from rollout.config import Team
from rollout.engine.outbox import on_call_now
from rollout.engine.submission import paging_spec
from rollout.settings import get_settings
from rollout.store.database import reading, transaction
from rollout.store.models import Override, Page


def _team(name: str, config: Path | None) -> Team:
    from rollout.cli import _fleet, fail

    fleet = _fleet(config)
    try:
        return fleet.team(name)
    except KeyError:
        known = ", ".join(t.name for t in fleet.teams) or "none"
        raise fail(f"unknown team {name!r} (teams: {known})") from None


def oncall(
    team: Annotated[str, typer.Argument(help="the team")],
    at: Annotated[
        datetime | None, typer.Option(help="the instant to ask about (default: now); ISO 8601")
    ] = None,
    config: Annotated[Path | None, typer.Option("--config", "-c")] = None,
) -> None:
    """Who is primary and secondary on call for a team at an instant, and why."""
    from rollout.cli import _ask, _remote, fail, out

    # Shown in the reader's zone; a time typed without a zone is the reader's too.
    when = (at or datetime.now(UTC)).astimezone()
    remote = _remote()
    if remote is not None:
        answer = _ask(remote, "GET", f"/v1/teams/{team}/oncall", params={"at": when.isoformat()})
        lines = [
            (a["role"], a["member"], a["reason"]) for a in (answer["primary"], answer["secondary"])
        ]
    else:
        spec = _team(team, config)
        if spec.rotations is None:
            raise fail(f"team {team!r} has no rotations in the fleet config")
        with reading(get_settings().resolved_database_url()) as session:
            on_call = on_call_now(session, paging_spec(spec), when)
        assert on_call is not None
        lines = [
            (str(a.role), a.member.name, a.reason) for a in (on_call.primary, on_call.secondary)
        ]
    out.print(f"On call for {team} at {when:%Y-%m-%d %H:%M %Z}", highlight=False)
    for role, member, reason in lines:
        out.print(
            f"  {role}: {member} — {reason}",
            highlight=False,
            soft_wrap=True,
        )


def pages(
    team: Annotated[str | None, typer.Option(help="only this team's pages")] = None,
    open_only: Annotated[bool, typer.Option("--open", help="only pages not resolved")] = False,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
) -> None:
    """Pages sent, newest first: to whom, for what, and how each channel took it."""
    from rollout.api.reads import list_pages
    from rollout.cli import out
    from rollout.cli.render import pages_table

    with reading(get_settings().resolved_database_url()) as session:
        rows = list_pages(session, team=team, open_only=open_only, limit=limit)
    out.print(pages_table(rows))


def override(
    team: Annotated[str, typer.Argument(help="the team whose rotation is covered")],
    member: Annotated[str, typer.Option(help="who covers (a member of the team)")],
    starts: Annotated[datetime, typer.Option("--from", help="from when; ISO 8601")],
    ends: Annotated[datetime, typer.Option("--until", help="until when; ISO 8601")],
    role: Annotated[str, typer.Option(help="primary or secondary")] = "primary",
    replaces: Annotated[
        str | None, typer.Option(help="only while this person would be on call")
    ] = None,
    config: Annotated[Path | None, typer.Option("--config", "-c")] = None,
) -> None:
    """Let someone cover a team's rotation for a while: an override wins over the rota."""
    from rollout.cli import fail, out

    spec = _team(team, config)
    members = {m.name: m for m in spec.members}
    if member not in members:
        raise fail(f"{member!r} is not a member of team {team!r} ({', '.join(members)})")
    if replaces is not None and replaces not in members:
        raise fail(f"{replaces!r} is not a member of team {team!r}")
    if role not in ("primary", "secondary"):
        raise fail(f"unknown role {role!r} (primary or secondary)")
    start, end = starts.astimezone(UTC), ends.astimezone(UTC)
    if end <= start:
        raise fail("--until must be after --from")
    with transaction(get_settings().resolved_database_url()) as session:
        row = Override(
            team=team,
            role=role,
            member=member,
            timezone=members[member].timezone,
            replaces=replaces,
            starts_at=start,
            ends_at=end,
            created_at=datetime.now(UTC),
        )
        session.add(row)
        session.flush()
        number = row.id
    out.print(
        f"override {number}: {member} covers {team}'s {role} from {start:%Y-%m-%d %H:%M} to "
        f"{end:%Y-%m-%d %H:%M} UTC" + (f", in place of {replaces}" if replaces else ""),
        highlight=False,
    )


def _answer(
    page_id: int,
    response: str,
    note: str | None = None,
    to_team: str | None = None,
    config: Path | None = None,
) -> None:
    """One response to a page, through the API when ROLLOUT_API_URL is set, else locally."""
    from rollout.cli import _ask, _fleet, _remote, fail, out
    from rollout.engine.responding import Response, ResponseRefused, respond

    remote = _remote()
    if remote is not None:
        if response in ("acknowledge", "resolve"):
            _ask(remote, "POST", f"/v1/pages/{page_id}/{response}")
        else:
            body: dict[str, str] = {"kind": response}
            if to_team:
                body["team"] = to_team
            if note:
                body["note"] = note
            _ask(remote, "POST", f"/v1/pages/{page_id}/feedback", json=body)
        out.print(f"page {page_id}: {response} recorded", highlight=False)
        return
    to_paging = None
    if to_team is not None:
        fleet = _fleet(config)
        try:
            to_paging = paging_spec(fleet.team(to_team))
        except KeyError:
            raise fail(f"unknown team {to_team!r}") from None
    actor = f"cli:{getpass.getuser()}@{socket.gethostname()}"
    with transaction(get_settings().resolved_database_url()) as session:
        page = session.get(Page, page_id)
        if page is None:
            raise fail(f"no page {page_id}")
        try:
            again = respond(
                session,
                page,
                Response(response),
                datetime.now(UTC),
                actor=actor,
                note=note,
                to_team=to_team,
                to_paging=to_paging,
            )
        except ResponseRefused as refused:
            raise fail(str(refused)) from None
        state = page.state
        repaged = (again.id, again.recipient) if again is not None else None
    out.print(f"page {page_id}: {response} recorded; it is {state}", highlight=False)
    if repaged is not None:
        out.print(
            f"team {to_team} paged: page {repaged[0]}"
            + (f", to {repaged[1]}" if repaged[1] else ""),
            highlight=False,
        )


def ack(
    page_id: Annotated[int, typer.Argument(help="the page's id")],
) -> None:
    """Acknowledge a page: someone is on it; escalation stops."""
    _answer(page_id, "acknowledge")


def resolve(
    page_id: Annotated[int, typer.Argument(help="the page's id")],
) -> None:
    """Resolve a page."""
    _answer(page_id, "resolve")


def misrouted(
    page_id: Annotated[int, typer.Argument(help="the page's id")],
    to: Annotated[str, typer.Option("--to", help="the team it belongs to")],
    note: Annotated[str | None, typer.Option(help="why")] = None,
    config: Annotated[Path | None, typer.Option("--config", "-c")] = None,
) -> None:
    """The page belongs to another team: resolve it here, page them, record the misroute."""
    _answer(page_id, "misrouted", note=note, to_team=to, config=config)


def not_actionable(
    page_id: Annotated[int, typer.Argument(help="the page's id")],
    reason: Annotated[str, typer.Option(help="why nothing could be done")],
) -> None:
    """The page was a false positive: resolve it and record why."""
    _answer(page_id, "not_actionable", note=reason)
