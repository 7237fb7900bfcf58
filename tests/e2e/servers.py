"""Servers of a test's own, on free ports, so a test can kill and restart them; and the
pool processes of a `rollout worker`, for a test to kill."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest
import redis

from tests.waiting import wait_for


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pg_bin(name: str) -> str:
    found = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    if not found:
        pytest.skip(f"no PostgreSQL server binaries ({name}) under /usr/lib/postgresql")
    return str(found[-1])


class OwnPostgres:
    """A PostgreSQL server of the test's own, on a free port, so it can be killed."""

    def __init__(self) -> None:
        self.port = free_port()
        # Its own directory straight under /tmp: pytest's are private to root, and the
        # server refuses to run as root, so as root it runs as the postgres user.
        self.base = Path(tempfile.mkdtemp(prefix="rollout-faults-pg-"))
        self.data = self.base / "data"
        self.log = self.base / "postgres.log"
        self.prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.prefix:
            shutil.chown(self.base, "postgres")
        subprocess.run(
            [
                *self.prefix,
                pg_bin("initdb"),
                "-D",
                str(self.data),
                "-U",
                "postgres",
                "-A",
                "trust",
                "--no-sync",
            ],
            check=True,
            capture_output=True,
        )
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1 "
            "-c max_connections=300 -c fsync=off"
        )
        subprocess.run(
            [
                *self.prefix,
                pg_bin("pg_ctl"),
                "-D",
                str(self.data),
                "-l",
                str(self.log),
                "-o",
                options,
                "-w",
                "start",
            ],
            check=True,
            capture_output=True,
        )

    def stop(self, mode: str = "immediate") -> None:
        # immediate: every backend dies at once, as in a crash; start runs crash recovery.
        subprocess.run(
            [*self.prefix, pg_bin("pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"],
            check=False,
            capture_output=True,
        )

    def remove(self) -> None:
        shutil.rmtree(self.base, ignore_errors=True)


class OwnRedis:
    """A Redis server of the test's own, keeping nothing on disk: a restart loses every
    queued and unacknowledged message."""

    def __init__(self, base: Path) -> None:
        self.port = free_port()
        self.log = base / "redis.log"
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.skip("no redis-server binary")
        self.process = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--logfile",
                str(self.log),
            ],
        )
        client = redis.Redis.from_url(self.url)
        wait_for(lambda: pings(client), 20, "the test's Redis to answer")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


def pool_children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []
