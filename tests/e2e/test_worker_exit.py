"""A worker that cannot go on exits non-zero, so a supervisor that restarts on failure
brings it back (Celery's own worker_main would exit 0)."""

from __future__ import annotations

import os
import signal
import subprocess
from contextlib import suppress
from pathlib import Path

import pytest

from tests.conftest import ROLLOUT, ROOT
from tests.e2e.servers import OwnRedis, pool_children
from tests.waiting import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]


def _worker(tmp_path: Path, redis_server: OwnRedis) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "ROLLOUT_BROKER_URL": redis_server.url,
        "ROLLOUT_DATABASE_URL": f"sqlite:///{tmp_path / 'rollout.db'}",
        "PYTHONUNBUFFERED": "1",
    }
    with (tmp_path / "worker.log").open("wb") as out:
        return subprocess.Popen(
            [ROLLOUT, "worker", "--concurrency", "2"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            start_new_session=True,
        )


def test_a_worker_whose_pool_process_dies_as_it_starts_exits_non_zero(tmp_path: Path) -> None:
    # Redis is not up yet: the worker has started its pool and keeps retrying the broker,
    # its event loop not yet running, so nothing replaces a pool process that dies now.
    # Once connected, Celery finds the dead process and gives up.
    redis_server = OwnRedis(tmp_path)
    log = tmp_path / "worker.log"
    worker = _worker(tmp_path, redis_server)
    try:
        wait_for(lambda: "Cannot connect to" in log.read_text(), 60, "the worker to retry Redis")
        children = wait_for(lambda: pool_children(worker.pid), 30, "the worker's pool")
        os.kill(children[0], signal.SIGKILL)
        redis_server.start()
        code = worker.wait(timeout=90)
    finally:
        with suppress(ProcessLookupError):
            os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()
        redis_server.stop()
    assert "Could not start worker processes" in log.read_text()
    assert code != 0


def test_a_worker_stopped_with_sigterm_exits_0(tmp_path: Path) -> None:
    # A warm shutdown is no failure: a supervisor must not take it for one.
    redis_server = OwnRedis(tmp_path)
    log = tmp_path / "worker.log"
    redis_server.start()
    worker = _worker(tmp_path, redis_server)
    try:
        wait_for(lambda: " ready." in log.read_text(), 60, "the worker to be ready")
        worker.send_signal(signal.SIGTERM)
        code = worker.wait(timeout=60)
    finally:
        with suppress(ProcessLookupError):
            os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()
        redis_server.stop()
    assert code == 0, log.read_text()[-2000:]
