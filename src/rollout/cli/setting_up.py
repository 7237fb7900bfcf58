"""Commands that set up: check the fleet config, create or migrate the schema."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer

from rollout.cli.entry import config_app, db_app, err, out
from rollout.config import ConfigError, load_fleet
from rollout.config.slow_io import longer_than_lease
from rollout.quoting import cut_quoted
from rollout.settings import get_settings


@config_app.command("validate")
def config_validate(
    files: Annotated[list[Path], typer.Argument(help="config files or directories")],
) -> None:
    """Check fleet configs; print every problem with file, line, path and field."""
    failed = False
    for path in files:
        try:
            fleet = load_fleet(path)
        except ConfigError as error:
            failed = True
            for problem in error.problems:
                err.print("[red]error:[/red] ", end="", highlight=False)
                # What a problem quotes of the file is cut: it may be a 10 kB value.
                err.print(cut_quoted(str(problem)), markup=False, highlight=False, soft_wrap=True)
            continue
        lease = timedelta(seconds=get_settings().lease_seconds)
        for warning in fleet.warnings() + longer_than_lease(fleet, lease):
            err.print(
                f"[yellow]warning:[/yellow] {path}: {warning}", highlight=False, soft_wrap=True
            )
        out.print(
            f"{path}: ok ({len(fleet.teams)} teams, {len(fleet.services)} services, "
            f"{len(fleet.stages)} stages, {len(fleet.environments)} environments)",
            highlight=False,
        )
    if failed:
        raise typer.Exit(1)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the schema to the newest version."""
    from rollout.store.database import migrate

    url = get_settings().resolved_database_url()
    migrate(url)
    out.print("database schema is up to date", highlight=False)
