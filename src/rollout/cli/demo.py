"""`rollout demo`: the whole product in one process on an embedded database and a simulated
fleet: releases (some bad) roll out, bad ones roll back and page, a summary at the end."""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import select

from rollout.api.reads import hygiene_report
from rollout.cli.entry import fleet_or_exit
from rollout.cli.hygiene import print_report, report_json
from rollout.config import Fleet
from rollout.domain.audit import Actor
from rollout.domain.pages import PageState
from rollout.drivers.simulated import SimulatedFleet, simulated_fleet
from rollout.engine.backends import Backends
from rollout.engine.embedded import EmbeddedEngine
from rollout.engine.runtime import Runtime
from rollout.engine.submission import submit
from rollout.json_types import JsonObject
from rollout.observability import setup, tracing
from rollout.paging.responding import Response, respond
from rollout.store.database import migrate, reading, transaction
from rollout.store.models import Delivery, Installation, Page
from rollout.store.queries import all_pages, rollout_counts, upgrade_counts

DEADLINE_S = 55.0
BAD_VERSION = "2.0.0-rc.bad"


def demo_config() -> Path:
    """The demo fleet: config/demo.yaml of the source tree, or the copy in the package."""
    packaged = Path(__file__).resolve().parent.parent / "demo.yaml"
    if packaged.exists():
        return packaged
    for parent in Path(__file__).resolve().parents:
        candidate = parent / "config" / "demo.yaml"
        if candidate.exists():
            return candidate
    raise FileNotFoundError("config/demo.yaml not found")


def _seed(fleet: Fleet, simulator: SimulatedFleet, database_url: str) -> None:
    simulation = fleet.simulation
    if simulation is None:
        return
    for fault in simulation.faults:
        simulator.inject(fault)
    if simulation.initial_version is None:
        return
    pairs = {
        (environment.name, service.name): simulation.initial_version
        for service in fleet.services
        for environment in fleet.environments_of(service)
    }
    simulator.install(pairs)
    now = datetime.now(UTC)
    with transaction(database_url) as session:
        session.add_all(
            Installation(environment=e, service=s, version=v, updated_at=now)
            for (e, s), v in pairs.items()
        )


def _releases(fleet: Fleet) -> list[tuple[str, str]]:
    """One release per service; every fifth service ships a bad one; the first service gets
    a second release at once, which supersedes its first."""
    releases = []
    for index, service in enumerate(fleet.services):
        releases.append((service.name, BAD_VERSION if index % 5 == 3 else "1.1.0"))
    if fleet.services:
        releases.append((fleet.services[0].name, "1.2.0"))
    return releases


def _status_table(upgrades: dict[str, int], rollouts: dict[str, int]) -> Table:
    table = Table(show_header=True, title="Live", title_justify="left")
    table.add_column("rollouts")
    table.add_column("upgrades")
    table.add_row(
        ", ".join(f"{k} {v}" for k, v in sorted(rollouts.items())),
        ", ".join(f"{k} {v}" for k, v in sorted(upgrades.items())),
    )
    return table


class DemoPage(BaseModel):
    """A page the demo raised, as its summary shows it."""

    team: str
    recipient: str | None
    role: str | None
    severity: str
    service: str
    version: str
    environment: str
    stage: str
    gate: str | None
    detail: str
    summary: str


class DemoSummary(BaseModel):
    """What `rollout demo` did (`--json` prints it)."""

    services: int
    environments: int
    stages: list[str]
    releases_submitted: int
    rollouts: dict[str, int]
    upgrades: dict[str, int]
    upgrades_done: int
    rollbacks: int
    pages: list[DemoPage]
    pages_by_team: dict[str, int]
    pager_received: dict[str, int]
    hygiene: JsonObject
    all_final: bool
    elapsed_s: float
    data_dir: str


class Pager:
    """The demo's on-call pager: a webhook receiver on loopback that counts what arrives."""

    def __init__(self) -> None:
        self.received: list[JsonObject] = []
        pager = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                pager.received.append(json.loads(body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/page"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def _answer_pages(database_url: str) -> None:
    """The simulated on-call acknowledges each page once it arrived, as a person would."""
    with transaction(database_url) as session:
        for page in session.scalars(select(Page).where(Page.state == PageState.OPEN)):
            respond(
                session, page, Response.ACKNOWLEDGE, datetime.now(UTC), actor=Actor("demo: on-call")
            )


def _pending_deliveries(database_url: str) -> int:
    with reading(database_url) as session:
        return len(list(session.scalars(select(Delivery.id).where(Delivery.state == "pending"))))


def run_demo(config: Path | None, console: Console | None) -> DemoSummary:
    started = time.monotonic()
    setup("demo", log_format=None)  # with OTEL_TRACES_EXPORTER set: its rollouts traced
    pager = Pager()
    # The teams' channel is a secret by reference: the demo's pager, here.
    os.environ["ROLLOUT_DEMO_PAGER"] = pager.url
    fleet = fleet_or_exit(config or demo_config())
    workdir = Path(tempfile.mkdtemp(prefix="rollout-demo-"))
    database_url = f"sqlite:///{workdir / 'rollout.db'}"
    migrate(database_url)
    simulator_url = f"sqlite:///{workdir / 'simulator.db'}"
    _seed(fleet, simulated_fleet(simulator_url), database_url)

    runtime = Runtime(database_url, Backends.real(simulator_url, database_url))
    with EmbeddedEngine(runtime) as engine:
        submitted = [submit(engine.runtime, fleet, s, v) for s, v in _releases(fleet)]
        total = sum(len(fleet.environments_of(fleet.service(s))) for s, _ in _releases(fleet))
        progress = Progress(
            TextColumn("upgrades settled"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
        )
        bar = progress.add_task("upgrades", total=total)
        live = Live(console=console, refresh_per_second=8) if console else None
        if live:
            live.start()
        try:
            while time.monotonic() - started < DEADLINE_S:
                with reading(database_url) as session:
                    upgrades = upgrade_counts(session)
                    rollouts = rollout_counts(session)
                settled = sum(n for s, n in upgrades.items() if s in _FINAL)
                progress.update(bar, completed=settled)
                if live:
                    live.update(Group(progress, _status_table(upgrades, rollouts)))
                if all(s in _FINAL_ROLLOUT for s in rollouts):
                    break
                time.sleep(0.25)
        finally:
            if live:
                live.stop()
        # Pages go out through the outbox; the on-call acknowledges them; that goes out too.
        deadline = time.monotonic() + 10
        while _pending_deliveries(database_url) and time.monotonic() < deadline:
            time.sleep(0.1)
        _answer_pages(database_url)
        while _pending_deliveries(database_url) and time.monotonic() < deadline:
            time.sleep(0.1)
    tracing.flush()
    until = datetime.now(UTC)
    with reading(database_url) as session:
        hygiene = hygiene_report(session, fleet, until - timedelta(days=1), until)

    with transaction(database_url) as session:
        upgrades = upgrade_counts(session)
        rollouts = rollout_counts(session)
        pages = all_pages(session)
    elapsed = time.monotonic() - started
    summary = DemoSummary(
        services=len(fleet.services),
        environments=len(fleet.environments),
        stages=[s.name for s in fleet.stages],
        releases_submitted=len(submitted),
        rollouts=dict(sorted(rollouts.items())),
        upgrades=dict(sorted(upgrades.items())),
        upgrades_done=upgrades.get("succeeded", 0),
        rollbacks=upgrades.get("rolled_back", 0) + upgrades.get("rollback_failed", 0),
        pages=[
            DemoPage(
                team=p.team,
                recipient=p.recipient,
                role=p.role,
                severity=p.severity,
                service=p.service,
                version=p.version,
                environment=p.environment,
                stage=p.stage,
                gate=p.gate,
                detail=p.detail,
                summary=p.summary,
            )
            for p in pages
        ],
        pages_by_team=dict(Counter(p.team for p in pages)),
        pager_received=dict(Counter(str(body["action"]) for body in pager.received)),
        hygiene=report_json(hygiene),
        all_final=all(s in _FINAL_ROLLOUT for s in rollouts),
        elapsed_s=round(elapsed, 1),
        data_dir=str(workdir),
    )
    pager.server.shutdown()
    if console:
        _print_summary(console, summary)
        console.print("\n[bold]Hygiene[/bold] (the last day)")
        print_report(hygiene)
    return summary


_FINAL = {"succeeded", "rolled_back", "rollback_failed", "cancelled", "superseded"}
_FINAL_ROLLOUT = {"succeeded", "failed", "superseded"}


def _print_summary(console: Console, summary: DemoSummary) -> None:
    console.print(
        f"\n[bold]Demo finished in {summary.elapsed_s}s[/bold]: "
        f"{summary.services} services × {summary.environments} environments in "
        f"{len(summary.stages)} stages ({' → '.join(summary.stages)})",
        highlight=False,
    )
    console.print(
        f"upgrades done: {summary.upgrades_done} · rollbacks: {summary.rollbacks} · "
        f"rollouts: " + ", ".join(f"{k} {v}" for k, v in summary.rollouts.items()),
        highlight=False,
    )
    received = ", ".join(f"{n} {a}" for a, n in summary.pager_received.items()) or "nothing"
    console.print(f"the teams' pager (a webhook) received: {received}", highlight=False)
    table = Table(title="Who was paged, for what", title_justify="left")
    for column in ("on call", "sev", "release", "environment", "what failed"):
        table.add_column(column, overflow="fold")
    for page in summary.pages:
        table.add_row(
            f"{page.recipient} ({page.role}, {page.team})"
            if page.recipient
            else f"{page.team} on-call",
            page.severity,
            f"{page.service} {page.version}",
            f"{page.environment} ({page.stage})",
            page.detail.split(" (http")[0],
        )
    console.print(table)
    console.print(
        f"data kept in {summary.data_dir} (ROLLOUT_DATA_DIR to inspect it)", highlight=False
    )
