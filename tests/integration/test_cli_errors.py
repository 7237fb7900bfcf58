"""Every user mistake on the command line, as a process: a non-zero exit, exactly one line on
stderr naming the value or path (echoed input cut short, secrets masked), never a traceback;
on SQLite and, where the database matters, on PostgreSQL."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import FIXTURES, ROLLOUT
from tests.e2e.test_remote_cli import Api, api, api_database_url

__all__ = ["api", "api_database_url"]  # the fixtures, shared with the remote CLI's tests

pytestmark = pytest.mark.integration

BEYOND_POSTGRESQL = str(2**31)  # one past PostgreSQL's integer: the ids' columns
BEYOND_SQLITE = str(2**64)  # past SQLite's 64-bit integer
TEN_KB = "1" * 10_000
DIGEST = "sha256:" + "0f" * 32
PASSWORD = "hunter2"

# Every command that takes an id, with "{id}" where the id goes.
ID_COMMANDS = [
    ("show", "{id}"),
    ("pause", "{id}"),
    ("resume", "{id}"),
    ("abort", "{id}"),
    ("retry", "{id}"),
    ("promote", "{id}"),
    ("ack", "{id}"),
    ("resolve", "{id}"),
    ("misrouted", "{id}", "--to", "search"),
    ("not-actionable", "{id}", "--reason", "noise"),
    ("token", "revoke", "{id}"),
    ("skip", "{id}", "prod-1", "--reason", "stuck"),
    ("history", "--rollout", "{id}"),
]


def cli(
    home: Path, *args: str, config: Path = FIXTURES / "fleet.yaml", **env: str
) -> subprocess.CompletedProcess[str]:
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith("ROLLOUT_")},
        "ROLLOUT_DATA_DIR": str(home / "data"),
        "ROLLOUT_CONFIG": str(config),
        "COLUMNS": "200",
        **env,
    }
    return subprocess.run(
        [ROLLOUT, *args], env=environment, capture_output=True, text=True, timeout=60, cwd=home
    )


def one_line(result: subprocess.CompletedProcess[str], *fragments: str) -> str:
    """The one error line, after checking it names each fragment and is no traceback."""
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr[-2000:]
    assert lines[0].startswith("error: "), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def ready(tmp_path: Path) -> Path:
    result = cli(tmp_path, "db", "upgrade")
    assert result.returncode == 0, result.stderr
    return tmp_path


def _with_id(command: tuple[str, ...], value: str) -> list[str]:
    return [value if part == "{id}" else part for part in command]


@pytest.mark.parametrize("command", ID_COMMANDS, ids=lambda c: " ".join(c[:2]))
@pytest.mark.parametrize("value", [BEYOND_POSTGRESQL, BEYOND_SQLITE, "0", "-5", "seven", ""])
def test_an_id_that_cannot_be_a_row_is_refused_on_sqlite(
    ready: Path, command: tuple[str, ...], value: str
) -> None:
    one_line(cli(ready, *_with_id(command, value)), value or "''")


@pytest.mark.parametrize("command", ID_COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_an_id_past_postgresql_integer_is_refused(
    tmp_path: Path, postgres_url: str, command: tuple[str, ...]
) -> None:
    result = cli(tmp_path, *_with_id(command, BEYOND_POSTGRESQL), ROLLOUT_DATABASE_URL=postgres_url)
    one_line(result, repr(BEYOND_POSTGRESQL), "2147483647")


def test_the_largest_id_reaches_postgresql(tmp_path: Path, postgres_url: str) -> None:
    largest = str(2**31 - 1)
    one_line(
        cli(tmp_path, "show", largest, ROLLOUT_DATABASE_URL=postgres_url), f"no rollout {largest}"
    )
    one_line(cli(tmp_path, "ack", largest, ROLLOUT_DATABASE_URL=postgres_url), f"no page {largest}")


def test_a_ten_kilobyte_id_is_cut(ready: Path) -> None:
    line = one_line(cli(ready, "show", TEN_KB), "…")
    assert len(line) < 300, line


@pytest.mark.parametrize(
    ("url", "fragments"),
    [
        ("not-a-url", ["ROLLOUT_DATABASE_URL", "'not-a-url'"]),
        ("nosuch://rollout:hunter2@db.example/x", ["ROLLOUT_DATABASE_URL", "nosuch"]),
        # No driver named: SQLAlchemy's default for it (psycopg2) is not installed.
        ("postgresql://rollout:hunter2@127.0.0.1:1/x", ["ROLLOUT_DATABASE_URL", "rollout:***@"]),
        ("postgresql+psycopg//rollout:hunter2@db.example/x", ["ROLLOUT_DATABASE_URL", "***"]),
        ("postgresql+psycopg://rollout:hunter2@127.0.0.1:1/x", ["rollout:***@127.0.0.1:1/x"]),
    ],
)
def test_a_database_url_that_does_not_work_is_named_with_its_password_masked(
    tmp_path: Path, url: str, fragments: list[str]
) -> None:
    for args in (["list"], ["db", "upgrade"], ["submit", "checkout", "1.0.0"]):
        line = one_line(cli(tmp_path, *args, ROLLOUT_DATABASE_URL=url), *fragments)
        assert PASSWORD not in line
        assert "db upgrade" not in line, line  # migrating cannot help


def test_a_data_directory_below_a_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "plain").write_text("not a directory")
    data = tmp_path / "plain" / "data"
    for args in (["list"], ["db", "upgrade"], ["submit", "checkout", "1.0.0"]):
        line = one_line(cli(tmp_path, *args, ROLLOUT_DATA_DIR=str(data)), str(data))
        assert "ROLLOUT_DATA_DIR" in line and "db upgrade" not in line


def test_a_data_directory_that_cannot_be_written_is_named(tmp_path: Path) -> None:
    # /proc: a directory no process may create a file in, root included (a read-only mount
    # or a chmod would not stop root, which CI may run as).
    for args in (["list"], ["db", "upgrade"], ["show", "1"]):
        line = one_line(cli(tmp_path, *args, ROLLOUT_DATA_DIR="/proc"), "/proc/rollout.db")
        assert "ROLLOUT_DATA_DIR" in line and "db upgrade" not in line, line


def test_a_database_without_the_schema_still_says_to_upgrade(tmp_path: Path) -> None:
    one_line(cli(tmp_path, "list"), "rollout db upgrade")


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("ROLLOUT_LEASE_SECONDS", "abc"),
        ("ROLLOUT_METRICS_PORT", "99999"),
        ("ROLLOUT_LOG_FORMAT", "bogus"),
        ("ROLLOUT_TICK_SECONDS", "x" + TEN_KB),
        ("ROLLOUT_BROKER_URL", "not-a-url"),
    ],
)
def test_a_setting_that_does_not_parse_is_named(tmp_path: Path, variable: str, value: str) -> None:
    line = one_line(cli(tmp_path, "list", **{variable: value}), variable)
    assert value[:20] in line and len(line) < 300, line


def test_a_broker_url_that_is_no_url_is_named_with_its_password_masked(tmp_path: Path) -> None:
    for args in (["list"], ["ticker"], ["worker"]):
        result = cli(tmp_path, *args, ROLLOUT_BROKER_URL=f"redis:/rollout:{PASSWORD}@broker")
        line = one_line(result, "ROLLOUT_BROKER_URL", "'redis:/rollout:***@broker'", "not a URL")
        assert PASSWORD not in line


def test_a_config_value_of_ten_kilobytes_is_cut(ready: Path) -> None:
    config = ready / "long.yaml"
    fleet = (FIXTURES / "fleet.yaml").read_text()
    config.write_text(fleet.replace("name: checkout", "name: " + "x" * 10_000, 1))
    for args in (["config", "validate", str(config)], ["submit", "ledger", "1", "-c", str(config)]):
        line = one_line(cli(ready, *args), str(config), "invalid name", "…")
        assert len(line) < 400, line


def test_a_ten_kilobyte_version_is_cut(ready: Path) -> None:
    line = one_line(cli(ready, "submit", "search-api", TEN_KB), "malformed version", "…")
    assert len(line) < 300, line


def test_a_digest_added_on_resubmission_is_refused(ready: Path) -> None:
    assert cli(ready, "submit", "checkout", "1.2.0").returncode == 0
    one_line(
        cli(ready, "submit", "checkout", "1.2.0", "--digest", DIGEST),
        "checkout 1.2.0",
        "without a digest",
    )
    # The same release again, as it was first submitted, is still the same release.
    again = cli(ready, "submit", "checkout", "1.2.0")
    assert again.returncode == 0 and "already submitted: rollout 1" in again.stdout


def test_a_digest_added_on_resubmission_is_refused_on_postgresql(
    tmp_path: Path, postgres_url: str
) -> None:
    version = f"1.2.{os.getpid()}"  # the session's database is shared with other tests
    first = cli(tmp_path, "submit", "ledger", version, ROLLOUT_DATABASE_URL=postgres_url)
    assert first.returncode == 0, first.stderr
    refused = cli(
        tmp_path, "submit", "ledger", version, "--digest", DIGEST, ROLLOUT_DATABASE_URL=postgres_url
    )
    one_line(refused, f"ledger {version}", "without a digest")


# Bad input to every command: (arguments, fragments of the one line). Each runs on a migrated
# SQLite database; "{tmp}" is the test's directory.
SPAN = ["--from", "2026-01-01T00:00Z", "--until", "2026-01-02T00:00Z"]
EXTREMES = ["--from", "0001-01-01T00:00:00+23:59", "--until", "9999-12-31T23:59:59-23:59"]
SWEEP: list[tuple[list[str], list[str]]] = [
    (["submit", "nosuch", "1.0"], ["unknown service 'nosuch'"]),
    (["submit", "", "1.0"], ["unknown service ''"]),
    (["submit", "search-api", ""], ["malformed version ''"]),
    (["submit", TEN_KB, "1.0"], ["unknown service", "…"]),
    (["submit", "search-api", "1.0", "--digest", TEN_KB], ["malformed digest", "…"]),
    (["show", ""], ["''"]),
    (["list", "--state", "bogus"], ["unknown state 'bogus'"]),
    (["list", "--state", TEN_KB], ["unknown state", "…"]),
    (["list", "--limit", "0"], ["--limit", "0"]),
    (["list", "-o", "bogus"], ["'bogus'"]),
    (["freeze", "nosuch", "--until", "2h", "--reason", "x"], ["'nosuch'"]),
    (["freeze", TEN_KB, "--until", "2h", "--reason", "x"], ["unknown", "…"]),
    (["freeze", "search-api", "--until", "bogus", "--reason", "x"], ["--until", "'bogus'"]),
    (["freeze", "search-api", "--until", "x" + TEN_KB, "--reason", "x"], ["--until", "…"]),
    (["freeze", "search-api", "--until", "2h", "--reason", ""], ["reason"]),
    (["freeze", "search-api", "--until", "2h", "--reason", "x", "--kind", "bogus"], ["'bogus'"]),
    (["oncall", "nosuch"], ["unknown team 'nosuch'"]),
    (["oncall", TEN_KB], ["unknown team", "…"]),
    (["oncall", "payments", "--at", "bogus"], ["'bogus'"]),
    (
        ["override", "payments", "--member", TEN_KB, *SPAN],
        ["not a member", "…"],
    ),
    (
        ["override", "payments", "--member", "Ada Park", *SPAN, "--role", "bogus"],
        ["unknown role 'bogus'"],
    ),
    (["pages", "--limit", "0"], ["--limit", "0"]),
    (["hygiene", "--since", "bogus"], ["--since", "'bogus'"]),
    (["hygiene", "--since", "x" + TEN_KB], ["--since", "…"]),
    (["hygiene", "--team", "nosuch"], ["unknown team 'nosuch'"]),
    (["hygiene", "--night-budget", "-1"], ["--night-budget", "-1"]),
    (["recall", "nosuch", "1.0"], ["no release nosuch 1.0"]),
    (["recall", "search-api", TEN_KB], ["no release", "…"]),
    (["token", "create", "--scope", "bogus"], ["unknown scope 'bogus'"]),
    (["token", "create", "--scope", "pipeline", "--service", "nosuch"], ["nosuch"]),
    (["token", "create", "--scope", "team", "--team", TEN_KB], ["unknown team", "…"]),
    (["misrouted", "1", "--to", "nosuch"], ["unknown team 'nosuch'"]),
    (["config", "validate", "{tmp}/missing.yaml"], ["{tmp}/missing.yaml"]),
    (["config", "validate", "{tmp}/empty"], ["{tmp}/empty", "no *.yaml"]),
    (["submit", "search-api", "1.0", "-c", "{tmp}/missing.yaml"], ["{tmp}/missing.yaml"]),
    (["submit", "search-api", "1.0", "-c", "{tmp}/empty"], ["{tmp}/empty"]),
    (["worker", "--pool", "bogus"], ["unknown pool 'bogus'"]),
    (["worker", "--concurrency", "0"], ["--concurrency", "0"]),
    (["api", "--port", "99999"], ["--port", "99999"]),
    (["agent"], ["'config'"]),
    (["demo", "--bogus"], ["--bogus"]),
    (["nosuchcommand"], ["nosuchcommand"]),
    (["status", "search-api", TEN_KB], ["no rollout of search-api", "…"]),
    (["oncall", "payments", "--at", "9999-12-31T23:59:59-23:59"], ["--at", "out of range"]),
    (["oncall", "payments", "--at", "0001-01-01T00:00:00+23:59"], ["--at", "out of range"]),
    (
        ["override", "payments", "--member", "Ada Park", *EXTREMES],
        ["0001-01-01T00:00:00+23:59", "out of range"],
    ),
    (["hygiene", "--since", "99999999d"], ["--since", "out of range", "99999999d"]),
    (["demo", "-c", "{tmp}/empty"], ["{tmp}/empty", "no *.yaml"]),
    (["show"], ["'rollout_id'"]),
]


@pytest.mark.parametrize(("args", "fragments"), SWEEP, ids=lambda v: " ".join(v)[:40])
def test_bad_input_to_every_command(ready: Path, args: list[str], fragments: list[str]) -> None:
    (ready / "empty").mkdir(exist_ok=True)
    tmp = str(ready)
    line = one_line(
        cli(ready, *[a.replace("{tmp}", tmp) for a in args]),
        *[f.replace("{tmp}", tmp) for f in fragments],
    )
    assert len(line) < 400, line


@pytest.mark.e2e
def test_a_token_the_api_does_not_know_is_one_line(api: Api) -> None:
    for args in (["list"], ["show", "1"], ["submit", "checkout", "1.0.0"]):
        one_line(api.remote("rollout_" + "x" * 40, *args), "HTTP 401")


@pytest.mark.e2e
def test_ids_and_long_input_through_the_api(api: Api) -> None:
    operator = api.token("--scope", "operator")
    pipeline = api.token("--scope", "pipeline", "--service", "checkout")
    one_line(api.remote(operator, "show", BEYOND_POSTGRESQL), BEYOND_POSTGRESQL)
    line = one_line(api.remote(pipeline, "submit", "checkout", TEN_KB), "HTTP 422")
    assert len(line) < 300, line
    line = one_line(api.remote(operator, "freeze", TEN_KB, "--until", "2h", "--reason", "x"))
    assert len(line) < 300, line
    assert api.remote(pipeline, "submit", "checkout", "1.3.0").returncode == 0
    one_line(
        api.remote(pipeline, "submit", "checkout", "1.3.0", "--digest", DIGEST),
        "without a digest",
        "HTTP 409",
    )


@pytest.mark.parametrize(
    ("url", "token", "fragments"),
    [
        ("http://127.0.0.1:1", "rollout_x", ["cannot reach the API at http://127.0.0.1:1"]),
        ("not-a-url", "rollout_x", ["ROLLOUT_API_URL", "'not-a-url'"]),
        ("ftp://api.example", "rollout_x", ["ROLLOUT_API_URL", "'ftp://api.example'"]),
        ("http://127.0.0.1:1", "", ["ROLLOUT_TOKEN is not set"]),
        (
            "http://rollout:hunter2@127.0.0.1:1",
            "rollout_x",
            ["cannot reach the API at http://rollout:***@127.0.0.1:1"],
        ),
    ],
)
def test_an_api_that_cannot_be_asked_is_named(
    tmp_path: Path, url: str, token: str, fragments: list[str]
) -> None:
    for args in (["list"], ["show", "1"], ["submit", "checkout", "1.0.0"]):
        line = one_line(cli(tmp_path, *args, ROLLOUT_API_URL=url, ROLLOUT_TOKEN=token), *fragments)
        assert PASSWORD not in line
