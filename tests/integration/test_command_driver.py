"""The command driver with real processes: inert arguments, idempotent starts, timeouts."""

from __future__ import annotations

import json
import os
import signal
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from rollout.drivers import (
    DeployPhase,
    DeployRequest,
    DeployStatus,
    DriverError,
    Health,
)
from rollout.drivers.command import CommandDriver, CommandSpec
from rollout.engine.backends import Backends
from rollout.plan.driver import CommandDriverSpec
from tests.waiting import wait_for

# The deploy "tool": records each run and its argv, prints, then does what its mode says.
SCRIPT = textwrap.dedent(
    """\
    import json, os, sys, time
    record, mode = sys.argv[1], sys.argv[2]
    with open(record + ".runs", "a") as runs:
        runs.write(f"{os.getpid()}\\n")
    with open(record + ".argv", "w") as out:
        json.dump(sys.argv[3:], out)
    print("deploying", *sys.argv[3:], flush=True)
    if mode == "fail":
        print("error: chart not found", flush=True)
        sys.exit(3)
    if mode == "hang":
        time.sleep(3600)
    if mode == "noisy":
        sys.stdout.write("x" * 200_000 + "\\nlast line\\n")
    """
)


@pytest.fixture
def script(tmp_path: Path) -> Path:
    path = tmp_path / "deploy_tool.py"
    path.write_text(SCRIPT)
    return path


def _driver(tmp_path: Path, script: Path, mode: str = "ok", **extra: Any) -> CommandDriver:
    record = str(tmp_path / "record")
    spec = {
        "type": "command",
        "poll_interval_s": 0.1,
        "deploy_timeout_s": 60.0,
        "status": None,
        "remove": None,
        "health": None,
        "health_timeout_s": 30.0,
        "deploy": [
            *(sys.executable, str(script), record, mode),
            *("{service}", "{version}", "{environment}", "--key={key}"),
        ],
        "timeout_s": 30.0,
        "state_dir": str(tmp_path / "state"),
        **extra,
    }
    driver = Backends.real("sqlite://", "sqlite://").driver(CommandDriverSpec.model_validate(spec))
    assert isinstance(driver, CommandDriver)
    return driver


def _finished(driver: CommandDriver, key: str, timeout: float = 20.0) -> DeployStatus:
    def done() -> DeployStatus | None:
        status = driver.status(key)
        return None if status.phase is DeployPhase.RUNNING else status

    status = wait_for(done, timeout, f"deploy {key} to finish")
    assert status is not None
    return status


def _runs(tmp_path: Path) -> list[str]:
    path = tmp_path / "record.runs"
    return path.read_text().split() if path.exists() else []


def test_a_deploy_runs_once_per_key_and_succeeds(tmp_path: Path, script: Path) -> None:
    driver = _driver(tmp_path, script)
    request = DeployRequest("upgrade-1", "prod-1", "checkout", "2.4.1")
    driver.start(request)
    driver.start(request)
    # Another worker process on the same host: a fresh driver over the same directory.
    _driver(tmp_path, script).start(request)
    status = _finished(driver, "upgrade-1")
    assert status.phase is DeployPhase.SUCCEEDED, status.message
    driver.start(request)  # after it finished, too
    assert _runs(tmp_path) and len(_runs(tmp_path)) == 1
    argv = json.loads((tmp_path / "record.argv").read_text())
    assert argv == ["checkout", "2.4.1", "prod-1", "--key=upgrade-1"]
    assert "deploying checkout 2.4.1 prod-1 --key=upgrade-1" in driver.output("upgrade-1")


@pytest.mark.parametrize(
    "version",
    [
        "1.0; touch {marker}",
        "$(touch {marker})",
        "`touch {marker}`",
        "1.0 && touch {marker} #",
        "1.0\ntouch {marker}",
        "{{service}} '\"",
    ],
)
def test_nothing_in_a_version_is_run_or_split(tmp_path: Path, script: Path, version: str) -> None:
    marker = tmp_path / "pwned"
    hostile = version.format(marker=marker)
    driver = _driver(tmp_path, script)
    driver.start(DeployRequest("upgrade-2", "prod-1", "checkout", hostile))
    status = _finished(driver, "upgrade-2")
    assert status.phase is DeployPhase.SUCCEEDED, status.message
    argv = json.loads((tmp_path / "record.argv").read_text())
    assert argv[1] == hostile  # one argument, verbatim: not split, not expanded
    assert len(argv) == 4
    assert not marker.exists()


def test_a_failing_command_fails_with_the_tail_of_its_output(tmp_path: Path, script: Path) -> None:
    driver = _driver(tmp_path, script, mode="fail")
    driver.start(DeployRequest("upgrade-3", "prod-1", "checkout", "2.4.1"))
    status = _finished(driver, "upgrade-3")
    assert status.phase is DeployPhase.FAILED
    assert "exited with 3" in status.message
    assert "error: chart not found" in status.message


def test_a_command_past_its_timeout_is_killed_and_failed(tmp_path: Path, script: Path) -> None:
    # Long enough for two Python start-ups (supervisor, command) on a loaded machine.
    driver = _driver(tmp_path, script, mode="hang", timeout_s=4.0)
    driver.start(DeployRequest("upgrade-4", "prod-1", "checkout", "2.4.1"))
    pid = int(wait_for(lambda: _runs(tmp_path), 10, "the command to start")[0])
    assert driver.status("upgrade-4").phase is DeployPhase.RUNNING
    status = _finished(driver, "upgrade-4")
    assert status.phase is DeployPhase.FAILED
    assert "killed after its timeout of 4s" in status.message
    wait_for(lambda: not _alive(pid), 10, "the hung command to be gone")


def test_a_dead_supervisor_fails_the_deploy_and_takes_the_command_along(
    tmp_path: Path, script: Path
) -> None:
    driver = _driver(tmp_path, script, mode="hang")
    driver.start(DeployRequest("upgrade-5", "prod-1", "checkout", "2.4.1"))
    pid = int(wait_for(lambda: _runs(tmp_path), 10, "the command to start")[0])
    state = tmp_path / "state" / "upgrade-5"
    wait_for(lambda: (state / "command.json").exists(), 10, "the command's record")
    supervisor = int((state / "supervisor.pid").read_text())
    os.kill(supervisor, signal.SIGKILL)  # as a machine's OOM killer might
    status = _finished(driver, "upgrade-5")
    assert status.phase is DeployPhase.FAILED
    assert "died before it finished" in status.message
    wait_for(lambda: not _alive(pid), 10, "the orphaned command to be killed")


def test_output_is_bounded_to_its_tail(tmp_path: Path, script: Path) -> None:
    driver = _driver(tmp_path, script, mode="noisy")
    driver.start(DeployRequest("upgrade-6", "prod-1", "checkout", "2.4.1"))
    assert _finished(driver, "upgrade-6").phase is DeployPhase.SUCCEEDED
    output = driver.output("upgrade-6")
    assert output.endswith("last line\n")
    assert 60_000 < len(output.encode()) <= 64 * 1024


def test_the_status_command_must_pass_too(tmp_path: Path, script: Path) -> None:
    record = str(tmp_path / "status-record")
    check = [sys.executable, str(script), record, "fail", "{service}", "{version}"]
    driver = _driver(tmp_path, script, status=check)
    driver.start(DeployRequest("upgrade-7", "prod-1", "checkout", "2.4.1"))
    status = _finished(driver, "upgrade-7")
    assert status.phase is DeployPhase.FAILED
    assert len(_runs(tmp_path)) == 1  # the deploy ran, then the status check failed
    output = driver.output("upgrade-7")
    assert output.index("deploying checkout 2.4.1 prod-1") < output.index("chart not found")


def test_a_missing_program_or_remove_command_fails(tmp_path: Path, script: Path) -> None:
    driver = _driver(tmp_path, script, deploy=[str(tmp_path / "no-such-tool"), "{version}"])
    driver.start(DeployRequest("upgrade-8", "prod-1", "checkout", "2.4.1"))
    status = _finished(driver, "upgrade-8")
    assert (status.phase, "could not run" in status.message) == (DeployPhase.FAILED, True)

    driver.start(DeployRequest("upgrade-9-rollback", "prod-1", "checkout", None))
    status = driver.status("upgrade-9-rollback")
    assert status.phase is DeployPhase.FAILED
    assert "needs a `remove` command" in status.message


def test_an_unknown_key_is_failed_with_where_it_looked(tmp_path: Path, script: Path) -> None:
    status = _driver(tmp_path, script).status("upgrade-404")
    assert status.phase is DeployPhase.FAILED
    assert str(tmp_path / "state") in status.message


def test_health_comes_from_the_health_command(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text("import sys\nsys.exit(0 if sys.argv[1] == 'checkout' else 1)\n")
    spec = CommandSpec(deploy=("true",), health=(sys.executable, str(probe), "{service}"))
    driver = CommandDriver(spec, tmp_path)
    assert driver.health("prod-1", "checkout") is Health.HEALTHY
    assert driver.health("prod-1", "billing") is Health.UNHEALTHY
    assert CommandDriver(CommandSpec(deploy=("true",)), tmp_path).health("p", "s") is (
        Health.UNKNOWN
    )
    hanging = CommandSpec(
        deploy=("true",),
        health=(sys.executable, "-c", "import time; time.sleep(60)"),
        health_timeout_s=0.5,
    )
    with pytest.raises(DriverError, match="did not answer"):
        CommandDriver(hanging, tmp_path).health("prod-1", "checkout")


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] not in ("Z", "X")
