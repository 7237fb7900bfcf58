"""Config and snapshots of the prometheus and webhook gates and the command driver."""

from __future__ import annotations

from pathlib import Path

import pytest

from rollout.config.base import fill_placeholders
from rollout.drivers.command import CommandDriver, render_argv
from rollout.engine.backends import Backends
from rollout.plan import PrometheusGateSpec, WebhookGateSpec
from rollout.plan.build import build_plan, driver_spec
from rollout.plan.driver import CommandDriverSpec
from tests.unit.fleet_files import load_text, problems_in

FLEET = """\
teams: [{name: payments}]
stages: [{name: production}]
environments:
  - name: prod-1
    stage: production
    driver:
      type: command
      deploy:
        [helm, upgrade, "{service}", chart, --set, "image.tag={version}", "--set-json={\\"a\\":1}"]
      status: [kubectl, rollout, status, "deployment/{service}"]
      health: [check-health, "{environment}", "{service}"]
      timeout: 5m
      state_dir: /var/lib/rollout/command-driver
services:
  - name: checkout
    team: payments
    gates:
      - name: errors
        type: prometheus
        url: http://prometheus.example:9090
        query: 'sum(rate(http_errors_total{service="{service}",version="{version}"}[1m]))'
        success_condition: "error_rate < 0.05"
        value_name: error_rate
        nan: pass
      - name: judge
        type: webhook
        url_env: JUDGE_URL
        token_env: JUDGE_TOKEN
"""


def test_the_new_types_load_and_snapshot_without_secrets(tmp_path: Path) -> None:
    fleet = load_text(tmp_path, FLEET)
    service = fleet.service("checkout")
    plan = build_plan(fleet, service, fleet.environments)
    errors, judge = plan.gates
    assert isinstance(errors, PrometheusGateSpec) and isinstance(judge, WebhookGateSpec)
    assert errors.query.startswith('sum(rate(http_errors_total{service="{service}"')
    assert (errors.value_name, errors.nan, errors.no_data) == ("error_rate", "pass", "error")
    assert (judge.url, judge.url_env, judge.token_env) == (
        None,
        "JUDGE_URL",
        "JUDGE_TOKEN",
    )
    driver = driver_spec(fleet.environments[0])
    assert isinstance(driver, CommandDriverSpec)
    assert driver.deploy[-1] == '--set-json={"a":1}'
    # The engine gives up after the driver would have killed the command.
    assert driver.timeout_s == 300.0 and driver.deploy_timeout_s > 300.0
    built = Backends.real("sqlite://", "sqlite://").driver(driver)
    assert isinstance(built, CommandDriver)
    assert built.state_dir == Path("/var/lib/rollout/command-driver")


def test_command_arguments_are_filled_one_by_one() -> None:
    template = ["helm", "upgrade", "{service}", "--set", "image.tag={version}", "{key}", "{x}"]
    values = {"service": "checkout", "version": "1.0 {key}; rm -rf /", "key": "upgrade-1"}
    assert render_argv(template, values) == [
        "helm",
        "upgrade",
        "checkout",
        "--set",
        "image.tag=1.0 {key}; rm -rf /",  # a value is never read as a template again
        "upgrade-1",
        "{x}",
    ]
    assert fill_placeholders('up{job="{service}"}', {"service": "a"}) == 'up{job="a"}'


@pytest.mark.parametrize(
    ("change", "path", "message"),
    [
        (
            ('"image.tag={version}"', '"image.tag={tag}"'),
            "environments[0].driver.deploy",
            "unknown placeholder '{tag}'",
        ),
        (
            ('"{environment}", "{service}"]', '"{version}"]'),
            "environments[0].driver.health",
            "unknown placeholder '{version}'",
        ),
        (
            ("[helm, upgrade,", '["", upgrade,'),
            "environments[0].driver.deploy",
            "must not be empty",
        ),
        (
            ('version="{version}"', 'version="{versoin}"'),
            "services[0].gates[0].query",
            "unknown placeholder '{versoin}'",
        ),
        (
            ('"error_rate < 0.05"', '"latency < 0.05"'),
            "services[0].gates[0]",
            "one number, called error_rate or value",
        ),
        (
            ('success_condition: "error_rate < 0.05"', "nan: pass"),
            "services[0].gates[0]",
            "needs success_condition or failure_condition",
        ),
        (
            ("nan: pass", "nan: maybe"),
            "services[0].gates[0].nan",
            "",
        ),
        (
            ("url_env: JUDGE_URL", "url_env: JUDGE_URL\n        url: http://judge.example/"),
            "services[0].gates[1]",
            "exactly one of `url` and `url_env`",
        ),
        (
            ("token_env: JUDGE_TOKEN", "token_env: judge token"),
            "services[0].gates[1].token_env",
            "invalid environment variable name",
        ),
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
