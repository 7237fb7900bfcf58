"""The simulated fleet: environments, installed versions and health kept in a database of
their own, shared by every worker and surviving any one's crash, with failure injection."""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

import httpx
from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    DateTime,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    and_,
    insert,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from rollout.config import Fault
from rollout.drivers import DeployPhase, DeployRequest, DeployStatus, Health
from rollout.store.database import connection, engine_for

metadata = MetaData()

installed = Table(
    "sim_installed",
    metadata,
    Column("environment", String(63), primary_key=True),
    Column("service", String(63), primary_key=True),
    Column("version", String(64), nullable=False),
)

deploys = Table(
    "sim_deploys",
    metadata,
    Column("key", String(100), primary_key=True),
    Column("environment", String(63), nullable=False),
    Column("service", String(63), nullable=False),
    Column("version", String(64)),
    Column("calls", Integer, nullable=False),  # how often the engine asked
    Column("effects", Integer, nullable=False),  # how often it took effect: must stay <= 1
    Column("ready_at", DateTime, nullable=False),
    Column("fails", Boolean, nullable=False),
)

faults = Table(
    "sim_faults",
    metadata,
    Column("service", String(63), primary_key=True),  # or "*"
    Column("version", String(64), primary_key=True),  # or "*"
    Column("health", String(16), nullable=False),
    Column("flaky_rate", Float, nullable=False),
    Column("error_rate", Float, nullable=False),
    Column("deploy_seconds", Float, nullable=False),
    Column("deploy_fails", Boolean, nullable=False),
)


_HEALTHY = Fault()


def _now() -> datetime:
    # Naive UTC: this database is the fleet's, not the engine's, and keeps it simple.
    return datetime.now(UTC).replace(tzinfo=None)


class SimulatedFleet:
    """The fleet's own state; every method is one short transaction."""

    def __init__(self, url: str) -> None:
        self.url = url
        metadata.create_all(engine_for(url))

    # -- set-up, for the demo, tests and benchmarks ------------------------------------
    def reset(self) -> None:
        with connection(self.url) as db:
            for table in (installed, deploys, faults):
                db.execute(table.delete())

    def install(self, pairs: dict[tuple[str, str], str]) -> None:
        """Put versions in place directly, as if installed before the engine knew them."""
        with connection(self.url) as db:
            for (environment, service), version in pairs.items():
                _put(db, environment, service, version)

    def inject(self, fault: Fault) -> None:
        with connection(self.url) as db:
            db.execute(
                faults.delete().where(
                    and_(faults.c.service == fault.service, faults.c.version == fault.version)
                )
            )
            db.execute(insert(faults).values(**fault.model_dump()))

    # -- what the engine calls -----------------------------------------------------------
    def start(self, request: DeployRequest) -> None:
        with connection(self.url) as db:
            fault = _pick(_rules(db), request.service, request.version)
            # One statement whether or not the key was seen: asking again only counts a call.
            row = db.execute(
                _upsert(db)(deploys)
                .values(
                    key=request.key,
                    environment=request.environment,
                    service=request.service,
                    version=request.version,
                    calls=1,
                    effects=0,
                    ready_at=_now() + timedelta(seconds=fault.deploy_seconds),
                    fails=fault.deploy_fails and request.version is not None,
                )
                .on_conflict_do_update(
                    index_elements=[deploys.c.key], set_={"calls": deploys.c.calls + 1}
                )
                .returning(*deploys.c)
            ).one()
            _settle(db, request.key, row=row)

    def start_many(self, requests: Sequence[DeployRequest]) -> None:
        """`start` for many deploys in one transaction: one read of the fault rules, one
        upsert, one settling update."""
        unique = list({request.key: request for request in requests}.values())
        if not unique:
            return
        with connection(self.url) as db:
            rules = _rules(db)
            now = _now()
            values = []
            for request in unique:
                fault = _pick(rules, request.service, request.version)
                values.append(
                    {
                        "key": request.key,
                        "environment": request.environment,
                        "service": request.service,
                        "version": request.version,
                        "calls": 1,
                        "effects": 0,
                        "ready_at": now + timedelta(seconds=fault.deploy_seconds),
                        "fails": fault.deploy_fails and request.version is not None,
                    }
                )
            stmt = _upsert(db)(deploys).values(values)
            rows = db.execute(
                stmt.on_conflict_do_update(
                    index_elements=[deploys.c.key], set_={"calls": deploys.c.calls + 1}
                ).returning(*deploys.c)
            ).all()
            _settle_many(db, rows, _now())

    def status(self, key: str) -> DeployStatus:
        return self.statuses([key])[key]

    def statuses(self, keys: Sequence[str]) -> dict[str, DeployStatus]:
        """The status of many deploys, settling the finished ones, in one transaction."""
        # One clock reading for settling and answering: a deploy that became ready in between
        # would be reported done without having taken effect.
        now = _now()
        with connection(self.url) as db:
            rows = db.execute(select(deploys).where(deploys.c.key.in_(list(keys)))).all()
            _settle_many(db, rows, now)
        found = {row.key: row for row in rows}
        return {key: _status(key, found.get(key), now) for key in keys}

    def probe(self, environment: str, service: str) -> tuple[str | None, Fault]:
        return self.probe_many([(environment, service)])[(environment, service)]

    def probe_many(
        self, places: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], tuple[str | None, Fault]]:
        """What a health probe of each (environment, service) finds, in one transaction: the
        installed version and the fault rule that applies to it."""
        wanted = list(dict.fromkeys(places))
        with connection(self.url) as db:
            rows = db.execute(
                select(installed.c.environment, installed.c.service, installed.c.version).where(
                    tuple_(installed.c.environment, installed.c.service).in_(wanted)
                )
            ).all()
            rules = _rules(db) if rows else []
        found = {(row.environment, row.service): row.version for row in rows}
        answers: dict[tuple[str, str], tuple[str | None, Fault]] = {}
        for environment, service in wanted:
            version = found.get((environment, service))
            answers[(environment, service)] = (version, _pick(rules, service, version))
        return answers

    def health(self, environment: str, service: str) -> Health:
        version, fault = self.probe(environment, service)
        if version is None:
            return Health.UNKNOWN
        if fault.health == "flaky" and random.random() < fault.flaky_rate:
            return Health.UNKNOWN
        return Health.UNHEALTHY if fault.health == "unhealthy" else Health.HEALTHY

    # -- what tests read -----------------------------------------------------------------
    def installed_versions(self) -> dict[tuple[str, str], str]:
        with connection(self.url) as db:
            rows = db.execute(select(installed)).all()
        return {(r.environment, r.service): r.version for r in rows}

    def deploy_records(self) -> dict[str, tuple[int, int]]:
        """Idempotency key -> (calls, effects)."""
        with connection(self.url) as db:
            rows = db.execute(select(deploys.c.key, deploys.c.calls, deploys.c.effects)).all()
        return {r.key: (r.calls, r.effects) for r in rows}


def _upsert(db: Connection) -> Any:
    """The dialect's INSERT that knows ON CONFLICT (PostgreSQL's and SQLite's alike)."""
    if db.dialect.name == "postgresql":
        return postgresql.insert
    return sqlite.insert


def _put(db: Connection, environment: str, service: str, version: str | None) -> None:
    if version is None:
        db.execute(
            installed.delete().where(
                and_(installed.c.environment == environment, installed.c.service == service)
            )
        )
        return
    db.execute(
        _upsert(db)(installed)
        .values(environment=environment, service=service, version=version)
        .on_conflict_do_update(
            index_elements=[installed.c.environment, installed.c.service],
            set_={"version": version},
        )
    )


def _settle(db: Connection, key: str, now: datetime | None = None, row: Any = None) -> Any:
    """Apply a finished deploy to the fleet, exactly once whoever asks first (`row`: the
    deploy's row, when the caller just wrote it)."""
    if row is None:
        row = db.execute(select(deploys).where(deploys.c.key == key)).one_or_none()
    if row is None or row.effects or row.fails or row.ready_at > (now or _now()):
        return row
    applied = db.execute(
        update(deploys).where(and_(deploys.c.key == key, deploys.c.effects == 0)).values(effects=1)
    )
    if applied.rowcount == 1:
        _put(db, row.environment, row.service, row.version)
    return row


def _settle_many(db: Connection, rows: Sequence[Any], now: datetime) -> None:
    """`_settle` for many deploys: one update marks the finished ones applied, and only the
    ones this update marked are put in place, so each takes effect once whoever asks."""
    done = [row.key for row in rows if not row.effects and not row.fails and row.ready_at <= now]
    if not done:
        return
    applied = db.execute(
        update(deploys)
        .where(and_(deploys.c.key.in_(done), deploys.c.effects == 0))
        .values(effects=1)
        .returning(deploys.c.environment, deploys.c.service, deploys.c.version)
    ).all()
    # The last deploy of a place wins, as it would one statement after another.
    versions = {(row.environment, row.service): row.version for row in applied}
    gone = [place for place, version in versions.items() if version is None]
    if gone:
        db.execute(
            installed.delete().where(tuple_(installed.c.environment, installed.c.service).in_(gone))
        )
    put = [
        {"environment": environment, "service": service, "version": version}
        for (environment, service), version in versions.items()
        if version is not None
    ]
    if put:
        stmt = _upsert(db)(installed).values(put)
        db.execute(
            stmt.on_conflict_do_update(
                index_elements=[installed.c.environment, installed.c.service],
                set_={"version": stmt.excluded.version},
            )
        )


def _status(key: str, row: Any, now: datetime) -> DeployStatus:
    if row is None:
        return DeployStatus(DeployPhase.UNKNOWN, f"no deploy {key}")
    if row.ready_at > now:
        return DeployStatus(DeployPhase.RUNNING, "deploying")
    if row.fails:
        return DeployStatus(DeployPhase.FAILED, f"deploy of {row.version} failed")
    return DeployStatus(DeployPhase.SUCCEEDED, f"{row.version} installed")


def _pick(rules: list[Fault], service: str, version: str | None) -> Fault:
    """The rule for a service's version among all rules: the most specific wins."""
    if version is None:
        return _HEALTHY
    matching = [rule for rule in rules if rule.matches(service, version)]
    return max(matching, key=Fault.specificity, default=_HEALTHY)


def _rules(db: Connection) -> list[Fault]:
    return [Fault.model_validate(dict(row._mapping)) for row in db.execute(select(faults))]


class SimulatedDriver:
    """The driver port over the simulated fleet; its HTTP probes never touch a network."""

    def __init__(self, fleet: SimulatedFleet) -> None:
        self.fleet = fleet
        self._transport = httpx.MockTransport(self._answering({}))

    def start(self, request: DeployRequest) -> None:
        self.fleet.start(request)

    def start_many(self, requests: Sequence[DeployRequest]) -> None:
        self.fleet.start_many(requests)

    def status(self, key: str) -> DeployStatus:
        return self.fleet.status(key)

    def statuses(self, keys: Sequence[str]) -> dict[str, DeployStatus]:
        return self.fleet.statuses(keys)

    def health(self, environment: str, service: str) -> Health:
        return self.fleet.health(environment, service)

    def transport(self) -> httpx.BaseTransport:
        return self._transport

    def probing(self, places: Sequence[tuple[str, str]]) -> httpx.BaseTransport:
        """A transport that answers the health probes of these places from one reading of
        the fleet (a batch's gates, measured together); other probes read it on their own."""
        return httpx.MockTransport(self._answering(self.fleet.probe_many(places)))

    def _answering(
        self, found: Mapping[tuple[str, str], tuple[str | None, Fault]]
    ) -> Callable[[httpx.Request], httpx.Response]:
        """The fake health endpoint http://{environment}.sim/{service}/health, answering from
        `found` where it holds the place, else from the fleet."""

        def answer(request: httpx.Request) -> httpx.Response:
            parts = request.url.path.strip("/").split("/")
            if len(parts) != 2 or parts[1] != "health":
                return httpx.Response(404, json={"error": "no such endpoint"})
            environment, service = request.url.host.removesuffix(".sim"), parts[0]
            version, fault = found.get((environment, service)) or self.fleet.probe(
                environment, service
            )
            if version is None:
                return httpx.Response(404, json={"error": f"{service} is not installed"})
            if fault.health == "flaky" and random.random() < fault.flaky_rate:
                raise httpx.ConnectError("simulated probe failure", request=request)
            body = {
                "service": service,
                "version": version,
                "status": "failing" if fault.health == "unhealthy" else "ok",
                "error_rate": fault.error_rate,
            }
            return httpx.Response(
                200,
                content=json.dumps(body).encode(),
                headers={"content-type": "application/json"},
            )

        return answer


@cache
def simulated_fleet(url: str) -> SimulatedFleet:
    return SimulatedFleet(url)


@cache
def simulated_driver(url: str) -> SimulatedDriver:
    return SimulatedDriver(simulated_fleet(url))
