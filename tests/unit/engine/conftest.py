"""The engine in one process on SQLite, its I/O replaced by rollout.testing's stubs: an
in-memory fleet, a scripted gate, a recording channel."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from rollout.config import Fleet
from rollout.domain.states import RolloutState
from rollout.engine.embedded import EmbeddedEngine
from rollout.engine.runtime import Runtime
from rollout.engine.submission import Submitted, submit
from rollout.store.database import engine_for, migrate, reading, transaction
from rollout.store.models import Installation, Page, Rollout, Upgrade
from rollout.testing import InMemoryDriver, RecordingChannel, ScriptedGate, stub_backends
from tests.waiting import wait_for

ENVIRONMENTS = {"canary-1": "canary", "staging-1": "staging", "prod-1": "production"}
SERVICES = ("checkout", "billing-db")


def fleet_config(**service: Any) -> Fleet:
    """Three stages of one environment each; checkout gated by one HTTP gate (scripted
    here) and owned by payments, whose pages escalate after a second."""
    members = [{"name": n, "timezone": "UTC"} for n in ("Ada", "Ben", "Cy")]
    rota = {"shift": "1d", "start": "2026-01-05", "timezone": "UTC"}
    gate = {
        "name": "health",
        "type": "http",
        "url": "http://{environment}.example/{service}/health",
        "success_condition": "error_rate < 0.05",
        "interval": "0.02s",
        "count": 1,
    }
    return Fleet.model_validate(
        {
            "teams": [
                {
                    "name": "payments",
                    "members": members,
                    "rotations": {
                        "primary": {"members": ["Ada", "Ben", "Cy"], **rota},
                        "secondary": {"members": ["Ben", "Cy", "Ada"], **rota},
                    },
                    "escalation": [{"to": "secondary", "after": "1s"}],
                    "channels": [{"type": "webhook", "url": {"env": "ROLLOUT_UNIT_HOOK"}}],
                }
            ],
            "stages": [{"name": "canary"}, {"name": "staging"}, {"name": "production"}],
            "environments": [
                {
                    "name": name,
                    "stage": stage,
                    "driver": {"type": "simulated", "poll_interval": "0.02s"},
                }
                for name, stage in ENVIRONMENTS.items()
            ],
            "services": [
                {"name": "checkout", "team": "payments", "gates": [gate], **service},
                {"name": "billing-db", "team": "payments"},
            ],
        }
    )


@dataclass
class World:
    """One fleet, its database and an engine running over the stubs."""

    fleet: Fleet
    runtime: Runtime
    driver: InMemoryDriver
    gate: ScriptedGate
    channel: RecordingChannel

    def submit(self, version: str, service: str = "checkout") -> Submitted:
        return submit(self.runtime, self.fleet, service, version)

    def rollout(self, rollout_id: int) -> Rollout:
        with reading(self.runtime.database_url) as session:
            rollout = session.get(Rollout, rollout_id)
            assert rollout is not None
            return rollout

    def reaches(self, rollout_id: int, *states: RolloutState, timeout: float = 30) -> Rollout:
        wanted = set(states)
        return wait_for(
            lambda: (r := self.rollout(rollout_id)).state in wanted and r,
            timeout,
            f"rollout {rollout_id} to be {' or '.join(wanted)}",
        )

    def upgrades(self, rollout_id: int) -> dict[str, Upgrade]:
        with reading(self.runtime.database_url) as session:
            rows = session.scalars(select(Upgrade).where(Upgrade.rollout_id == rollout_id))
            return {u.environment: u for u in rows}

    def pages(self) -> list[Page]:
        with reading(self.runtime.database_url) as session:
            return list(session.scalars(select(Page).order_by(Page.id)))

    def installations(self, service: str = "checkout") -> dict[str, str]:
        with reading(self.runtime.database_url) as session:
            rows = session.scalars(select(Installation).where(Installation.service == service))
            return {i.environment: i.version for i in rows}

    def running(self, service: str = "checkout") -> dict[str, str]:
        return {e: v for (e, s), v in self.driver.installed.items() if s == service}


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    monkeypatch.setenv("ROLLOUT_UNIT_HOOK", "http://hooks.example/payments")
    url = f"sqlite:///{tmp_path / 'rollout.db'}"
    migrate(url)
    start = {(env, service): "1.0.0" for env in ENVIRONMENTS for service in SERVICES}
    now = datetime.now(UTC)
    with transaction(url) as session:
        session.add_all(
            Installation(environment=e, service=s, version=v, updated_at=now)
            for (e, s), v in start.items()
        )
    driver, gate, channel = InMemoryDriver(start), ScriptedGate(), RecordingChannel()
    runtime = Runtime(url, stub_backends(driver, gate, channel))
    with EmbeddedEngine(runtime, threads=2, tick_seconds=0.01):
        yield World(fleet_config(), runtime, driver, gate, channel)
    engine_for(url).dispose()
    engine_for(url, writer=False).dispose()
