"""Session fixtures that start real services once: a fresh PostgreSQL database, a Redis
database, and a cluster of real `rollout worker` and `rollout ticker` processes."""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from rollout.config import Fleet, load_fleet
from rollout.drivers.simulated import SimulatedFleet, simulated_fleet
from rollout.engine.backends import Backends
from rollout.engine.runtime import Runtime
from rollout.store.database import transaction
from rollout.store.models import Installation
from tests.waiting import wait_for

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
PG_ADMIN = os.environ.get(
    "ROLLOUT_TEST_PG_ADMIN", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
# A Redis database of the tests' own; two suites running at once need different ones.
REDIS = os.environ.get("ROLLOUT_TEST_REDIS", "redis://127.0.0.1:6379/9")
ROLLOUT = str(Path(sys.executable).with_name("rollout"))


@contextmanager
def fresh_database(prefix: str) -> Iterator[str]:
    """A PostgreSQL database of its own, migrated to the newest schema, dropped afterwards."""
    from rollout.store.database import engine_for, migrate

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"CREATE DATABASE {name}"))
    url = PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    try:
        migrate(url)
        yield url
    finally:
        engine_for(url).dispose()
        with admin.connect() as connection:
            connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A database of its own for this test session."""
    with fresh_database("rollout_test") as url:
        yield url


@pytest.fixture(scope="session")
def redis_url() -> str:
    import redis

    redis.Redis.from_url(REDIS).flushdb()
    return REDIS


@dataclass
class Cluster:
    """Real worker and ticker processes against the real PostgreSQL and Redis."""

    env: dict[str, str]
    database_url: str
    logs: Path
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def rollout(self, *args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
        """Run the CLI as an operator would, against this cluster."""
        return subprocess.run(
            [ROLLOUT, *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=check,
            cwd=ROOT,
        )

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        log = (self.logs / f"{name}.log").open("ab")
        process = subprocess.Popen(
            [ROLLOUT, *args],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            start_new_session=True,
        )
        self.processes.append(process)
        return process

    def log(self, name: str) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


class PageReceiver:
    """A team's webhook: records every page it accepts; can be told to fail for a while."""

    def __init__(self) -> None:
        self.accepted: list[dict[str, Any]] = []
        self.keys: list[str] = []  # the Idempotency-Key of each accepted page, in step
        self.answers: Counter[int] = Counter()  # every answer given, by status
        self.requests: list[str] = []  # the Idempotency-Key of every request, answered or not
        self.refusals: list[tuple[int, dict[str, str]]] = []  # answers to give first
        self.delay = 0.0  # seconds each request waits before its answer: a slow receiver
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                with receiver.lock:
                    receiver.requests.append(self.headers.get("Idempotency-Key", ""))
                    delay = receiver.delay
                time.sleep(delay)
                with receiver.lock:
                    status, headers = receiver.refusals.pop(0) if receiver.refusals else (200, {})
                    if status == 200:
                        receiver.accepted.append(json.loads(body))
                        receiver.keys.append(self.headers.get("Idempotency-Key", ""))
                    receiver.answers[status] += 1
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def reset(
        self, refusals: list[tuple[int, dict[str, str]]] | None = None, delay: float = 0.0
    ) -> None:
        # Each test's database restarts its ids, so dedup keys repeat across tests.
        with self.lock:
            self.accepted.clear()
            self.keys.clear()
            self.answers.clear()
            self.requests.clear()
            self.refusals = list(refusals or [])
            self.delay = delay

    def pages(self, dedup_key: str) -> list[dict[str, Any]]:
        with self.lock:
            return [p for p in self.accepted if p.get("dedup_key") == dedup_key]


class Mailbox:
    """An aiosmtpd handler that keeps every mail it accepts; can be told to answer slowly."""

    def __init__(self, delay: float = 0.0) -> None:
        self.mails: list[tuple[str, list[str], EmailMessage]] = []
        self.delay = delay  # seconds before it answers a mail's data

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        await asyncio.sleep(self.delay)
        mail = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        assert isinstance(mail, EmailMessage)
        self.mails.append((envelope.mail_from, list(envelope.rcpt_tos), mail))
        return "250 Message accepted for delivery"


@pytest.fixture(scope="session")
def page_receiver() -> Iterator[PageReceiver]:
    receiver = PageReceiver()
    yield receiver
    receiver.server.shutdown()


@pytest.fixture(scope="session")
def cluster(
    postgres_url: str,
    redis_url: str,
    page_receiver: PageReceiver,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Cluster]:
    simulated_fleet(postgres_url)  # its tables exist before any worker asks
    logs = tmp_path_factory.mktemp("cluster-logs")
    env = {
        **os.environ,
        "ROLLOUT_DATABASE_URL": postgres_url,
        "ROLLOUT_SIMULATOR_URL": postgres_url,
        "ROLLOUT_BROKER_URL": redis_url,
        "ROLLOUT_CONFIG": str(FIXTURES / "fleet.yaml"),
        "ROLLOUT_LEASE_SECONDS": "5",
        # The test fleet's teams page through this webhook (a secret, so by reference).
        "ROLLOUT_TEST_PAGE_HOOK": page_receiver.url,
        "ROLLOUT_TICK_SECONDS": "0.05",
        "COLUMNS": "200",
    }
    cluster = Cluster(env, postgres_url, logs)
    try:
        cluster.start("worker", "worker", "--concurrency", "2")
        cluster.start("ticker", "ticker")
        wait_for(lambda: "ready." in cluster.log("worker"), 60, "the Celery worker to be ready")
        yield cluster
    finally:
        cluster.stop()


TABLES = (
    "pages, measurements, upgrades, rollouts, releases, installations, agent_deployments, freezes"
)


@pytest.fixture
def fleet() -> Fleet:
    return load_fleet(FIXTURES / "fleet.yaml")


@pytest.fixture
def simulator(cluster: Cluster, fleet: Fleet) -> Iterator[SimulatedFleet]:
    """The fleet starts clean, every service on 1.0.0 everywhere, known to the engine too."""

    def truncate() -> bool:
        # The ticker may hold row locks on these tables at this very moment; TRUNCATE then
        # deadlocks with it and PostgreSQL aborts one of the two: try again.
        try:
            with transaction(cluster.database_url) as session:
                session.execute(text(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE"))
        except OperationalError:
            return False
        return True

    wait_for(truncate, 30, "a clean database")
    simulator = simulated_fleet(cluster.database_url)
    simulator.reset()
    pairs = {
        (environment.name, service.name): "1.0.0"
        for service in fleet.services
        for environment in fleet.environments_of(service)
    }
    simulator.install(pairs)
    now = datetime.now(UTC)
    with transaction(cluster.database_url) as session:
        session.add_all(
            Installation(environment=e, service=s, version=v, updated_at=now)
            for (e, s), v in pairs.items()
        )
    yield simulator


@pytest.fixture
def runtime(cluster: Cluster) -> Runtime:
    """Submits as the CLI does: no broker in this process, the ticker picks work up."""
    url = cluster.database_url
    return Runtime(url, Backends.real(url, url))
