"""Operator commands about people: who is on call, and which pages went out to whom."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.text import Text

from rollout.api.schemas import PageList
from rollout.cli.entry import PageId
from rollout.cli.output import Format, OutputOption, emit

if TYPE_CHECKING:
    from rollout.cli.backend import PageResponse


def oncall(
    team: Annotated[str, typer.Argument(help="the team")],
    at: Annotated[
        str,
        typer.Option(help="the instant to ask about: ISO 8601 (without a zone: yours), 2h, now"),
    ] = "now",
    config: Annotated[Path | None, typer.Option("--config", "-c")] = None,
    output: OutputOption = Format.TABLE,
) -> None:
    """Who is primary and secondary on call for a team at an instant, and why."""
    from rollout.cli.entry import pick_backend, refusals
    from rollout.cli.zone import read_time, shown

    when = read_time("--at", at)
    with refusals():
        answer = pick_backend(config).oncall(team, when)
    lines = [(a.role, a.member, a.reason) for a in (answer.primary, answer.secondary)]
    # Wrapped between words; a word wider than the terminal ends in an ellipsis, never folds.
    emit(
        answer,
        output,
        lambda wide: Text(
            "\n".join(
                [f"On call for {team} at {shown(when)}"]
                + [f"  {role}: {member} — {reason}" for role, member, reason in lines]
            ),
            overflow="ellipsis",
        ),
    )


def pages(
    team: Annotated[str | None, typer.Option(help="only this team's pages")] = None,
    open_only: Annotated[bool, typer.Option("--open", help="only pages not resolved")] = False,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    output: OutputOption = Format.TABLE,
) -> None:
    """Pages sent, newest first: to whom, for what, and how each channel took it."""
    from rollout.cli.entry import pick_backend, refusals
    from rollout.cli.render import pages_table

    with refusals():
        rows = pick_backend().pages(team, open_only, limit)
    emit(PageList(pages=rows), output, lambda wide: pages_table(rows))


def override(
    team: Annotated[str, typer.Argument(help="the team whose rotation is covered")],
    member: Annotated[str, typer.Option(help="who covers (a member of the team)")],
    starts: Annotated[
        str, typer.Option("--from", help="from when: ISO 8601 (without a zone: yours), 2h, now")
    ],
    ends: Annotated[
        str, typer.Option("--until", help="until when: ISO 8601 (without a zone: yours), 2h")
    ],
    role: Annotated[str, typer.Option(help="primary or secondary")] = "primary",
    replaces: Annotated[
        str | None, typer.Option(help="only while this person would be on call")
    ] = None,
    config: Annotated[Path | None, typer.Option("--config", "-c")] = None,
) -> None:
    """Let someone cover a team's rotation for a while: an override wins over the rota."""
    from rollout.cli.entry import fail, out, pick_backend, refusals
    from rollout.cli.zone import read_time, shown

    start, end = read_time("--from", starts), read_time("--until", ends)
    if end <= start:
        raise fail("--until must be after --from")
    with refusals():
        done = pick_backend(config).override(team, member, start, end, role, replaces)
    out.print(
        f"override {done.id}: {member} covers {team}'s {role} from {shown(done.starts_at)} to "
        f"{shown(done.ends_at)}" + (f", in place of {replaces}" if replaces else ""),
        highlight=False,
        soft_wrap=True,
    )


def _answer(
    page_id: int,
    response: PageResponse,
    note: str | None = None,
    to_team: str | None = None,
    config: Path | None = None,
) -> None:
    """One response to a page; say what it is now, and whom a misroute paged instead."""
    from rollout.cli.entry import out, pick_backend, refusals

    with refusals():
        answered = pick_backend(config).answer(page_id, response, note, to_team)
    out.print(f"page {page_id}: {response} recorded; it is {answered.state}", highlight=False)
    again = answered.repaged
    if again is not None:
        out.print(
            f"team {to_team} paged: page {again.id}"
            + (f", to {again.recipient}" if again.recipient else ""),
            highlight=False,
        )


def ack(
    page_id: PageId,
) -> None:
    """Acknowledge a page: someone is on it; escalation stops."""
    _answer(page_id, "acknowledge")


def resolve(
    page_id: PageId,
) -> None:
    """Resolve a page."""
    _answer(page_id, "resolve")


def misrouted(
    page_id: PageId,
    to: Annotated[str, typer.Option("--to", help="the team it belongs to")],
    note: Annotated[str | None, typer.Option(help="why")] = None,
    config: Annotated[Path | None, typer.Option("--config", "-c")] = None,
) -> None:
    """The page belongs to another team: resolve it here, page them, record the misroute."""
    _answer(page_id, "misrouted", note=note, to_team=to, config=config)


def not_actionable(
    page_id: PageId,
    reason: Annotated[str, typer.Option(help="why nothing could be done")],
) -> None:
    """The page was a false positive: resolve it and record why."""
    _answer(page_id, "not_actionable", note=reason)
