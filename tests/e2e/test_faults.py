"""The central promise under fire: 2,000+ upgrades on real workers while workers are killed,
Redis and PostgreSQL restart, the pager refuses, a deploy hangs, two tickers race and
pipelines submit releases of one service at the same moment; then nothing is lost and
nothing was done twice, by the database and by the fleet's own record."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy import create_engine, func, insert, select, text

from rollout.config import Fleet
from rollout.drivers.simulated import installed, simulated_fleet
from rollout.engine.runtime import Runtime
from rollout.engine.submission import submit
from rollout.store.database import engine_for, migrate, transaction
from rollout.store.models import Delivery, Installation, Page, Rollout, Upgrade
from tests.conftest import ROLLOUT, ROOT, PageReceiver
from tests.e2e.servers import OwnPostgres, OwnRedis, pool_children
from tests.waiting import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

SERVICES = 46
# Besides them, services whose pipelines submit several versions at the same moment, while
# the faults go on: the newest accepted must supersede every other.
CONTENDED = ("race-0", "race-1")
CONTENDING_VERSIONS = 6
ENVIRONMENTS = 50  # 5 canary, 15 staging, 30 production
BAD_EVERY = 8  # svc-7, svc-15, … release a version whose gate fails in canary
SLOW = "svc-0"  # its release deploys slowly; production-0's timeout is shorter than that
LEASE_S = 5
KILL_EVERY_S = 3.0
WORKER_GRACE_S = 8.0  # a worker is killed only once it has been up this long
REFUSE_500, REFUSE_429 = 6, 6  # the pager's first answers
# Seconds into the run: Redis restarts three times under load, PostgreSQL once between.
RESTARTS = [(12.0, "redis"), (27.0, "redis"), (40.0, "postgres"), (52.0, "redis")]
FINAL = ("succeeded", "failed", "superseded")


def _fleet() -> Fleet:
    """S services × E environments in three stages; one instant HTTP gate; the slow
    service's deploy outlasts production-0's timeout; every eighth release is bad."""
    sizes = {"canary": ENVIRONMENTS // 10, "staging": ENVIRONMENTS * 3 // 10}
    sizes["production"] = ENVIRONMENTS - sizes["canary"] - sizes["staging"]
    environments = []
    for stage, size in sizes.items():
        for i in range(size):
            driver: dict[str, Any] = {"type": "simulated", "poll_interval": "0.2s"}
            if (stage, i) == ("production", 0):
                driver["deploy_timeout"] = "2s"
            environments.append({"name": f"{stage}-{i}", "stage": stage, "driver": driver})
    gate = {
        "name": "health",
        "type": "http",
        "url": "http://{environment}.sim/{service}/health",
        "success_condition": "error_rate < 0.05",
        "interval": "0.05s",
        "count": 1,
    }
    members = [{"name": n, "timezone": "UTC"} for n in ("Ada", "Ben", "Cy")]
    rota = {"shift": "1d", "start": "2026-01-05", "timezone": "UTC"}
    return Fleet.model_validate(
        {
            "teams": [
                {
                    "name": "team-a",
                    "members": members,
                    "rotations": {
                        "primary": {"members": ["Ada", "Ben", "Cy"], **rota},
                        "secondary": {"members": ["Ben", "Cy", "Ada"], **rota},
                    },
                    # Seconds, so every page's escalation timer comes due during the run.
                    "escalation": [{"to": "secondary", "after": "2s"}],
                    "channels": [{"type": "webhook", "url": {"env": "ROLLOUT_TEST_PAGE_HOOK"}}],
                }
            ],
            "stages": [{"name": s} for s in sizes],
            "environments": environments,
            "services": [
                {"name": name, "team": "team-a", "gates": [gate]}
                for name in [f"svc-{i}" for i in range(SERVICES)] + list(CONTENDED)
            ],
            "simulation": {
                "initial_version": "1.0.0",
                "faults": [
                    {"version": "2.0.0-bad", "health": "unhealthy"},
                    {"service": SLOW, "version": "2.0.0-slow", "deploy_seconds": 30},
                ],
            },
        }
    )


def _version(index: int) -> str:
    if index == 0:
        return "2.0.0-slow"
    return "2.0.0-bad" if index % BAD_EVERY == BAD_EVERY - 1 else "2.0.0"


# Every change a ticker makes to a due time is a claim; a trigger writes each one down with
# the ticker's name (its connection's application_name). Workers' own writes are not logged.
CLAIM_LOG = """
CREATE TABLE claim_log (
    id bigserial PRIMARY KEY, tbl text, row_id bigint, ticker text,
    old_due timestamp, new_due timestamp, old_claim int, new_claim int);
CREATE FUNCTION log_claim() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    o jsonb := to_jsonb(OLD);
    n jsonb := to_jsonb(NEW);
BEGIN
    IF current_setting('application_name') LIKE 'ticker%'
       AND (o->>TG_ARGV[0]) IS DISTINCT FROM (n->>TG_ARGV[0]) THEN
        INSERT INTO claim_log (tbl, row_id, ticker, old_due, new_due, old_claim, new_claim)
        VALUES (TG_TABLE_NAME, NEW.id, current_setting('application_name'),
                (o->>TG_ARGV[0])::timestamp, (n->>TG_ARGV[0])::timestamp,
                (o->>'claim')::int, (n->>'claim')::int);
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER upgrades_claims AFTER UPDATE ON upgrades
    FOR EACH ROW EXECUTE FUNCTION log_claim('due_at');
CREATE TRIGGER deliveries_claims AFTER UPDATE ON deliveries
    FOR EACH ROW EXECUTE FUNCTION log_claim('due_at');
CREATE TRIGGER rollouts_claims AFTER UPDATE ON rollouts
    FOR EACH ROW EXECUTE FUNCTION log_claim('due_at');
CREATE TRIGGER pages_claims AFTER UPDATE ON pages
    FOR EACH ROW EXECUTE FUNCTION log_claim('escalate_at');
"""


@dataclass
class Stack:
    """The product's processes against the test's own PostgreSQL and Redis."""

    database_url: str
    env: dict[str, str]
    logs: Path
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    others: list[subprocess.Popen[bytes]] = field(default_factory=list)
    started: int = 0
    born: dict[int, float] = field(default_factory=dict)  # worker pid -> when it started

    def start(self, name: str, args: list[str], url: str | None = None) -> subprocess.Popen[bytes]:
        env = {**self.env, "ROLLOUT_DATABASE_URL": url or self.database_url}
        self.started += 1
        log = (self.logs / f"{name}.log").open("ab")
        return subprocess.Popen(
            [ROLLOUT, *args],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            start_new_session=True,  # its own process group: kill -9 takes its pool too
        )

    def start_worker(self, slot: int) -> None:
        process = self.start(
            f"worker-{slot}", ["worker", "--concurrency", "2", "--loglevel", "WARNING"]
        )
        self.born[process.pid] = time.monotonic()
        if slot < len(self.workers):
            self.workers[slot] = process
        else:
            self.workers.append(process)

    def stop(self) -> None:
        for process in self.workers + self.others:
            if process.poll() is None:
                with suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
        for process in self.workers + self.others:
            process.wait()


@dataclass
class Chaos:
    """Kills a random worker every few seconds (alternately the whole worker with its pool,
    and one pool process under a living worker), restarts Redis three times and PostgreSQL
    once, and restarts a worker that exited on its own as a supervisor would."""

    stack: Stack
    redis_server: OwnRedis
    postgres: OwnPostgres
    stop_event: threading.Event = field(default_factory=threading.Event)
    kills: Counter[str] = field(default_factory=Counter)
    restarts: list[str] = field(default_factory=list)
    exits: Counter[str] = field(default_factory=Counter)  # workers' own exits, by exit code
    exited_zero: list[str] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)
    longest_queue: int = 0  # messages waiting in Redis, sampled each turn

    def run(self) -> None:
        try:
            self._run()
        except BaseException as error:  # surfaced by the test, not lost in a thread
            self.errors.append(error)

    def _run(self) -> None:
        rng = random.Random(7)
        began = time.monotonic()
        plan = list(RESTARTS)
        turn = 0
        while not self.stop_event.wait(KILL_EVERY_S):
            turn += 1
            with suppress(redis.RedisError):
                waiting = int(redis.Redis.from_url(self.redis_server.url).llen("rollout"))
                self.longest_queue = max(self.longest_queue, waiting)
            self.reap()
            # A victim among the workers up long enough to be taking tasks: on a loaded
            # machine a worker takes seconds to start, and killing it sooner only stalls.
            now = time.monotonic()
            running = [
                w
                for w in self.stack.workers
                if pool_children(w.pid) and now - self.stack.born[w.pid] > WORKER_GRACE_S
            ]
            if running:
                worker = rng.choice(running)
                children = pool_children(worker.pid)
                if turn % 2 and children:
                    # One pool process dies mid-task; its worker lives on and replaces it.
                    with suppress(ProcessLookupError):
                        os.kill(rng.choice(children), signal.SIGKILL)
                    self.kills["pool process"] += 1
                else:
                    with suppress(ProcessLookupError):
                        os.killpg(worker.pid, signal.SIGKILL)
                    worker.wait()
                    self.kills["whole worker"] += 1
                    self.stack.start_worker(self.stack.workers.index(worker))
            elapsed = time.monotonic() - began
            if plan and elapsed > plan[0][0]:
                _, server = plan.pop(0)
                self._restart(server)
                self.restarts.append(f"{server} at {elapsed:.0f}s")

    def _restart(self, server: str) -> None:
        if server == "redis":
            self.redis_server.stop()
        else:
            self.postgres.stop("immediate")
        time.sleep(1.0)  # down for a while, as a restart takes
        if server == "redis":
            self.redis_server.start()
        else:
            self.postgres.start()

    def reap(self, restart: bool = True) -> None:
        """Count the workers that exited on their own and start them again, as a supervisor
        that restarts on failure would (Celery gives up when a pool process dies while its
        worker starts, and exits non-zero). One that exited 0 stopped for no reason such a
        supervisor acts on: it is written down to fail the test, and started again only so
        the run goes on."""
        for slot, worker in enumerate(self.stack.workers):
            code = worker.poll()
            if code is None:
                continue
            self.exits[str(code)] += 1
            if code == 0:
                self.exited_zero.append(f"worker-{slot} (pid {worker.pid})")
            if restart:
                self.stack.start_worker(slot)


@contextmanager
def _services(base: Path) -> Iterator[tuple[OwnPostgres, OwnRedis]]:
    postgres = OwnPostgres()
    redis_server = OwnRedis(base)
    try:
        postgres.start()
        redis_server.start()
        yield postgres, redis_server
    finally:
        redis_server.stop()
        postgres.stop("fast")
        postgres.remove()


def _seed(fleet: Fleet, url: str) -> None:
    pairs = [(e.name, s.name) for s in fleet.services for e in fleet.environments_of(s)]
    with engine_for(url).begin() as db:
        db.execute(
            insert(installed),
            [{"environment": e, "service": s, "version": "1.0.0"} for e, s in pairs],
        )
    for fault in fleet.simulation.faults if fleet.simulation else []:
        simulated_fleet(url).inject(fault)
    now = datetime.now(UTC)
    with transaction(url) as session:
        session.execute(
            insert(Installation),
            [
                {"environment": e, "service": s, "version": "1.0.0", "updated_at": now}
                for e, s in pairs
            ],
        )
        session.execute(text(CLAIM_LOG))


def _contend(runtime: Runtime, fleet: Fleet) -> dict[str, list[int]]:
    """Every contended service's versions submitted at once, each from a thread of its own;
    the rollouts accepted, by service."""
    jobs = [(name, f"3.0.{n}") for name in CONTENDED for n in range(CONTENDING_VERSIONS)]
    start = threading.Barrier(len(jobs))

    def one(job: tuple[str, str]) -> tuple[str, int]:
        start.wait()
        return job[0], submit(runtime, fleet, *job).rollout_id

    with ThreadPoolExecutor(len(jobs)) as pool:
        accepted = list(pool.map(one, jobs))
    return {name: sorted(i for n, i in accepted if n == name) for name in CONTENDED}


def _settled(url: str) -> bool:
    """Every rollout final, every delivery sent, every escalation done."""
    try:
        with transaction(url) as session:
            live = session.scalar(
                select(func.count()).select_from(Rollout).where(Rollout.state.not_in(FINAL))
            )
            pending = session.scalar(
                select(func.count()).select_from(Delivery).where(Delivery.state == "pending")
            )
            escalating = session.scalar(
                select(func.count()).select_from(Page).where(Page.escalate_at.is_not(None))
            )
    except Exception:  # the database restarting under us: ask again
        return False
    return live == 0 and pending == 0 and escalating == 0


def test_nothing_is_lost_and_nothing_done_twice_under_faults(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fleet = _fleet()
    # A team's webhook that refuses for a while: 500s first, then 429s with Retry-After.
    pager = PageReceiver()
    pager.reset([(500, {})] * REFUSE_500 + [(429, {"Retry-After": "1"})] * REFUSE_429)
    with _services(tmp_path) as (postgres, redis_server):
        admin = create_engine(postgres.url, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text("CREATE DATABASE rollout_faults"))
        admin.dispose()
        url = postgres.url.rsplit("/", 1)[0] + "/rollout_faults"
        migrate(url)
        simulated_fleet(url)
        _seed(fleet, url)

        logs = tmp_path / "logs"
        logs.mkdir()
        env = {
            **os.environ,
            "ROLLOUT_SIMULATOR_URL": url,
            "ROLLOUT_BROKER_URL": redis_server.url,
            "ROLLOUT_LEASE_SECONDS": str(LEASE_S),
            "ROLLOUT_TICK_SECONDS": "0.05",
            "ROLLOUT_TEST_PAGE_HOOK": pager.url,
        }
        stack = Stack(url, env, logs)
        chaos = Chaos(stack, redis_server, postgres)
        thread = threading.Thread(target=chaos.run, daemon=True)
        began = time.monotonic()
        try:
            for slot in range(3):
                stack.start_worker(slot)
            for name in ("ticker-a", "ticker-b"):
                stack.others.append(
                    stack.start(name, ["ticker"], url=f"{url}?application_name={name}")
                )
            runtime = Runtime(url)
            for index in range(SERVICES):
                submit(runtime, fleet, f"svc-{index}", _version(index))
            thread.start()
            contended = _contend(runtime, fleet)
            wait_for(lambda: _settled(url), 720, "every rollout final and every page sent", 0.5)
        finally:
            chaos.stop_event.set()
            thread.join(timeout=60)
            chaos.reap(restart=False)  # every worker still running at the end, or counted
            stack.stop()
        elapsed = time.monotonic() - began
        assert not chaos.errors, chaos.errors

        engine_for(url).dispose()
        with transaction(url) as session:
            upgrades = list(session.scalars(select(Upgrade)))
            rollouts = list(session.scalars(select(Rollout)))
            pages = list(session.scalars(select(Page)))
            deliveries = list(session.scalars(select(Delivery)))
            db_installed = {
                (i.environment, i.service): i.version for i in session.scalars(select(Installation))
            }
            claims = session.execute(text("SELECT * FROM claim_log")).all()
        simulator = simulated_fleet(url)
        records = simulator.deploy_records()
        fleet_installed = simulator.installed_versions()
        engine_for(url).dispose()

    states = Counter(u.state for u in upgrades)
    deployed = [u for u in upgrades if u.deploy_started_at is not None]
    figures = {
        "upgrades": len(upgrades),
        "deployed": len(deployed),
        "states": dict(states),
        "rollouts": dict(Counter(r.state for r in rollouts)),
        "kills": dict(chaos.kills),
        "restarts": chaos.restarts,
        "worker_exits": dict(chaos.exits),
        "worker_exits_0": chaos.exited_zero,
        "longest_queue": chaos.longest_queue,
        "pager_answers": dict(pager.answers),
        "pages": len(pages),
        "deliveries": len(deliveries),
        "pages_taken": len(pager.keys),
        "pages_resent": len(pager.keys) - len(set(pager.keys)),
        "deploy_calls_repeated": sum(calls - 1 for calls, _ in records.values()),
        "claims": dict(Counter(c.ticker for c in claims)),
        "upgrades_s": round(
            (
                max(u.finished_at for u in upgrades if u.finished_at)
                - min(u.deploy_started_at for u in deployed if u.deploy_started_at)
            ).total_seconds(),
            1,
        ),
        "elapsed_s": round(elapsed, 1),
        "contended": {name: len(ids) for name, ids in contended.items()},
        "newest": [ids[-1] for ids in contended.values()],
    }
    with capsys.disabled():
        print("\nfault run:", json.dumps(figures))
    # What a failure is read from, beside the processes' logs in tmp_path/logs.
    evidence = {
        "pager": [
            [key, body.get("recipient")]
            for key, body in zip(pager.keys, pager.accepted, strict=True)
        ],
        "deliveries": [
            [d.id, d.page_id, d.action, d.state, d.attempts, d.claim] for d in deliveries
        ],
        "pages": [[p.id, p.dedup_key, p.recipient, p.escalations] for p in pages],
    }
    (tmp_path / "evidence.json").write_text(json.dumps(evidence, indent=1))

    # No timer was claimed twice: each ticker claim took a row whose due time had come by
    # the claiming ticker's own clock (its new due time is its now + the lease), never one
    # another ticker had just moved a lease ahead or a finished row (no due time), and no
    # due time was claimed by more than one claim.
    assert set(figures["claims"]) == {"ticker-a", "ticker-b"}, "both tickers claimed rows"
    early = [
        c
        for c in claims
        if c.old_due is None or (c.new_due - c.old_due).total_seconds() < LEASE_S - 0.001
    ]
    assert not early, f"{len(early)} of {len(claims)} claims took a row not due: {early[:3]}"
    twice = Counter((c.tbl, c.row_id, c.old_due) for c in claims)
    assert max(twice.values()) == 1, [k for k, n in twice.items() if n > 1][:5]

    # The faults happened.
    assert len(deployed) >= 2000, figures
    assert sum(chaos.kills.values()) >= 10, figures
    assert Counter(c.split()[0] for c in chaos.restarts) == {"redis": 3, "postgres": 1}, figures
    # No worker stopped as if told to: a worker that cannot go on exits non-zero.
    assert not chaos.exited_zero, figures
    assert (pager.answers[500], pager.answers[429]) == (REFUSE_500, REFUSE_429), figures
    hung = [u for u in upgrades if u.environment == "production-0" and u.service == SLOW]
    assert [u.state for u in hung] == ["rolled_back"], figures
    assert hung[0].reason is not None and "did not finish within" in hung[0].reason

    # Every rollout is final: good ones succeeded, bad and the hung one failed.
    by_service = {r.service: r for r in rollouts}
    for index in range(SERVICES):
        rollout = by_service[f"svc-{index}"]
        expected = "succeeded" if _version(index) == "2.0.0" else "failed"
        assert rollout.state == expected, rollout.reason
    assert all(
        u.state in {"succeeded", "rolled_back", "cancelled", "superseded"} for u in upgrades
    ), states
    # Of the versions of a service submitted together, one rollout lived on, the newest
    # accepted, and it succeeded: every other was superseded.
    for name, accepted in contended.items():
        outcomes = {r.id: r.state for r in rollouts if r.service == name}
        assert sorted(outcomes) == accepted, (name, outcomes)
        newest = accepted[-1]
        assert outcomes == {i: "succeeded" if i == newest else "superseded" for i in accepted}

    # Every environment runs the version the database says, and the right one.
    assert fleet_installed == db_installed
    newest_version = {r.service: r.version for r in rollouts if r.id in figures["newest"]}
    for upgrade in upgrades:
        key = (upgrade.environment, upgrade.service)
        if upgrade.service in contended:
            assert db_installed[key] == newest_version[upgrade.service], key
            continue
        want = upgrade.to_version if upgrade.state == "succeeded" else "1.0.0"
        assert db_installed[key] == want, (upgrade.id, upgrade.state)

    # Each deploy took effect exactly once: repeats were folded by the idempotency key.
    assert all(effects <= 1 for _, effects in records.values()), records
    for upgrade in upgrades:
        forward = records.get(f"upgrade-{upgrade.id}")
        back = records.get(f"upgrade-{upgrade.id}-rollback")
        if upgrade.deploy_started_at is None:
            assert forward is None and back is None, upgrade.id  # never touched the fleet
        elif upgrade.state == "succeeded":
            assert forward is not None and forward[1] == 1 and back is None, upgrade.id
        elif upgrade.state == "rolled_back":
            assert back is not None and back[1] == 1, upgrade.id
            timed_out = upgrade.id == hung[0].id
            assert forward is not None and forward[1] == (0 if timed_out else 1), upgrade.id

    # Every page delivered exactly once per dedup key: one page row per failure, one
    # delivery per action, each delivered; the pager took each (dedup key, action,
    # recipient) — its Idempotency-Key — and dropped only resends of the same key.
    failed = [u for u in upgrades if u.state == "rolled_back"]
    assert sorted(p.upgrade_id for p in pages) == sorted(u.id for u in failed)
    assert len({p.dedup_key for p in pages}) == len(pages)
    assert all(d.state == "delivered" for d in deliveries), Counter(d.state for d in deliveries)
    per_page = Counter((d.page_id, d.action) for d in deliveries)
    assert set(per_page.values()) == {1}, per_page
    assert {a for _, a in per_page} == {"trigger", "escalate-1"}
    assert all(p.escalations == 1 for p in pages)
    taken = Counter(pager.keys)
    by_key = {key: body["dedup_key"] for key, body in zip(pager.keys, pager.accepted, strict=True)}
    assert len(taken) == len(deliveries), (len(taken), len(deliveries))
    assert Counter(by_key.values()) == {p.dedup_key: 2 for p in pages}
