"""The CLI in remote mode: a real `rollout api` process on the real PostgreSQL, tokens made
with `rollout token create`, and `rollout submit/list/show` printing what local mode prints."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from rollout.store.database import transaction
from tests.conftest import FIXTURES, REDIS, ROLLOUT, ROOT
from tests.integration.test_api import TABLES, api_database_url
from tests.waiting import wait_for

pytestmark = pytest.mark.e2e
__all__ = ["api_database_url"]  # the fixture, shared with the integration tests

DIGEST = "sha256:" + "0f" * 32


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Api:
    def __init__(self, database_url: str, logs: Path) -> None:
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("ROLLOUT_")},
            "ROLLOUT_DATABASE_URL": database_url,
            "ROLLOUT_BROKER_URL": REDIS,
            "ROLLOUT_CONFIG": str(FIXTURES / "fleet.yaml"),
            "COLUMNS": "200",
        }
        self.url = f"http://127.0.0.1:{_free_port()}"
        self.log = logs / "api.log"
        self.process = subprocess.Popen(
            [ROLLOUT, "api", "--port", self.url.rsplit(":", 1)[1]],
            env=self.env,
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            start_new_session=True,
        )

    def ready(self) -> bool:
        assert self.process.poll() is None, self.log.read_text()
        try:
            return httpx.get(self.url + "/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def local(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [ROLLOUT, *args], env=self.env, capture_output=True, text=True, timeout=60, cwd=ROOT
        )

    def remote(self, token: str, *args: str) -> subprocess.CompletedProcess[str]:
        # No database in remote mode: a CLI that opened it would fail on this URL.
        env = {
            **self.env,
            "ROLLOUT_DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/none",
            "ROLLOUT_API_URL": self.url,
            "ROLLOUT_TOKEN": token,
        }
        return subprocess.run(
            [ROLLOUT, *args], env=env, capture_output=True, text=True, timeout=60, cwd=ROOT
        )

    def token(self, *args: str) -> str:
        made = self.local("token", "create", *args)
        assert made.returncode == 0, made.stderr
        assert "shown only now" in made.stderr
        return made.stdout.strip()

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
        self.process.wait(timeout=15)


@pytest.fixture
def api(api_database_url: str, tmp_path: Path) -> Iterator[Api]:
    with transaction(api_database_url) as session:
        session.execute(text(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE"))
    server = Api(api_database_url, tmp_path)
    try:
        wait_for(server.ready, 30, "the API to be ready")
        yield server
    finally:
        server.stop()


def _refused(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_a_pipeline_submits_remotely_and_operators_read_what_local_mode_prints(api: Api) -> None:
    pipeline = api.token("--scope", "pipeline", "--service", "checkout", "--note", "ci")
    operator = api.token("--scope", "operator")

    first = api.remote(pipeline, "submit", "checkout", "1.1.0", "--digest", DIGEST)
    assert first.returncode == 0, first.stderr
    assert first.stdout == "submitted checkout 1.1.0: rollout 1\n"
    again = api.remote(pipeline, "submit", "checkout", "1.1.0", "--digest", DIGEST)
    assert again.stdout == "checkout 1.1.0 was already submitted: rollout 1\n"
    newer = api.remote(pipeline, "submit", "checkout", "1.2.0", "--digest", DIGEST)
    assert newer.stdout == "submitted checkout 1.2.0: rollout 2\nrollout 1 superseded\n"

    for args in (
        ("list", "--service", "checkout", "--state", "superseding"),
        ("show", "2"),
        ("oncall", "payments", "--at", "2026-03-29T08:30:00+02:00"),
    ):
        local, remote = api.local(*args), api.remote(operator, *args)
        assert remote.returncode == 0, remote.stderr
        assert remote.stdout == local.stdout, args
    _refused(api.remote(operator, "show", "99"), "no rollout 99", "HTTP 404")


def test_refusals_exit_non_zero_with_the_apis_message(api: Api) -> None:
    pipeline = api.token("--scope", "pipeline", "--service", "checkout")
    team = api.token("--scope", "team", "--team", "search")
    assert api.remote(pipeline, "submit", "checkout", "1.1.0", "--digest", DIGEST).returncode == 0

    other = "sha256:" + "1a" * 32
    _refused(
        api.remote(pipeline, "submit", "checkout", "1.1.0", "--digest", other),
        "already submitted with digest",
        "HTTP 409",
    )
    _refused(api.remote(pipeline, "submit", "checkout", "1.0 beta"), "body.version", "HTTP 422")
    _refused(api.remote(team, "submit", "checkout", "9.0.0"), "team token may not", "HTTP 403")
    _refused(api.remote("rollout_nope", "list"), "unknown token", "HTTP 401")
    _refused(api.remote(team, "show", "1"), "belongs to team payments", "HTTP 403")

    listed = api.local("token", "list")
    assert pipeline not in listed.stdout and "pipeline" in listed.stdout
    assert api.local("token", "revoke", "1").returncode == 0
    refused = api.remote(pipeline, "submit", "checkout", "1.3.0")
    _refused(refused, "revoked token")
    assert "1" not in refused.stderr.replace("HTTP 401", ""), "an auth error names no token id"


def test_remote_mode_needs_both_settings(api: Api) -> None:
    env = {**api.env, "ROLLOUT_API_URL": api.url}
    result = subprocess.run(
        [ROLLOUT, "list"], env=env, capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    _refused(result, "ROLLOUT_TOKEN is not set")
    unreachable = {**env, "ROLLOUT_API_URL": "http://127.0.0.1:1", "ROLLOUT_TOKEN": "rollout_x"}
    result = subprocess.run(
        [ROLLOUT, "list"], env=unreachable, capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    _refused(result, "cannot reach the API at http://127.0.0.1:1")


def test_freezes_remotely_as_locally(api: Api) -> None:
    operator = api.token("--scope", "operator")
    team = api.token("--scope", "team", "--team", "search")

    frozen = api.remote(operator, "freeze", "prod-1", "--until", "2h", "--reason", "audit")
    assert frozen.returncode == 0, frozen.stderr
    assert frozen.stdout.startswith("environment prod-1 frozen until ")
    local, remote = api.local("freezes"), api.remote(team, "freezes")
    assert remote.returncode == 0, remote.stderr
    assert remote.stdout == local.stdout and "audit" in remote.stdout

    _refused(
        api.remote(team, "freeze", "prod-1", "--until", "1h", "--reason", "x"),
        "team token may not",
        "HTTP 403",
    )
    _refused(
        api.remote(operator, "freeze", "nowhere", "--until", "1h", "--reason", "x"),
        "unknown environment or service 'nowhere'",
        "HTTP 404",
    )
    _refused(
        api.remote(operator, "freeze", "prod-1", "--until", "2001-01-01T00:00", "--reason", "x"),
        "is not in the future",
        "HTTP 409",
    )
    lifted = api.remote(operator, "unfreeze", "prod-1")
    assert lifted.stdout == "environment prod-1 unfrozen\n"
    assert api.local("freezes").stdout == "nothing is frozen\n"
