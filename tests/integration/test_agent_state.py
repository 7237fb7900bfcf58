"""The agent's state on disk with real deploy processes: a crash between accepting a deploy
and launching it loses nothing, and one key is one deploy across agent instances."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from rollout.agent import Agent, AgentConfig, Conflict, WrongEnvironment
from rollout.drivers import DeployPhase, DeployRequest, Health
from tests.conftest import ROLLOUT
from tests.waiting import wait_for

TOOL = "import sys\nopen(sys.argv[1], 'a').write(sys.argv[2] + ' ' + sys.argv[3] + '\\n')\n"


def _config(tmp_path: Path) -> AgentConfig:
    tool = tmp_path / "apply.py"
    tool.write_text(TOOL)
    return AgentConfig.model_validate(
        {
            "environment": "prod-1",
            "deploy": [sys.executable, str(tool), str(tmp_path / "applied"), "{key}", "{version}"],
            "state_dir": str(tmp_path / "state"),
            "timeout": "30s",
        }
    )


def _applied(tmp_path: Path) -> list[str]:
    path = tmp_path / "applied"
    return path.read_text().splitlines() if path.exists() else []


def _done(agent: Agent, key: str) -> DeployPhase:
    def phase() -> DeployPhase | None:
        found = agent.status(key)
        assert found is not None
        return None if found.phase is DeployPhase.RUNNING else found.phase

    return wait_for(phase, 30, f"deploy {key} to finish")


def test_a_deploy_accepted_before_a_crash_is_launched_once_on_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    request = DeployRequest("upgrade-1", "prod-1", "checkout", "2.0.0")
    crashing = Agent(_config(tmp_path))

    def crash(_: DeployRequest) -> None:
        raise KeyboardInterrupt  # the process dies right after recording the request

    monkeypatch.setattr(crashing.runner, "start", crash)
    with pytest.raises(KeyboardInterrupt):
        crashing.deploy(request)
    assert _applied(tmp_path) == []

    restarted = Agent(_config(tmp_path))
    restarted.recover()
    assert _done(restarted, "upgrade-1") is DeployPhase.SUCCEEDED
    again, created = Agent(_config(tmp_path)).deploy(request)  # the orchestrator asks again
    assert (again.phase, created) == (DeployPhase.SUCCEEDED, False)
    Agent(_config(tmp_path)).recover()
    assert _applied(tmp_path) == ["upgrade-1 2.0.0"]
    assert restarted.versions()["checkout"].version == "2.0.0"
    assert restarted.health("checkout") is Health.HEALTHY
    assert restarted.health("billing") is None


def test_a_key_is_one_deploy_and_an_agent_one_environment(tmp_path: Path) -> None:
    agent = Agent(_config(tmp_path))
    _, created = agent.deploy(DeployRequest("upgrade-2", "prod-1", "checkout", "2.0.0"))
    assert created
    with pytest.raises(Conflict, match=r"refusing checkout 3\.0\.0 under the same key"):
        agent.deploy(DeployRequest("upgrade-2", "prod-1", "checkout", "3.0.0"))
    with pytest.raises(WrongEnvironment, match="deploys to prod-1, not prod-2"):
        agent.deploy(DeployRequest("upgrade-3", "prod-2", "checkout", "2.0.0"))
    assert _done(agent, "upgrade-2") is DeployPhase.SUCCEEDED
    assert _applied(tmp_path) == ["upgrade-2 2.0.0"]
    assert agent.status("upgrade-404") is None


def test_a_bad_agent_config_is_one_line_naming_file_and_field(tmp_path: Path) -> None:
    config = tmp_path / "agent.yaml"
    config.write_text("environment: prod-1\ndeploy: [helm, '{tag}']\nstate_dir: /tmp/x\n")
    ran = subprocess.run(
        [ROLLOUT, "agent", str(config)], capture_output=True, text=True, timeout=60
    )
    assert ran.returncode == 1
    assert f"{config}: deploy: " in ran.stderr and "unknown placeholder '{tag}'" in ran.stderr
    assert "Traceback" not in ran.stderr
