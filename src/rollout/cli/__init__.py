"""The `rollout` command: operators query and steer, pipelines submit."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rollout.cli import setting_up, tokens  # noqa: F401  (they register their sub-commands)
from rollout.cli.agent import agent
from rollout.cli.entry import app, main
from rollout.cli.escapes import skip
from rollout.cli.fleet import fleet
from rollout.cli.freezes import freeze, freezes, unfreeze
from rollout.cli.history import history
from rollout.cli.hygiene import hygiene
from rollout.cli.paging import ack, misrouted, not_actionable, oncall, override, pages, resolve
from rollout.cli.processes import api, demo, ticker, worker
from rollout.cli.rollouts import abort, list_, pause, promote, recall, resume, retry, show, submit
from rollout.cli.status import status

# `rollout --help` lists the commands in these panels, in this order.
PANELS: dict[str, list[tuple[str, Callable[..., Any]]]] = {
    "Rollouts": [
        ("submit", submit),
        ("list", list_),
        ("show", show),
        ("status", status),
        ("pause", pause),
        ("resume", resume),
        ("abort", abort),
        ("retry", retry),
        ("promote", promote),
        ("recall", recall),
        ("fleet", fleet),
        ("skip", skip),
        ("history", history),
    ],
    "Freezes": [("freeze", freeze), ("unfreeze", unfreeze), ("freezes", freezes)],
    "Paging": [
        ("oncall", oncall),
        ("pages", pages),
        ("ack", ack),
        ("resolve", resolve),
        ("misrouted", misrouted),
        ("not-actionable", not_actionable),
        ("override", override),
        ("hygiene", hygiene),
    ],
    "Running": [
        ("demo", demo),
        ("api", api),
        ("worker", worker),
        ("ticker", ticker),
        ("agent", agent),
    ],
}
for panel, commands in PANELS.items():
    for name, command in commands:
        app.command(name, rich_help_panel=panel)(command)

__all__ = ["app", "main"]
