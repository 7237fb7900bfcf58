"""Config and snapshot of the http driver, and the agent's own config: mistakes name the
field, secrets stay references."""

from __future__ import annotations

from pathlib import Path

import pytest

from rollout.agent import AgentConfigError, load_agent_config
from rollout.drivers.http import HttpDriver
from rollout.engine.backends import Backends
from rollout.plan.build import driver_spec
from rollout.plan.driver import HttpDriverSpec
from rollout.secrets import SecretRef
from tests.unit.fleet_files import load_text, problems_in

FLEET = """\
teams: [{name: payments}]
stages: [{name: production}]
environments:
  - name: prod-1
    stage: production
    driver:
      type: http
      url: "http://{environment}.agents:8480"
      token: {env: AGENT_TOKEN}
      deploy_timeout: 5m
  - name: vault-1
    stage: production
    driver: {type: http, mode: pull, poll_interval: 5s}
services:
  - {name: checkout, team: payments}
"""


def test_the_snapshot_renders_the_url_and_keeps_the_token_a_reference(tmp_path: Path) -> None:
    fleet = load_text(tmp_path, FLEET)
    push, pull = (driver_spec(e) for e in fleet.environments)
    assert isinstance(push, HttpDriverSpec) and isinstance(pull, HttpDriverSpec)
    assert push.url == "http://prod-1.agents:8480"
    assert push.token == SecretRef(env="AGENT_TOKEN")
    assert (push.mode, push.deploy_timeout_s, push.request_timeout_s) == (
        "push",
        300.0,
        10.0,
    )
    assert isinstance(Backends.real("sqlite://", "sqlite://").driver(push), HttpDriver)
    assert (pull.mode, pull.url, pull.token, pull.poll_interval_s) == (
        "pull",
        None,
        None,
        5.0,
    )


@pytest.mark.parametrize(
    ("change", "path", "message"),
    [
        (
            ('"http://{environment}.agents:8480"', '"http://{service}.agents"'),
            "environments[0].driver.url",
            "unknown placeholder '{service}'",
        ),
        (
            ('url: "http://{environment}.agents:8480"', 'url: "ftp://agents"'),
            "environments[0].driver.url",
            "must start with http",
        ),
        (
            ('      url: "http://{environment}.agents:8480"\n', ""),
            "environments[0].driver",
            "push mode needs the agent's `url`",
        ),
        (
            ("token: {env: AGENT_TOKEN}", "token: hunter2-inline"),
            "environments[0].driver.token",
            "given by reference",
        ),
        (
            ("token: {env: AGENT_TOKEN}", "token: {env: A, file: /b}"),
            "environments[0].driver.token",
            "exactly one of `env` or `file`",
        ),
        (
            ("mode: pull,", 'mode: pull, url: "http://x",'),
            "environments[1].driver",
            "drop `url` and `token`",
        ),
        (("mode: pull,", "mode: sideways,"), "environments[1].driver.mode", ""),
    ],
)
def test_mistakes_name_the_field(
    tmp_path: Path, change: tuple[str, str], path: str, message: str
) -> None:
    old, new = change
    assert old in FLEET
    problems = problems_in(tmp_path, FLEET.replace(old, new, 1))
    assert len(problems) == 1, problems
    assert problems[0].path == path
    assert message in problems[0].message
    assert "hunter2" not in str(problems[0])


def test_the_agent_config_names_the_file_and_field(tmp_path: Path) -> None:
    path = tmp_path / "agent.yaml"
    path.write_text(
        "environment: prod-1\ndeploy: [helm, '{versoin}']\nstate_dir: /var/lib/agent\n"
        "pull: {api_url: 'http://rollout:8000', interval: 5s}\ntoken: {env: ROLLOUT_TOKEN}\n"
    )
    with pytest.raises(AgentConfigError) as caught:
        load_agent_config(path)
    assert str(caught.value).startswith(f"{path}: deploy: ")
    assert "unknown placeholder '{versoin}'" in str(caught.value)
    path.write_text(path.read_text().replace("{versoin}", "{version}"))
    loaded = load_agent_config(path)
    assert loaded.pull is not None and loaded.pull.api_url == "http://rollout:8000"


def test_the_documented_agent_examples_load(tmp_path: Path) -> None:
    readme = (Path(__file__).resolve().parents[2] / "docs" / "air-gapped.md").read_text()
    examples = [
        block.split("```", 1)[0] for block in readme.split("```yaml\n") if block.startswith("env")
    ]
    assert len(examples) == 2
    modes = []
    for number, example in enumerate(examples):
        path = tmp_path / f"agent-{number}.yaml"
        path.write_text(example)
        modes.append("pull" if load_agent_config(path).pull else "push")
    assert modes == ["push", "pull"]
