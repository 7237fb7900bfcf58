"""The CLI in remote mode: a real `rollout api` process on the real PostgreSQL, tokens made
with `rollout token create`, and every command printing what local mode prints."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from jsonschema import Draft202012Validator, FormatChecker
from sqlalchemy import select, text

from rollout.cli.schemas import DOCS, OUTPUTS
from rollout.store.database import transaction
from rollout.store.models import Delivery, Page, PageEvent, Upgrade
from rollout.store.tokens import Scope, create_token
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
            # The reader's zone: where a time without a zone is read and tables show times.
            "TZ": "Europe/Paris",
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


def _seed_pages(url: str) -> None:
    """Two pages of checkout's rollout 1 an hour ago: one acknowledged, resolved and delivered
    by its webhook after two tries, one still open with no channel yet."""
    at = datetime.now(UTC) - timedelta(hours=1)
    with transaction(url) as session:
        upgrade = session.scalars(select(Upgrade).where(Upgrade.rollout_id == 1)).first()
        assert upgrade is not None
        for n, state in enumerate(("resolved", "open")):
            page = Page(
                dedup_key=f"rollout-1/health/{upgrade.environment}/{n}",
                team="payments",
                severity="P2",
                kind="failure",
                rollout_id=1,
                upgrade_id=upgrade.id,
                service="checkout",
                version=upgrade.to_version,
                environment=upgrade.environment,
                stage=upgrade.stage,
                gate="health",
                detail="error_rate 0.2 > 0.05 (http probe)",
                summary="gate health failed",
                state=state,
                created_at=at + timedelta(minutes=n),
                recipient="Ada Park" if n == 0 else None,
                role="primary" if n == 0 else None,
            )
            session.add(page)
            session.flush()
            if n == 0:
                session.add(
                    Delivery(
                        page_id=page.id,
                        channel="0:webhook",
                        action="trigger",
                        state="delivered",
                        attempts=2,
                        created_at=at,
                    )
                )
                session.add(
                    PageEvent(
                        page_id=page.id,
                        action="acknowledged",
                        actor="cli:test",
                        at=at + timedelta(minutes=4),
                    )
                )


def _hygiene_window_dropped(args: tuple[str, ...], stdout: str) -> str:
    """hygiene's window ends when each process ran: drop that, compare everything else."""
    if not args or args[0] != "hygiene":
        return stdout
    if "json" in args or "--json" in args:
        report = json.loads(stdout)
        assert report.pop("until") > report.pop("since")
        return json.dumps(report)
    return stdout.split("\n", 1)[1]


def _same(api: Api, token: str, *args: str) -> str:
    """Run `rollout ARGS` locally and remotely: the same exit code and byte-equal stdout (and
    stderr, when it succeeds); the remote stdout."""
    local, remote = api.local(*args), api.remote(token, *args)
    assert "Traceback" not in local.stderr + remote.stderr, (args, local.stderr, remote.stderr)
    assert remote.returncode == local.returncode, (args, local.stderr, remote.stderr)
    if local.returncode == 0:
        assert remote.stderr == local.stderr, args
    assert _hygiene_window_dropped(args, remote.stdout) == _hygiene_window_dropped(
        args, local.stdout
    ), args
    return remote.stdout


def _seed(api: Api) -> tuple[str, str]:
    """The state every comparison starts from, made without a CLI process (they are slow):
    an admin token, checkout 1.1.0 and search-api 2.0.0 submitted through the API by a
    pipeline token, two pages of rollout 1, and an agent token. (admin, pipeline) secrets."""
    url = api.env["ROLLOUT_DATABASE_URL"]
    with transaction(url) as session:
        session.execute(text(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE"))
    now = datetime.now(UTC)
    with transaction(url) as session:
        _, admin = create_token(session, Scope.ADMIN, now, note="both ways")
        _, pipeline = create_token(
            session, Scope.PIPELINE, now, services=["checkout", "search-api"], note="ci"
        )
        create_token(session, Scope.AGENT, now, environments=["canary-1"], note="pull agent")
    for service, version in (("checkout", "1.1.0"), ("search-api", "2.0.0")):
        made = httpx.post(
            api.url + "/v1/releases",
            json={"service": service, "version": version, "digest": DIGEST},
            headers={"Authorization": f"Bearer {pipeline}"},
            timeout=30,
        )
        assert made.status_code == 201, made.text
    _seed_pages(url)
    return admin, pipeline


FREEZE = ("freeze", "prod-1", "--until", "2030-01-01T10:00", "--reason", "audit")
SPAN = ("--from", "2030-03-31T08:00", "--until", "2030-03-31T10:00:00+02:00")

# Every command that only reads, run both ways on one state (seeded, and prod-1 frozen):
# one line adds a command.
READS: list[tuple[str, ...]] = [
    ("list",),
    ("list", "--service", "checkout"),
    ("list", "--team", "search", "--limit", "1"),
    ("list", "-o", "json"),
    ("list", "-o", "wide"),
    ("show", "1"),
    ("show", "2", "-o", "yaml"),
    ("show", "99"),
    ("oncall", "payments", "--at", "2026-03-29T08:30:00+02:00"),
    ("oncall", "payments", "--at", "2026-03-29T08:30"),
    ("oncall", "search", "--at", "2026-03-29T08:30:00Z", "-o", "json"),
    ("oncall", "nobody"),
    ("freezes",),
    ("freezes", "-o", "yaml"),
    ("pages",),
    ("pages", "--open"),
    ("pages", "--team", "search", "-o", "json"),
    ("hygiene",),
    ("hygiene", "--team", "payments", "--since", "2w", "--night-budget", "1"),
    ("hygiene", "--since", "2026-01-01T00:00"),
    ("hygiene", "--json"),
    ("token", "list"),
    ("token", "list", "-o", "json"),
    ("--utc", "freezes"),
    ("--utc", "oncall", "payments", "--at", "2026-03-29T06:30"),
    ("status", "1"),
    ("status", "checkout", "1.1.0", "-o", "json"),
    ("status", "99"),
    ("fleet",),
    ("fleet", "--service", "checkout", "-o", "wide"),
    ("fleet", "-o", "yaml"),
    ("history",),
    ("history", "checkout", "-o", "wide"),
    ("history", "--rollout", "1", "--since", "2026-01-01T00:00"),
    ("--utc", "history", "-o", "yaml"),
]


@dataclass(frozen=True)
class Write:
    """A command that changes something: each mode runs it on the same fresh state, after
    `before` (run locally) has set the scene."""

    argv: tuple[str, ...]
    before: tuple[tuple[str, ...], ...] = ()
    code: int = 0  # the exit code both modes give: 1 for a refusal


# Every command that writes: one line adds a command.
WRITES: list[Write] = [
    Write(FREEZE),
    Write(("freeze", "nowhere", "--until", "2h", "--reason", "x"), code=1),
    Write(("unfreeze", "prod-1"), before=(FREEZE,)),
    Write(("unfreeze", "prod-1")),
    Write(("pause", "1", "--reason", "look first")),
    Write(("resume", "1"), before=(("pause", "1"),)),
    Write(("abort", "2", "--reason", "bad build")),
    Write(("retry", "2"), before=(("abort", "2"),)),
    Write(("promote", "1"), code=1),
    Write(("promote", "1", "--force", "--reason", "hotfix")),
    Write(("promote", "1", "--force"), code=1),
    Write(("skip", "1", "prod-1", "--reason", "host retired")),
    Write(("skip", "1", "nowhere", "--reason", "x"), code=1),
    Write(("recall", "checkout", "1.1.0", "--reason", "leaks memory")),
    Write(("recall", "checkout", "9.9.9"), code=1),
    Write(("override", "payments", "--member", "Ada Park", *SPAN)),
    Write(("override", "payments", "--member", "Ada Park", "--role", "secondary", *SPAN)),
    Write(("override", "payments", "--member", "Mallory", *SPAN), code=1),
    Write(("ack", "2")),
    Write(("resolve", "2")),
    Write(("resolve", "99"), code=1),
    Write(("misrouted", "2", "--to", "search", "--note", "theirs")),
    Write(("not-actionable", "1", "--reason", "flaky probe")),
    Write(("token", "revoke", "3")),
]


def test_every_read_command_prints_the_same_in_both_modes(api: Api) -> None:
    admin, _ = _seed(api)
    assert api.local(*FREEZE).returncode == 0
    printed = {args: _same(api, admin, *args) for args in READS}

    pages = printed[("pages",)]
    assert "Ada Park (primary)" in pages and "webhook delivered (2 tries)" in pages
    assert "no channel" in pages and "Ada Park" not in printed[("pages", "--open")]
    assert "canary-1" in printed[("token", "list")], "an agent token's environments are listed"
    assert "2030-01-01 10:00:00 CET" in printed[("freezes",)]
    assert "2030-01-01 09:00:00 UTC" in printed[("--utc", "freezes")]
    assert (
        printed[("oncall", "payments", "--at", "2026-03-29T08:30")]
        == (printed[("oncall", "payments", "--at", "2026-03-29T08:30:00+02:00")])
    ), "a time without a zone is the reader's"


def test_every_write_command_prints_the_same_in_both_modes(api: Api) -> None:
    # One API process for them all (starting one is slow); each mode of each command runs
    # on the same fresh state.
    differ = []
    for write in WRITES:
        outputs = []
        for mode in ("local", "remote"):
            admin, _ = _seed(api)
            for step in write.before:
                done = api.local(*step)
                assert done.returncode == 0, (step, done.stderr)
            ran = api.local(*write.argv) if mode == "local" else api.remote(admin, *write.argv)
            assert "Traceback" not in ran.stderr, (write.argv, ran.stderr)
            outputs.append(ran)
        local, remote = outputs
        if (remote.returncode, remote.stdout) != (write.code, local.stdout) or (
            local.returncode != write.code
        ):
            differ.append((write.argv, local, remote))
    assert differ == [], "\n".join(
        f"{argv}: local {local.returncode} {local.stdout!r} {local.stderr!r}, "
        f"remote {remote.returncode} {remote.stdout!r} {remote.stderr!r}"
        for argv, local, remote in differ
    )


# Each reading command's -o json, and the API's body for the same thing: the pairs the
# schema test checks (a command in rollout.cli.schemas.OUTPUTS needs a line here).
BODIES: dict[str, tuple[tuple[str, ...], str]] = {
    "list": (("list", "-o", "json"), "/v1/rollouts?limit=50"),
    "show": (("show", "1", "-o", "json"), "/v1/rollouts/1"),
    "pages": (("pages", "-o", "json"), "/v1/pages?limit=50"),
    "oncall": (
        ("oncall", "payments", "--at", "2026-03-29T08:30:00+02:00", "-o", "json"),
        "/v1/teams/payments/oncall?at=2026-03-29T08:30:00%2B02:00",
    ),
    "freezes": (("freezes", "-o", "json"), "/v1/freezes"),
    "token-list": (("token", "list", "-o", "json"), "/v1/tokens"),
    "hygiene": (("hygiene", "-o", "json"), "/v1/hygiene?since=30d"),
    "status": (("status", "1", "-o", "json"), "/v1/rollouts/1/status"),
    "fleet": (("fleet", "-o", "json"), "/v1/fleet"),
    "history": (("history", "-o", "json"), "/v1/events?since=7d"),
}


def test_json_output_validates_against_its_schema_and_is_the_apis_body(api: Api) -> None:
    assert set(BODIES) == set(OUTPUTS), "every command with a schema is checked here"
    admin, _ = _seed(api)
    assert api.local(*FREEZE).returncode == 0
    for command, (args, path) in BODIES.items():
        schema = json.loads((ROOT / DOCS / f"{command}.json").read_text(encoding="utf-8"))
        validator = Draft202012Validator(schema, format_checker=FormatChecker())
        printed = api.local(*args)
        # status exits 2: no worker moves the seeded rollouts, so they are in progress.
        assert printed.returncode == (2 if command == "status" else 0), (args, printed.stderr)
        output = json.loads(printed.stdout)
        assert output, args
        errors = [e.message for e in validator.iter_errors(output)]
        assert errors == [], (command, errors)
        served = httpx.get(api.url + path, headers={"Authorization": f"Bearer {admin}"}, timeout=30)
        assert served.status_code == 200, served.text
        body = served.json()
        if command == "hygiene":
            for report in (output, body):
                report.pop("since"), report.pop("until")
        assert output == body, command


def test_people_commands_work_remotely_as_locally(api: Api) -> None:
    pipeline = api.token("--scope", "pipeline", "--service", "checkout")
    operator = api.token("--scope", "operator")
    team = api.token("--scope", "team", "--team", "search")
    assert api.remote(pipeline, "submit", "checkout", "1.1.0", "--digest", DIGEST).returncode == 0
    _seed_pages(api.env["ROLLOUT_DATABASE_URL"])

    span = ("--from", "2026-03-29T08:00:00+02:00", "--until", "2026-03-29T10:00:00+02:00")
    covered = api.remote(operator, "override", "payments", "--member", "Ada Park", *span)
    assert covered.returncode == 0, covered.stderr
    assert covered.stdout == (
        "override 1: Ada Park covers payments's primary from 2026-03-29 08:00 CEST to "
        "2026-03-29 10:00 CEST\n"
    )
    on_call = _same(api, operator, "oncall", "payments", "--at", "2026-03-29T08:30:00+02:00")
    assert "primary: Ada Park — override" in on_call
    _refused(
        api.remote(operator, "override", "payments", "--member", "Mallory", *span),
        "not a member of team 'payments'",
        "HTTP 422",
    )
    _refused(
        api.remote(team, "override", "payments", "--member", "Ada Park", *span),
        "belongs to team payments",
        "HTTP 403",
    )

    acked = api.remote(operator, "ack", "2")
    assert acked.stdout == "page 2: acknowledge recorded; it is acknowledged\n", acked.stderr
    moved = api.remote(operator, "misrouted", "2", "--to", "search", "--note", "theirs")
    assert moved.returncode == 0, moved.stderr
    assert moved.stdout.startswith(
        "page 2: misrouted recorded; it is resolved\nteam search paged: page 3, to "
    )
    _refused(api.remote(operator, "resolve", "99"), "no page 99", "HTTP 404")
    local = api.local("not-actionable", "1", "--reason", "flaky probe")
    assert local.stdout == "page 1: not_actionable recorded; it is resolved\n", local.stderr
    _refused(api.remote(team, "hygiene", "--team", "payments"), "team search's", "HTTP 403")
    _refused(api.remote(operator, "hygiene", "--team", "nobody"), "unknown team 'nobody'")
    _same(api, operator, "pages")
