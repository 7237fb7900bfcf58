"""Operator commands about freezes: hold an environment or a service, lift it, list them."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from rollout.settings import get_settings

Target = Annotated[str, typer.Argument(help="an environment or a service", metavar="ENV|SERVICE")]
Kind = Annotated[
    str | None,
    typer.Option(help="environment or service: only for a name that is both"),
]


def _kind(kind: str | None) -> str | None:
    from rollout.cli import fail

    if kind not in (None, "environment", "service"):
        raise fail(f"unknown --kind {kind!r} (environment or service)")
    return kind


def freeze(
    target: Target,
    until: Annotated[
        str, typer.Option(help="an ISO time (UTC without a zone) or a duration: 2h, 90m, 1d")
    ],
    reason: Annotated[str, typer.Option(help="why; shown with every upgrade it holds")],
    kind: Kind = None,
    config: Annotated[Path | None, typer.Option("--config", "-c")] = None,
) -> None:
    """Freeze an environment or a service: no new upgrade starts there until the time."""
    from rollout.cli import _ask, _fleet, _remote, fail, out

    kind = _kind(kind)
    remote = _remote()
    if remote is not None:
        body: dict[str, Any] = {"target": target, "until": until, "reason": reason}
        if kind is not None:
            body["kind"] = kind
        message = _ask(remote, "POST", "/v1/freezes", json=body)["message"]
    else:
        from rollout.engine.freezes import FreezeRefused
        from rollout.engine.freezes import freeze as freeze_target
        from rollout.engine.runtime import Runtime

        fleet = _fleet(config)
        try:
            done = freeze_target(Runtime.from_settings(), fleet, target, until, reason, kind)
        except FreezeRefused as error:
            raise fail(str(error)) from None
        message = done.message
    out.print(message, highlight=False, soft_wrap=True)


def unfreeze(target: Target, kind: Kind = None) -> None:
    """Lift the freeze of an environment or a service; what it held starts planning at once."""
    from rollout.cli import _ask, _remote, out

    kind = _kind(kind)
    remote = _remote()
    if remote is not None:
        answer = _ask(remote, "DELETE", f"/v1/freezes/{target}", params={"kind": kind})
        message = answer["message"]
    else:
        from rollout.engine.freezes import unfreeze as unfreeze_target
        from rollout.engine.runtime import Runtime

        message = unfreeze_target(Runtime.from_settings(), target, kind).message
    out.print(message, highlight=False, soft_wrap=True)


def freezes() -> None:
    """The freezes in force, the soonest to end first (times in your zone)."""
    from rollout.cli import _ask, _remote, out

    remote = _remote()
    rows: list[tuple[str, str, datetime, str]]
    if remote is not None:
        answer = _ask(remote, "GET", "/v1/freezes")["freezes"]
        rows = [
            (f["kind"], f["target"], datetime.fromisoformat(f["until"]), f["reason"])
            for f in answer
        ]
    else:
        from rollout.engine.freezes import active_freezes
        from rollout.store.database import reading

        with reading(get_settings().resolved_database_url()) as session:
            found = active_freezes(session, datetime.now(UTC))
        rows = [(f.kind, f.target, f.until, f.reason) for f in found]
    if not rows:
        out.print("nothing is frozen", highlight=False)
        return
    table = Table(title="Freezes", title_justify="left")
    for column in ("kind", "target", "until", "reason"):
        table.add_column(column)
    for kind, target, until, reason in rows:
        table.add_row(kind, target, f"{until.astimezone():%Y-%m-%d %H:%M:%S %Z}", reason)
    out.print(table)
