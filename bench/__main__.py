"""`python -m bench`: the engine against its own ceiling, on real workers, Redis and PostgreSQL.

Builds a simulated fleet of S services × E environments in three stages, starts W real
`rollout worker` processes and a ticker, measures the no-op Celery task rate on the same
broker and workers (the ceiling), then submits one release per service (a share of them bad)
and waits until every rollout is final. Results go to bench/results/<scenario>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis
from sqlalchemy import create_engine, func, insert, select, text

from rollout.config import Fleet
from rollout.drivers.simulated import simulated_fleet
from rollout.engine.runtime import Runtime
from rollout.engine.submission import submit
from rollout.store.database import engine_for, migrate, transaction
from rollout.store.models import Installation, Measurement, Page, Rollout, Upgrade

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
ROLLOUT = str(Path(sys.executable).with_name("rollout"))
PG_ADMIN = os.environ.get("BENCH_PG_ADMIN", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
REDIS = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/6")
FINAL = ("succeeded", "failed", "superseded")
# The version each round submits (every bad_share-th service gets its "-bad" twin).
ROUNDS = ("2.0.0", "2.1.0")


def build_fleet(
    services: int, environments: int, deploy_seconds: float, stages: int, poll: str = "0.1s"
) -> Fleet:
    """S services × E environments; with three stages, 10 % canary, 30 % staging, the rest
    production. Gates take one instant measurement: the engine, not the waiting, is measured."""
    names = ["canary", "staging", "production"][-stages:]
    if stages == 3:
        canary = max(1, environments // 10)
        staging = max(1, environments * 3 // 10)
        sizes = [canary, staging, environments - canary - staging]
    else:
        sizes = [environments]
    envs = []
    for stage, size in zip(names, sizes, strict=True):
        for i in range(size):
            envs.append(
                {
                    "name": f"{stage}-{i}",
                    "stage": stage,
                    "driver": {"type": "simulated", "poll_interval": poll},
                }
            )
    gate = {
        "name": "health",
        "type": "http",
        "url": "http://{environment}.sim/{service}/health",
        "success_condition": "error_rate < 0.05",
        "interval": "0.05s",
        "count": 1,
    }
    faults: list[dict[str, Any]] = [
        {"version": f"{version}-bad", "health": "unhealthy"} for version in ROUNDS
    ]
    if deploy_seconds:
        faults.append({"version": "2.0.0", "deploy_seconds": deploy_seconds})
    return Fleet.model_validate(
        {
            "teams": [{"name": "team-a"}],
            "stages": [{"name": n} for n in names],
            "environments": envs,
            "services": [
                {"name": f"svc-{i}", "team": "team-a", "gates": [gate]} for i in range(services)
            ],
            "simulation": {"initial_version": "1.0.0", "faults": faults},
        }
    )


@dataclass
class Stack:
    database_url: str
    broker_url: str
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "ROLLOUT_DATABASE_URL": self.database_url,
            "ROLLOUT_SIMULATOR_URL": self.database_url,
            "ROLLOUT_BROKER_URL": self.broker_url,
            "ROLLOUT_TICK_SECONDS": "0.05",
            "ROLLOUT_LEASE_SECONDS": "30",
        }

    def start(self, *args: str) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            [ROLLOUT, *args],
            env=self.env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.processes.append(process)
        return process

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


@contextmanager
def stack(workers: int) -> Iterator[Stack]:
    """A fresh database and broker, W solo workers; the ticker starts with the measured run."""
    name = f"rollout_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"CREATE DATABASE {name}"))
    url = PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    redis.Redis.from_url(REDIS).flushdb()
    migrate(url)
    simulated_fleet(url)
    running = Stack(url, REDIS)
    try:
        for _ in range(workers):
            running.workers.append(
                running.start("worker", "--pool", "solo", "--loglevel", "WARNING")
            )
        yield running
    finally:
        running.stop()
        engine_for(url).dispose()
        with admin.connect() as connection:
            connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


def _queue_empty(client: redis.Redis) -> bool:
    return int(client.llen("rollout")) == 0 and int(client.hlen("unacked")) == 0


def noop_rate(running: Stack, tasks: int) -> tuple[float, float]:
    """No-op tasks per second through the same broker and workers: the engine's ceiling; and
    the workers' CPU milliseconds per no-op task."""
    from celery import Celery

    client = redis.Redis.from_url(running.broker_url)
    celery = Celery(broker=running.broker_url)
    # Warm up: every worker is connected and consuming.
    for _ in range(50):
        celery.send_task("rollout.noop", queue="rollout")
    _wait(lambda: _queue_empty(client), 120)
    cpu_before = _workers_cpu_s(running)
    with celery.producer_pool.acquire(block=True) as producer:
        started = time.monotonic()
        for _ in range(tasks):
            celery.send_task("rollout.noop", queue="rollout", producer=producer)
    _wait(lambda: _queue_empty(client), 600)
    rate = tasks / (time.monotonic() - started)
    return rate, (_workers_cpu_s(running) - cpu_before) * 1000 / tasks


def _workers_cpu_s(running: Stack) -> float:
    """CPU seconds the workers used so far (user + system): unlike wall time, barely moved by
    whatever else runs on the machine."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for worker in running.workers:
        try:
            fields = Path(f"/proc/{worker.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def _wait(check: Any, timeout: float, every: float = 0.02) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError("benchmark did not finish in time")
        time.sleep(every)


def _rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except FileNotFoundError:
        pass
    return 0


class RssSampler(threading.Thread):
    """Samples each worker's resident memory once a second: its peak and its drift."""

    def __init__(self, pids: list[int]) -> None:
        super().__init__(daemon=True)
        self.samples: dict[int, list[int]] = {pid: [] for pid in pids}
        self.stop_event = threading.Event()

    def run(self) -> None:
        while not self.stop_event.wait(1.0):
            for pid, series in self.samples.items():
                series.append(_rss_kib(pid))

    def latest(self) -> dict[str, int]:
        """Each worker's resident KiB now (the mean of its last three samples)."""
        return {
            str(pid): round(statistics.mean(series[-3:] or [0]))
            for pid, series in self.samples.items()
        }

    def summary(self) -> dict[str, Any]:
        out = {}
        for pid, series in self.samples.items():
            series = [s for s in series if s] or [0]
            third = max(1, len(series) // 3)
            out[str(pid)] = {
                "peak_mib": round(max(series) / 1024, 1),
                "first_third_mib": round(statistics.mean(series[:third]) / 1024, 1),
                "middle_third_mib": round(statistics.mean(series[third:-third] or [0]) / 1024, 1),
                "last_third_mib": round(statistics.mean(series[-third:]) / 1024, 1),
                # The shape: whether it levels off after warming up, or keeps growing.
                "every_5s_mib": [round(kib / 1024, 1) for kib in series[::5]],
            }
        return out


def _seed(fleet: Fleet, url: str) -> None:
    pairs = [
        (environment.name, service.name)
        for service in fleet.services
        for environment in fleet.environments_of(service)
    ]
    now = datetime.now(UTC)
    from rollout.drivers.simulated import installed

    with engine_for(url).begin() as db:
        db.execute(
            insert(installed),
            [{"environment": e, "service": s, "version": "1.0.0"} for e, s in pairs],
        )
    for fault in fleet.simulation.faults if fleet.simulation else []:
        simulated_fleet(url).inject(fault)
    with transaction(url) as session:
        session.execute(
            insert(Installation),
            [
                {"environment": e, "service": s, "version": "1.0.0", "updated_at": now}
                for e, s in pairs
            ],
        )


def _transactions(url: str) -> int:
    with engine_for(url).connect() as connection:
        return int(
            connection.execute(
                text(
                    "SELECT xact_commit + xact_rollback FROM pg_stat_database "
                    "WHERE datname = current_database()"
                )
            ).scalar_one()
        )


def _percentile(values: list[float], share: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(share * len(ordered)))], 3)


def _reactions(url: str) -> dict[str, float | None]:
    """From a gate's failing measurement to the page being written, and to the rollback
    deploy being issued."""
    with transaction(url) as session:
        failed_at = dict(
            session.execute(
                select(Measurement.upgrade_id, func.max(Measurement.taken_at))
                .where(Measurement.outcome == "failure")
                .group_by(Measurement.upgrade_id)
            ).all()
        )
        paged = dict(session.execute(select(Page.upgrade_id, Page.created_at)).all())
        rolled = dict(
            session.execute(
                select(Upgrade.id, Upgrade.rollback_started_at).where(
                    Upgrade.rollback_started_at.is_not(None)
                )
            ).all()
        )
    page = [(paged[u] - t).total_seconds() for u, t in failed_at.items() if u in paged]
    back = [(rolled[u] - t).total_seconds() for u, t in failed_at.items() if u in rolled]
    return {
        "page_p50_s": _percentile(page, 0.5),
        "page_p99_s": _percentile(page, 0.99),
        "rollback_p50_s": _percentile(back, 0.5),
        "rollback_p99_s": _percentile(back, 0.99),
        "failures": len(failed_at),
    }


def run(
    services: int,
    environments: int,
    workers: int,
    bad_share: float,
    noop_tasks: int,
    deploy_seconds: float = 0.0,
    stages: int = 3,
    poll: str = "0.1s",
    rounds: int = 1,
) -> dict[str, Any]:
    """One release per service, waited for until every rollout is final; with `rounds` 2, a
    second release per service after the first round, on the same workers: whether their
    memory keeps growing once warm."""
    fleet = build_fleet(services, environments, deploy_seconds, stages, poll)
    with stack(workers) as running:
        ceiling, noop_cpu_ms = noop_rate(running, noop_tasks) if noop_tasks else (None, None)
        _seed(fleet, running.database_url)
        sampler = RssSampler([w.pid for w in running.workers])
        sampler.start()
        running.start("ticker")
        result = _round(running, fleet, ROUNDS[0], bad_share)
        result.update(
            {
                "services": services,
                "environments": environments,
                "workers": workers,
                "bad_share": bad_share,
                "deploy_seconds": deploy_seconds,
                "poll_interval": poll,
                "noop_tasks_per_s": round(ceiling, 1) if ceiling else None,
                "ratio": round(result["upgrades_per_s"] / ceiling, 3) if ceiling else None,
                "noop_worker_cpu_ms_per_task": round(noop_cpu_ms, 3) if noop_cpu_ms else None,
                # The same comparison in worker CPU, which the machine's other load moves far
                # less than it moves wall-clock rates: how many empty tasks one upgrade costs.
                "upgrade_cost_in_noop_tasks": (
                    round(result["worker_cpu_ms_per_upgrade"] / noop_cpu_ms, 1)
                    if noop_cpu_ms
                    else None
                ),
            }
        )
        if rounds > 1:
            warm = sampler.latest()
            second = _round(running, fleet, ROUNDS[1], bad_share)
            grown = {
                pid: round((kib - warm[pid]) / 1024, 1) for pid, kib in sampler.latest().items()
            }
            result["second_round"] = {
                key: second[key]
                for key in ("upgrades", "upgrades_per_s", "worker_cpu_ms_per_upgrade")
            }
            result["second_round"]["worker_rss_growth_mib"] = grown
        sampler.stop_event.set()
        result["worker_rss"] = sampler.summary()
        result.update(_reactions(running.database_url))
        return result


def _states(url: str) -> dict[str, int]:
    """How many upgrades are in each state."""
    with transaction(url) as session:
        rows = session.execute(select(Upgrade.state, func.count()).group_by(Upgrade.state))
        return {state: count for state, count in rows}


def _round(running: Stack, fleet: Fleet, version: str, bad_share: float) -> dict[str, Any]:
    """Submit `version` for every service, wait until every rollout is final, and measure."""
    runtime = Runtime(running.database_url)
    bad_every = round(1 / bad_share) if bad_share else 0
    before = _states(running.database_url)
    xact_before = _transactions(running.database_url)
    cpu_before = _workers_cpu_s(running)
    started = time.monotonic()
    for index, service in enumerate(fleet.services):
        bad = bad_every and index % bad_every == bad_every - 1
        submit(runtime, fleet, service.name, f"{version}-bad" if bad else version)
    submitted = time.monotonic() - started

    def finished() -> bool:
        with transaction(running.database_url) as session:
            live = session.scalar(
                select(func.count()).select_from(Rollout).where(Rollout.state.not_in(FINAL))
            )
        return live == 0

    _wait(finished, 3600, every=0.2)
    elapsed = time.monotonic() - started
    xact = _transactions(running.database_url) - xact_before
    cpu_ms = (_workers_cpu_s(running) - cpu_before) * 1000
    after = _states(running.database_url)
    states = {state: count - before.get(state, 0) for state, count in after.items()}
    ran = states.get("succeeded", 0) + states.get("rolled_back", 0)
    return {
        "upgrades": ran,
        "upgrade_states": states,
        "elapsed_s": round(elapsed, 2),
        "submit_s": round(submitted, 2),
        "upgrades_per_s": round(ran / elapsed, 1),
        "db_transactions_per_upgrade": round(xact / max(ran, 1), 1),
        "worker_cpu_ms_per_upgrade": round(cpu_ms / max(ran, 1), 2),
        "per_upgrade_ms": round(elapsed / max(ran, 1) * 1000, 2),
    }


def _write(name: str, result: dict[str, Any]) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    result = {
        "scenario": name,
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": (
            f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
        ),
        "command": "python -m bench " + " ".join(sys.argv[1:]),
        **result,
    }
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("scenario", choices=["throughput", "scaling", "holding"])
    parser.add_argument("--services", type=int, default=200)
    parser.add_argument("--environments", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--bad-share", type=float, default=0.1)
    parser.add_argument("--noop-tasks", type=int, default=5000)
    parser.add_argument(
        "--poll",
        help="the simulated driver's poll_interval (default 0.1s; 1s for holding: a 10 s "
        "deploy polled ten times, as a real orchestrator would)",
    )
    args = parser.parse_args()
    poll = args.poll or ("1s" if args.scenario == "holding" else "0.1s")

    if args.scenario == "throughput":
        _write(
            "throughput",
            run(
                args.services,
                args.environments,
                args.workers,
                args.bad_share,
                args.noop_tasks,
                poll=poll,
                rounds=2,
            ),
        )
    elif args.scenario == "scaling":
        small = run(args.services, args.environments, args.workers, args.bad_share, 0, poll=poll)
        large = run(
            args.services * 10, args.environments, args.workers, args.bad_share, 0, poll=poll
        )
        _write(
            "scaling",
            {
                "small": small,
                "large": large,
                "per_upgrade_cost_ratio": round(
                    large["per_upgrade_ms"] / small["per_upgrade_ms"], 3
                ),
                # The same in worker CPU, which other load on the machine moves far less.
                "per_upgrade_cpu_ratio": round(
                    large["worker_cpu_ms_per_upgrade"] / small["worker_cpu_ms_per_upgrade"], 3
                ),
            },
        )
    else:
        _write(
            "holding",
            run(
                args.services,
                args.environments,
                args.workers,
                0.0,
                0,
                deploy_seconds=10.0,
                stages=1,
                poll=poll,
            ),
        )


if __name__ == "__main__":
    main()
