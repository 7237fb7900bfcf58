"""The http driver and `rollout agent` as real processes over loopback: idempotent deploys,
a hung deploy past its timeout, an agent killed and restarted mid-deploy, on real workers."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from sqlalchemy import select

from rollout.config import Fleet
from rollout.drivers import DeployPhase, DeployRequest, DriverError, Health
from rollout.drivers.simulated import SimulatedFleet
from rollout.engine.backends import Backends
from rollout.engine.runtime import Runtime
from rollout.engine.submission import submit
from rollout.plan.driver import HttpDriverSpec
from rollout.store.database import transaction
from rollout.store.models import (
    AgentDeployment,
    Installation,
    Measurement,
    Page,
    Rollout,
    Upgrade,
)
from tests.conftest import FIXTURES, ROLLOUT, ROOT, Cluster
from tests.waiting import wait_for

pytestmark = pytest.mark.integration

# The environment's deploy tool: notes each start and each finished apply, one line each.
# A version with a `hang` marker file never finishes; one with a `gate` file waits for the
# test to open it (so the test decides when a deploy ends, without sleeping).
APPLY = textwrap.dedent(
    """\
    import os, sys, time
    record, service, version, key = sys.argv[1:5]
    def note(kind):
        with open(record + "." + kind, "a") as out:
            out.write(f"{key} {service} {version} {os.getpid()}\\n")
    note("starts")
    while os.path.exists(record + ".hang-" + version):
        time.sleep(0.05)
    while os.path.exists(record + ".gate-" + version) and not os.path.exists(
        record + ".open-" + version
    ):
        time.sleep(0.05)
    print("applied", service, version, flush=True)
    note("applied")
    """
)


TEMPLATE = ("{service}", "{version}", "{key}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class AgentProcess:
    """A `rollout agent` subprocess with a config, a deploy tool and a state dir of its own."""

    def __init__(self, root: Path, environment: str, **extra: Any) -> None:
        self.root = root
        self.record = root / "record"
        tool = root / "apply.py"
        tool.write_text(APPLY)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = {
            "environment": environment,
            "deploy": [*(sys.executable, str(tool), str(self.record)), *TEMPLATE],
            "state_dir": str(root / "state"),
            "timeout": "60s",
            "port": self.port,
            **extra,
        }
        self.config = root / "agent.yaml"
        self.config.write_text(yaml.safe_dump(config))
        self.log = root / "agent.log"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("ROLLOUT_")}
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, serving: bool = True) -> AgentProcess:
        self.process = subprocess.Popen(
            [ROLLOUT, "agent", str(self.config)],
            env=self.env,
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            start_new_session=True,
        )
        if serving:
            wait_for(self.up, 30, f"the agent on {self.url}")
        return self

    def up(self) -> bool:
        assert self.process is not None
        assert self.process.poll() is None, self.log.read_text()
        try:
            return httpx.get(self.url + "/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def lines(self, kind: str) -> list[list[str]]:
        path = self.root / f"record.{kind}"
        return [line.split() for line in path.read_text().splitlines()] if path.exists() else []

    def keys(self, kind: str) -> list[str]:
        return [line[0] for line in self.lines(kind)]


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[AgentProcess]:
    process = AgentProcess(tmp_path, "agent-1").start()
    yield process
    process.stop()


def _driver(url: str, **extra: Any) -> Any:
    spec = {"type": "http", "mode": "push", "url": url, "token": None, "request_timeout_s": 5.0}
    timing = {"poll_interval_s": 0.1, "deploy_timeout_s": 60.0}
    return Backends.real("", "").driver(HttpDriverSpec.model_validate(spec | timing | extra))


def _finished(driver: Any, key: str) -> Any:
    return wait_for(
        lambda: (s := driver.status(key)).phase is not DeployPhase.RUNNING and s,
        30,
        f"deploy {key} to finish",
    )


# --- the driver against a real agent, no engine ------------------------------------------------


def test_the_same_key_twice_is_one_deploy(agent: AgentProcess) -> None:
    driver = _driver(agent.url)
    request = DeployRequest("upgrade-1", "agent-1", "checkout", "1.1.0")
    driver.start(request)
    driver.start(request)
    assert _finished(driver, "upgrade-1").phase is DeployPhase.SUCCEEDED
    driver.start(request)  # after it finished, too
    assert agent.keys("starts") == ["upgrade-1"]
    assert agent.lines("applied")[0][:3] == ["upgrade-1", "checkout", "1.1.0"]
    assert driver.health("agent-1", "checkout") is Health.HEALTHY
    assert driver.health("agent-1", "billing") is Health.UNKNOWN
    assert httpx.get(agent.url + "/health").json()["services"] == {"checkout": "1.1.0"}

    # The same key for another version is the agent's refusal, with its reason.
    with pytest.raises(DriverError, match=r"409 deploy upgrade-1 is checkout 1\.1\.0"):
        driver.start(DeployRequest("upgrade-1", "agent-1", "checkout", "9.9.9"))
    with pytest.raises(DriverError, match="422 this agent deploys to agent-1, not prod-7"):
        driver.start(DeployRequest("upgrade-2", "prod-7", "checkout", "1.2.0"))
    unknown = driver.status("upgrade-404")
    assert unknown.phase is DeployPhase.UNKNOWN and "knows no deploy upgrade-404" in unknown.message


def test_a_token_is_required_and_never_shown(tmp_path: Path) -> None:
    secret = tmp_path / "agent-token"
    secret.write_text("s3cret-agent-token\n")
    process = AgentProcess(tmp_path, "agent-1", token={"file": str(secret)}).start()
    try:
        request = DeployRequest("upgrade-1", "agent-1", "checkout", "1.1.0")
        with pytest.raises(DriverError, match="401") as refused:
            _driver(process.url).start(request)
        wrong = tmp_path / "wrong"
        wrong.write_text("not-it")
        with pytest.raises(DriverError, match="401") as refused:
            _driver(process.url, token={"file": str(wrong)}).start(request)
        assert "not-it" not in str(refused.value)
        driver = _driver(process.url, token={"file": str(secret)})
        driver.start(request)
        assert _finished(driver, "upgrade-1").phase is DeployPhase.SUCCEEDED
        assert process.keys("applied") == ["upgrade-1"]
        assert "s3cret-agent-token" not in process.log.read_text()
    finally:
        process.stop()


def test_an_unreachable_agent_is_retried_then_a_driver_error() -> None:
    driver = _driver(f"http://127.0.0.1:{free_port()}", request_timeout_s=1.0)
    with pytest.raises(DriverError, match="the agent could not be asked"):
        driver.status("upgrade-1")


# --- through the engine, on real workers --------------------------------------------------


def _fleet_data(driver: dict[str, Any], gates: list[dict[str, Any]]) -> dict[str, Any]:
    data = yaml.safe_load((FIXTURES / "fleet.yaml").read_text())
    data["stages"] = [{"name": "canary", "soak": "0s"}]
    data["environments"] = [{"name": "agent-1", "stage": "canary", "driver": driver}]
    data["services"] = [{"name": "checkout", "team": "payments", "gates": gates}]
    data.pop("simulation", None)
    return data


def _fleet(agent_url: str, deploy_timeout: str = "60s") -> Fleet:
    driver = {
        "type": "http",
        "url": agent_url,
        "poll_interval": "0.1s",
        "request_timeout": "2s",
        "deploy_timeout": deploy_timeout,
    }
    return Fleet.model_validate(
        _fleet_data(
            driver,
            [
                {
                    "name": "health",
                    "type": "http",
                    "url": agent_url.replace("{environment}", "agent-1") + "/health/{service}",
                    "success_condition": "healthy == true",
                    "interval": "0.1s",
                    "count": 2,
                },
                {"name": "soak", "type": "soak", "duration": "0.2s", "interval": "0.1s"},
            ],
        )
    )


@pytest.fixture
def installed(cluster: Cluster, simulator: SimulatedFleet) -> None:
    """A clean database (the simulator fixture's), and checkout 1.0.0 known on agent-1."""
    with transaction(cluster.database_url) as session:
        session.add(
            Installation(
                environment="agent-1",
                service="checkout",
                version="1.0.0",
                updated_at=datetime.now(UTC),
            )
        )


def _final(cluster: Cluster, rollout_id: int, timeout: float = 90) -> Rollout:
    def done() -> Rollout | None:
        with transaction(cluster.database_url) as session:
            rollout = session.get(Rollout, rollout_id)
            assert rollout is not None
            return rollout if rollout.state in ("succeeded", "failed") else None

    found = wait_for(done, timeout, f"rollout {rollout_id} to finish")
    assert found is not None
    return found


def _upgrade(cluster: Cluster, rollout_id: int) -> Upgrade:
    with transaction(cluster.database_url) as session:
        return session.scalars(select(Upgrade).where(Upgrade.rollout_id == rollout_id)).one()


def test_a_release_goes_through_an_agent(
    cluster: Cluster, installed: None, runtime: Runtime, agent: AgentProcess
) -> None:
    submitted = submit(runtime, _fleet(agent.url), "checkout", "1.1.0")
    rollout = _final(cluster, submitted.rollout_id)
    upgrade = _upgrade(cluster, submitted.rollout_id)
    assert (rollout.state, upgrade.state) == ("succeeded", "succeeded"), upgrade.reason
    key = f"upgrade-{upgrade.id}"
    assert agent.keys("starts") == [key]
    assert agent.keys("applied") == [key]
    assert httpx.get(agent.url + "/health").json()["services"] == {"checkout": "1.1.0"}


def test_a_deploy_hung_past_its_timeout_rolls_back_and_pages(
    cluster: Cluster, installed: None, runtime: Runtime, agent: AgentProcess
) -> None:
    (agent.root / "record.hang-2.0.0").touch()
    submitted = submit(runtime, _fleet(agent.url, deploy_timeout="3s"), "checkout", "2.0.0")
    rollout = _final(cluster, submitted.rollout_id)
    upgrade = _upgrade(cluster, submitted.rollout_id)
    assert (rollout.state, upgrade.state) == ("failed", "rolled_back")
    assert "deploy did not finish within 0:00:03" in (upgrade.reason or "")
    key = f"upgrade-{upgrade.id}"
    # The hung deploy was stopped when the rollback came; the rollback applied 1.0.0, once.
    assert agent.keys("starts") == [key, f"{key}-rollback"]
    assert agent.lines("applied") and [line[:3] for line in agent.lines("applied")] == [
        [f"{key}-rollback", "checkout", "1.0.0"]
    ]
    hung_pid = int(agent.lines("starts")[0][3])
    wait_for(lambda: not _alive(hung_pid), 10, "the hung deploy to be killed")
    status = httpx.get(f"{agent.url}/deployments/{key}").json()
    assert (
        status["phase"] == "failed"
        and f"superseded by deploy {key}-rollback" in (status["message"])
    )
    with transaction(cluster.database_url) as session:
        pages = session.scalars(select(Page).where(Page.rollout_id == rollout.id)).all()
    assert [(p.team, p.environment) for p in pages] == [("payments", "agent-1")]
    assert "deploy did not finish" in pages[0].detail


def test_an_agent_that_stops_answering_past_the_timeout_rolls_back_and_pages(
    cluster: Cluster, installed: None, runtime: Runtime, agent: AgentProcess
) -> None:
    assert agent.process is not None
    (agent.root / "record.gate-2.1.0").touch()  # never opened: the deploy would not end
    submitted = submit(runtime, _fleet(agent.url, deploy_timeout="3s"), "checkout", "2.1.0")
    wait_for(lambda: agent.keys("starts"), 30, "the deploy to start")
    agent.process.send_signal(signal.SIGSTOP)  # up, but answering nothing
    try:
        rolling = wait_for(
            lambda: (u := _upgrade(cluster, submitted.rollout_id)).state == "rolling_back" and u,
            60,
            "the engine to give up on the silent agent",
        )
    finally:
        agent.process.send_signal(signal.SIGCONT)
    assert "deploy did not finish within 0:00:03: the agent could not be asked" in (
        rolling.reason or ""
    )
    rollout = _final(cluster, submitted.rollout_id)
    upgrade = _upgrade(cluster, submitted.rollout_id)
    assert (rollout.state, upgrade.state) == ("failed", "rolled_back"), upgrade.reason
    key = f"upgrade-{upgrade.id}"
    assert agent.keys("starts") == [key, f"{key}-rollback"]
    assert [line[:3] for line in agent.lines("applied")] == [
        [f"{key}-rollback", "checkout", "1.0.0"]
    ]
    with transaction(cluster.database_url) as session:
        pages = session.scalars(select(Page).where(Page.rollout_id == rollout.id)).all()
    assert [(p.team, p.environment) for p in pages] == [("payments", "agent-1")]


def test_an_agent_killed_mid_deploy_finishes_it_once_after_a_restart(
    cluster: Cluster, installed: None, runtime: Runtime, agent: AgentProcess
) -> None:
    (agent.root / "record.gate-1.2.0").touch()
    submitted = submit(runtime, _fleet(agent.url), "checkout", "1.2.0")
    wait_for(lambda: agent.keys("starts"), 30, "the deploy to start")
    agent.kill()
    with transaction(cluster.database_url) as session:
        rollout = session.get(Rollout, submitted.rollout_id)
        assert rollout is not None and rollout.state == "running"
    agent.start()  # the same port and state: the engine's polls find it again
    (agent.root / "record.open-1.2.0").touch()
    rollout = _final(cluster, submitted.rollout_id)
    upgrade = _upgrade(cluster, submitted.rollout_id)
    assert (rollout.state, upgrade.state) == ("succeeded", "succeeded"), upgrade.reason
    key = f"upgrade-{upgrade.id}"
    assert agent.keys("starts") == [key]
    assert agent.keys("applied") == [key]


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] not in ("Z", "X")


# --- pull mode: the agent polls a real `rollout api`; nothing calls into its environment ----


class ApiProcess:
    def __init__(self, database_url: str, config: Path, log: Path) -> None:
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("ROLLOUT_")},
            "ROLLOUT_DATABASE_URL": database_url,
            "ROLLOUT_CONFIG": str(config),
        }
        self.url = f"http://127.0.0.1:{free_port()}"
        self.log = log
        self.process = subprocess.Popen(
            [ROLLOUT, "api", "--port", self.url.rsplit(":", 1)[1]],
            env=self.env,
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            start_new_session=True,
        )
        wait_for(self.up, 60, "the API to answer")

    def up(self) -> bool:
        assert self.process.poll() is None, self.log.read_text()
        try:
            return httpx.get(self.url + "/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def token(self, *args: str) -> str:
        made = subprocess.run(
            [ROLLOUT, "token", "create", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            cwd=ROOT,
        )
        assert made.returncode == 0, made.stderr
        return made.stdout.strip()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def test_pull_mode_end_to_end(
    cluster: Cluster, installed: None, runtime: Runtime, tmp_path: Path
) -> None:
    soak = {"name": "soak", "type": "soak", "duration": "0.3s", "interval": "0.1s"}
    data = _fleet_data({"type": "http", "mode": "pull", "poll_interval": "0.1s"}, [soak])
    config = tmp_path / "fleet.yaml"
    config.write_text(yaml.safe_dump(data))
    fleet = Fleet.model_validate(data)
    api = ApiProcess(cluster.database_url, config, tmp_path / "api.log")
    agent_root = tmp_path / "agent"
    agent_root.mkdir()
    try:
        secret = agent_root / "token"
        secret.write_text(api.token("--scope", "agent", "--environment", "agent-1"))
        pull = {"api_url": api.url, "interval": "0.1s", "request_timeout": "5s"}
        agent = AgentProcess(agent_root, "agent-1", pull=pull, token={"file": str(secret)})
        agent.start(serving=False)
        try:
            (agent_root / "record.gate-1.3.0").touch()
            submitted = submit(runtime, fleet, "checkout", "1.3.0")
            wait_for(lambda: agent.keys("starts"), 30, "the agent to pull the deploy")
            # Killed mid-deploy and restarted: it reports the real outcome, applied once.
            agent.kill()
            agent.start(serving=False)
            (agent_root / "record.open-1.3.0").touch()
            rollout = _final(cluster, submitted.rollout_id)
        finally:
            agent.stop()
        upgrade = _upgrade(cluster, submitted.rollout_id)
        assert (rollout.state, upgrade.state) == ("succeeded", "succeeded"), upgrade.reason
        key = f"upgrade-{upgrade.id}"
        assert agent.keys("starts") == [key]
        assert agent.keys("applied") == [key]
        with transaction(cluster.database_url) as session:
            recorded = session.get(AgentDeployment, key)
            assert recorded is not None
            assert (recorded.phase, recorded.version) == ("succeeded", "1.3.0")
            assert recorded.reported_at is not None
            # The soak gate judged the health the agent sent along with its pulls.
            soaked = session.scalars(
                select(Measurement).where(Measurement.upgrade_id == upgrade.id)
            ).all()
        assert soaked and soaked[-1].outcome == "success"
        assert soaked[-1].value == "health healthy"
        assert secret.read_text().strip() not in agent.log.read_text() + api.log.read_text()
        # Nothing is wanted any more: the next round is empty.
        wanted = httpx.get(
            f"{api.url}/v1/agents/agent-1/desired",
            headers={"Authorization": f"Bearer {secret.read_text().strip()}"},
        )
        assert wanted.json() == {"environment": "agent-1", "deployments": []}
    finally:
        api.stop()
