"""I/O slower than the lease happens once, and its answer is recorded (issue 13): a page's
delivery holds its row while it sends, an upgrade's step while its gate measures. The
engine runs in this process (the embedded one, on SQLite and on PostgreSQL) with a 2 s
lease; the receivers and the judge are real HTTP and SMTP servers answering after 3.5 s."""

from __future__ import annotations

import socket
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select

from rollout.config import Fault, load_fleet
from rollout.drivers.simulated import simulated_fleet
from rollout.engine.backends import Backends
from rollout.engine.embedded import EmbeddedEngine
from rollout.engine.runtime import Runtime
from rollout.engine.submission import submit
from rollout.store.database import migrate, transaction
from rollout.store.models import Delivery, Installation, Upgrade
from tests.conftest import FIXTURES, Mailbox, PageReceiver, fresh_database
from tests.waiting import wait_for

pytestmark = pytest.mark.integration

LEASE = timedelta(seconds=2)
SLOW = 3.5  # seconds a receiver takes to answer: longer than the lease, within the timeout
THE_HOOK = "{type: webhook, url: {env: ROLLOUT_TEST_PAGE_HOOK}}"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Both stores: renewing takes row locks on PostgreSQL, where steps lock rows too."""
    if request.param == "postgresql":
        with fresh_database("rollout_lease") as url:
            yield url
        return
    url = f"sqlite:///{tmp_path / 'rollout.db'}"
    migrate(url)
    yield url


@pytest.fixture
def engine(database_url: str, tmp_path: Path) -> Iterator[EmbeddedEngine]:
    """The embedded engine with a 2 s lease on a fresh database; checkout 7.0.0 fails its
    health gate in canary-1 (air-gapped: the team and the NOC are paged)."""
    simulator_url = f"sqlite:///{tmp_path / 'simulator.db'}"
    simulator = simulated_fleet(simulator_url)
    simulator.inject(Fault(service="checkout", version="7.0.0", health="unhealthy"))
    fleet = load_fleet(FIXTURES / "fleet.yaml")
    pairs = {
        (environment.name, service.name): "1.0.0"
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
    runtime = Runtime(database_url, Backends.real(simulator_url, database_url))
    with EmbeddedEngine(runtime) as running:
        running.runtime.lease = LEASE
        yield running


def _fail_checkout(engine: EmbeddedEngine, channel: str, tmp_path: Path) -> list[Delivery]:
    """Submit the failing release to a fleet whose teams page through `channel`; return its
    deliveries once every one is recorded delivered."""
    config = tmp_path / "fleet.yaml"
    config.write_text((FIXTURES / "fleet.yaml").read_text().replace(THE_HOOK, channel))
    submit(engine.runtime, load_fleet(config), "checkout", "7.0.0")

    def all_delivered() -> list[Delivery]:
        with transaction(engine.runtime.database_url) as session:
            rows = list(session.scalars(select(Delivery).order_by(Delivery.id)))
        return rows if len(rows) == 2 and all(d.state == "delivered" for d in rows) else []

    return wait_for(all_delivered, 40, "both pages (the team's, the NOC's) recorded delivered")


def test_a_webhook_slower_than_the_lease_gets_each_page_once(
    engine: EmbeddedEngine,
    page_receiver: PageReceiver,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    page_receiver.reset(delay=SLOW)
    monkeypatch.setenv("ROLLOUT_TEST_PAGE_HOOK", page_receiver.url)
    channel = "{type: webhook, url: {env: ROLLOUT_TEST_PAGE_HOOK}, timeout_s: 10}"
    deliveries = _fail_checkout(engine, channel, tmp_path)

    with page_receiver.lock:
        requests = Counter(page_receiver.requests)
    assert sum(requests.values()) == len(deliveries)  # one request per delivery, none again
    assert set(requests.values()) == {1}
    assert all((d.attempts, d.last_error) == (1, None) for d in deliveries)


def test_an_smtp_server_slower_than_the_lease_gets_each_mail_once(
    engine: EmbeddedEngine, tmp_path: Path
) -> None:
    mailbox = Mailbox(delay=SLOW)
    port = _free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        channel = (
            f"{{type: email, host: 127.0.0.1, port: {port}, from: rollout@example.com, "
            "to: [oncall@example.com], timeout_s: 10}"
        )
        deliveries = _fail_checkout(engine, channel, tmp_path)
    finally:
        controller.stop()

    message_ids = Counter(mail["Message-ID"] for _, _, mail in mailbox.mails)
    assert len(mailbox.mails) == len(deliveries)  # one mail per delivery, none again
    assert set(message_ids.values()) == {1}
    assert all((d.attempts, d.last_error) == (1, None) for d in deliveries)


def test_a_gate_slower_than_the_lease_is_measured_once(
    engine: EmbeddedEngine,
    page_receiver: PageReceiver,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    page_receiver.reset(delay=SLOW)
    monkeypatch.setenv("ROLLOUT_TEST_JUDGE", page_receiver.url)
    fixture = (FIXTURES / "fleet.yaml").read_text()
    ledger = fixture.index("  - name: ledger")
    config = tmp_path / "fleet.yaml"
    config.write_text(
        fixture[:ledger]
        + """  - name: ledger
    team: platform
    environments: {labels: {tier: canary}}
    gates:
      - {name: judge, type: webhook, url_env: ROLLOUT_TEST_JUDGE, timeout: 10s, count: 1}
"""
    )
    submit(engine.runtime, load_fleet(config), "ledger", "7.0.0")

    def finished() -> Upgrade | None:
        with transaction(engine.runtime.database_url) as session:
            upgrade = session.scalars(select(Upgrade)).one()
        return upgrade if upgrade.state in ("succeeded", "rolled_back") else None

    upgrade = wait_for(finished, 40, "the upgrade of ledger in canary-1 to finish")
    assert upgrade.state == "succeeded"
    with page_receiver.lock:
        assert len(page_receiver.requests) == 1  # the judge was asked once, not every lease
