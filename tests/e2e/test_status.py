"""The CI contract against the real stack: `rollout status --wait` and `submit --wait` exit
0, 1, 2, 3 and 4 as documented, a CI-like script fails on a bad release, `--watch` ends by
itself, and the remote CLI (a real `rollout api` process) prints what the local one does."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import yaml

from rollout.config import Fault
from rollout.drivers.simulated import SimulatedFleet
from tests.conftest import FIXTURES, ROLLOUT, ROOT, Cluster
from tests.e2e.test_remote_cli import Api
from tests.waiting import wait_for

pytestmark = pytest.mark.e2e


@pytest.fixture
def api(cluster: Cluster, simulator: SimulatedFleet, tmp_path: Path) -> Iterator[Api]:
    """A real API process on the cluster's database: what it submits, the workers move."""
    server = Api(cluster.database_url, tmp_path)
    try:
        wait_for(server.ready, 30, "the API to be ready")
        yield server
    finally:
        server.stop()


def _rollout_id(submitted: subprocess.CompletedProcess[str]) -> int:
    assert submitted.returncode == 0, submitted.stderr
    first = submitted.stdout.splitlines()[0]
    return int(first.rsplit("rollout ", 1)[1])


def _spawn(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [ROLLOUT, *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )


def _ci_script(env: dict[str, str], service: str, version: str) -> subprocess.CompletedProcess[str]:
    """What a pipeline's deploy step does: submit, wait, and only then go on."""
    script = f"set -e\n{ROLLOUT} submit {service} {version} --wait --timeout 2m\necho DEPLOYED\n"
    return subprocess.run(
        ["bash", "-c", script], env=env, capture_output=True, text=True, timeout=180, cwd=ROOT
    )


def test_a_ci_script_passes_a_good_release_and_fails_a_bad_one(
    cluster: Cluster, simulator: SimulatedFleet
) -> None:
    simulator.inject(Fault(service="search-api", version="2.0.0-bad", health="unhealthy"))
    bad = subprocess.Popen(
        ["bash", "-c", f"set -e\n{ROLLOUT} submit search-api 2.0.0-bad --wait\necho DEPLOYED\n"],
        env=cluster.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    good = _ci_script(cluster.env, "checkout", "1.1.0")
    assert good.returncode == 0, good.stdout + good.stderr
    assert good.stdout.rstrip().endswith("DEPLOYED")
    assert "succeeded (exit 0): succeeded: 6 of 6 environments upgraded" in good.stdout

    out, errors = bad.communicate(timeout=120)
    assert bad.returncode == 1, out + errors
    assert "DEPLOYED" not in out
    assert "failed (exit 1): failed:" in out and "health" in out

    # Asked again afterwards, by release: the same verdicts, at once.
    assert cluster.rollout("status", "checkout", "1.1.0", "--wait").returncode == 0
    failed = cluster.rollout("status", "search-api", "2.0.0-bad", "-o", "json")
    assert failed.returncode == 1
    body = json.loads(failed.stdout)
    assert body["state"] == "failed" and body["verdict"]["exit_code"] == 1
    assert body["counts"]["rolled_back"] == 1


def test_not_found_exits_4_in_one_line(cluster: Cluster, simulator: SimulatedFleet) -> None:
    # An id past the column's type is no rollout either, not a database error.
    for args in (
        ("status", "999"),
        ("status", "2147483648"),
        ("status", "checkout", "9.9.9", "--wait"),
    ):
        started = time.monotonic()
        missing = cluster.rollout(*args)
        assert missing.returncode == 4, missing.stderr
        assert missing.stderr.startswith("error: no rollout") and "Traceback" not in missing.stderr
        assert time.monotonic() - started < 20, "not found is said at once, not waited for"
    wrong = cluster.rollout("status", "nine")
    assert wrong.returncode not in (0, 4) and wrong.stderr.startswith("error: expected a rollout")
    timeout = cluster.rollout("submit", "checkout", "1.1.0", "--wait", "--timeout", "soon")
    assert timeout.returncode == 1 and timeout.stderr.startswith("error: --timeout: invalid")
    assert cluster.rollout("status", "checkout", "1.1.0").returncode == 4, "nothing submitted"


def test_a_paused_rollout_is_still_in_progress_at_the_timeout(
    cluster: Cluster, simulator: SimulatedFleet
) -> None:
    # Frozen first, so nothing has started when it is paused; lifted, the pause holds it.
    assert cluster.rollout("freeze", "checkout", "--until", "1h", "--reason", "x").returncode == 0
    rollout_id = _rollout_id(cluster.rollout("submit", "checkout", "1.1.0"))
    assert cluster.rollout("pause", str(rollout_id), "--reason", "release notes").returncode == 0
    assert cluster.rollout("unfreeze", "checkout").returncode == 0

    started = time.monotonic()
    waited = cluster.rollout("status", str(rollout_id), "--wait", "--timeout", "2s")
    assert waited.returncode == 2, waited.stdout + waited.stderr
    assert time.monotonic() - started >= 2, "it waited for the timeout"
    assert "in_progress (exit 2)" in waited.stdout and "release notes" in waited.stdout


def test_a_freeze_past_the_timeout_exits_3_at_once_locally_and_remotely(api: Api) -> None:
    assert api.local("freeze", "canary-1", "--until", "2h", "--reason", "audit").returncode == 0
    pipeline = api.token("--scope", "pipeline", "--service", "checkout")

    started = time.monotonic()
    held = api.remote(pipeline, "submit", "checkout", "1.1.0", "--wait", "--timeout", "30m")
    assert held.returncode == 3, held.stdout + held.stderr
    assert time.monotonic() - started < 20, "a hold past the deadline is said at once"
    assert "held past the deadline: canary-1: environment canary-1 frozen until" in held.stdout

    # Within a timeout that outlasts the freeze, it is only in progress.
    longer = api.local("status", "1", "--timeout", "3h")
    assert longer.returncode == 2, longer.stdout
    local, remote = api.local("status", "1"), api.remote(pipeline, "status", "1")
    assert (local.returncode, remote.returncode) == (3, 3)
    assert remote.stdout == local.stdout


def test_watchers_end_by_themselves_and_remote_prints_what_local_does(api: Api) -> None:
    operator = api.token("--scope", "operator")
    pipeline = api.token("--scope", "pipeline", "--service", "checkout")
    # Frozen while the watchers start, so each sees the rollout before it ends; for less
    # than their timeouts, or `status --watch` would end at once, held (exit 3).
    assert api.local("freeze", "checkout", "--until", "3m", "--reason", "x").returncode == 0
    rollout_id = _rollout_id(api.remote(pipeline, "submit", "checkout", "1.1.0"))
    remote_env = {**api.env, "ROLLOUT_API_URL": api.url, "ROLLOUT_TOKEN": operator}
    watchers = {
        "status": _spawn(api.env, "status", str(rollout_id), "--watch", "--timeout", "5m"),
        "remote status": _spawn(remote_env, "status", str(rollout_id), "--watch"),
        "show": _spawn(api.env, "show", str(rollout_id), "--watch"),
        "remote show": _spawn(remote_env, "show", str(rollout_id), "--watch"),
        "list": _spawn(api.env, "list", "--service", "checkout", "--watch"),
    }
    # The API's event stream answers at once with the rollout as it is.
    with httpx.stream(
        "GET",
        f"{api.url}/v1/rollouts/{rollout_id}/events",
        params={"wait": "0s"},
        headers={"Authorization": f"Bearer {pipeline}"},
        timeout=10,
    ) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        events = [line for line in stream.iter_lines() if line.startswith("data: ")]
    assert len(events) == 1 and json.loads(events[0][6:])["state"] == "running"
    # Each watcher has printed the frozen rollout before it is let go.
    first = {}
    for name, watcher in watchers.items():
        assert watcher.stdout is not None
        first[name] = watcher.stdout.readline()
        assert f"rollout {rollout_id} checkout 1.1.0" in first[name], (name, first[name])
    assert api.local("unfreeze", "checkout").returncode == 0

    for name, watcher in watchers.items():
        rest, errors = watcher.communicate(timeout=120)
        assert watcher.returncode == 0, (name, first[name], rest, errors)
        # Piped, each new state is a line: the frozen one first, then on to success.
        if name != "list":
            assert "frozen until" in first[name], (name, first[name])
        assert "succeeded" in rest.splitlines()[-1] or "succeeded" in rest, (name, rest)
        assert "\x1b[" not in first[name] + rest, name

    # Final now: the JSON is the API's body; remote and local print the same.
    local_json = api.local("status", str(rollout_id), "-o", "json")
    body = httpx.get(
        f"{api.url}/v1/rollouts/{rollout_id}/status",
        params={"within": "30m"},
        headers={"Authorization": f"Bearer {pipeline}"},
    ).json()
    assert json.loads(local_json.stdout) == body and body["verdict"]["exit_code"] == 0
    for args in (("status", str(rollout_id)), ("status", "checkout", "1.1.0", "-o", "json")):
        local, remote = api.local(*args), api.remote(pipeline, *args)
        assert (local.returncode, remote.returncode) == (0, 0), remote.stderr
        assert remote.stdout == local.stdout, args
    # The pipeline reads its own rollout's story, not another service's.
    assert api.remote(pipeline, "show", str(rollout_id)).returncode == 0


def test_a_window_days_away_exits_3_at_once_and_names_the_opening(
    cluster: Cluster, simulator: SimulatedFleet, tmp_path: Path
) -> None:
    opening = (datetime.now(UTC) + timedelta(days=3)).replace(
        hour=2, minute=0, second=0, microsecond=0
    )
    data = yaml.safe_load((FIXTURES / "fleet.yaml").read_text())
    day = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")[opening.weekday()]
    window = {"days": [day], "start": "02:00", "end": "03:00", "zone": "UTC"}
    data["environments"][0]["windows"] = [window]  # canary-1
    config = tmp_path / "fleet.yaml"
    config.write_text(yaml.safe_dump(data))

    started = time.monotonic()
    held = cluster.rollout("submit", "search-api", "9.2.0", "--config", str(config), "--wait")
    assert held.returncode == 3, held.stdout + held.stderr
    assert time.monotonic() - started < 20, "a window days away is said at once"
    assert (
        f"held past the deadline: canary-1: maintenance window opens at "
        f"{opening:%Y-%m-%d %H:%M:%S} UTC" in held.stdout
    )
    # When the hold clears is in the body, read from the plan's windows.
    body = json.loads(cluster.rollout("status", "search-api", "9.2.0", "-o", "json").stdout)
    canary = next(h for h in body["holds"] if h["environments"] == ["canary-1"])
    assert (canary["kind"], canary["clears_at"]) == ("window", f"{opening:%Y-%m-%dT%H:%M:%SZ}")
    # A caller prepared to wait past the opening is told it is in progress instead.
    assert cluster.rollout("status", "search-api", "9.2.0", "--timeout", "4d").returncode == 2
