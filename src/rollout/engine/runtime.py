"""What every engine operation needs: the database, the backends it acts through, where
nudges go, the lease and a clock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from rollout.engine.backends import Backends
from rollout.engine.dispatch import Dispatcher, NoDispatch
from rollout.settings import Settings, get_settings


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Runtime:
    database_url: str
    # None by default: a process that only writes rows (the API, the CLI) acts on nothing.
    backends: Backends = field(default_factory=Backends)
    dispatcher: Dispatcher = field(default_factory=NoDispatch)
    # How long a claimed step may run before the ticker hands the row to another worker.
    lease: timedelta = timedelta(seconds=30)
    claim_batch: int = 500
    now: Callable[[], datetime] = utcnow

    def claimed_until(self, now: datetime) -> datetime:
        """The due time of a row just claimed: the lease if a nudge goes out, else now, so
        the ticker picks it up on its next tick."""
        return now + self.lease if self.dispatcher.delivers else now

    @classmethod
    def from_settings(
        cls, dispatcher: Dispatcher | None = None, settings: Settings | None = None
    ) -> Runtime:
        settings = settings or get_settings()
        database_url = settings.resolved_database_url()
        return cls(
            database_url=database_url,
            backends=Backends.real(settings.resolved_simulator_url(), database_url),
            dispatcher=dispatcher or NoDispatch(),
            lease=timedelta(seconds=settings.lease_seconds),
            claim_batch=settings.claim_batch,
        )
