"""The plan a rollout carries: built from the fleet config, and the same after a trip
through the JSON a row stores."""

from __future__ import annotations

import json
from datetime import time, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from rollout.config import load_fleet
from rollout.plan import HttpGateSpec, Plan, PrometheusGateSpec, SoakGateSpec, WebhookGateSpec
from rollout.plan.build import build_plan
from rollout.plan.channels import WebhookChannelSpec
from rollout.secrets import SecretRef
from tests.conftest import FIXTURES
from tests.unit.fleet_files import load_text

FLEET = FIXTURES / "fleet.yaml"


def _plan(service: str) -> Plan:
    fleet = load_fleet(FLEET)
    spec = fleet.service(service)
    return build_plan(fleet, spec, fleet.environments_of(spec))


def test_the_fixture_fleet_builds_a_plan_of_its_stages_gates_and_paging() -> None:
    plan = _plan("checkout")
    assert plan.version == 1
    assert [(s.name, s.severity) for s in plan.stages] == [
        ("canary", "P3"),
        ("staging", "P2"),
        ("production", "P0"),
    ]
    health, soak = plan.gates
    assert isinstance(health, HttpGateSpec) and isinstance(soak, SoakGateSpec)
    assert (health.interval, health.count, health.expect_status) == (
        timedelta(seconds=0.1),
        2,
        (200,),
    )
    assert soak.count == 3  # ceil(0.2s / 0.1s) + 1
    assert plan.environments == ("canary-1", "staging-1", "staging-2", "prod-1", "prod-2", "prod-3")
    assert plan.air_gapped == ("canary-1",)
    assert plan.paging.team == "payments"
    assert plan.paging.rotations is not None
    primary = plan.paging.rotations.primary
    assert (primary.shift, primary.handoff) == (timedelta(days=1), time(9, 0))
    assert plan.paging.channels == (
        WebhookChannelSpec(type="webhook", url=SecretRef(env="ROLLOUT_TEST_PAGE_HOOK")),
    )


@pytest.mark.parametrize("service", ["checkout", "search-api", "ledger"])
def test_a_plan_is_the_same_after_a_trip_through_json(service: str) -> None:
    plan = _plan(service)
    stored = json.loads(json.dumps(plan.model_dump(mode="json")))
    assert Plan.model_validate(stored) == plan
    # The key names rows carried before the plan was typed, so those rows still read.
    assert {"soak_s", "promote_share", "parallelism_percent"} <= set(stored["stages"][0])
    assert {"initial_delay_s", "interval_s", "timeout_s"} <= set(stored["gates"][0])


def test_gates_windows_requirements_and_artifacts_keep_their_shape(tmp_path: Path) -> None:
    fleet = load_text(
        tmp_path,
        """\
        teams: [{name: payments}]
        stages: [{name: production, parallelism: 25%}]
        artifacts: {path: "/srv/{service}-{version}.tar", scanner: {command: [scan, "{artifact}"]}}
        environments:
          - name: prod-1
            stage: production
            driver: {type: simulated}
            windows: [{days: [sat], start: "22:00", end: "02:00", zone: Europe/Berlin}]
        services:
          - {name: billing-db, team: payments}
          - name: checkout
            team: payments
            requires: ["billing-db >= 2.3"]
            windows: [{days: [mon, tue], start: "08:00", end: "18:00", zone: UTC}]
            gates:
              - {name: errors, type: prometheus, url: "http://prom:9090", query: up,
                 success_condition: "value < 0.05", nan: pass}
              - {name: judge, type: webhook, url_env: JUDGE_URL}
        """,
    )
    service = fleet.service("checkout")
    plan = build_plan(fleet, service, fleet.environments)
    stored = plan.model_dump(mode="json")
    assert stored["stages"][0]["parallelism_percent"] == 25.0
    assert stored["windows"] == {
        "service": [
            {"days": ["mon", "tue"], "start": "08:00:00", "end": "18:00:00", "zone": "UTC"}
        ],
        "environments": {
            "prod-1": [
                {"days": ["sat"], "start": "22:00:00", "end": "02:00:00", "zone": "Europe/Berlin"}
            ]
        },
    }
    assert stored["requires"] == [{"service": "billing-db", "op": ">=", "version": "2.3"}]
    assert plan.artifacts is not None and plan.artifacts.scanner is not None
    assert plan.artifacts.scanner.command == ("scan", "{artifact}")
    errors, judge = plan.gates
    assert isinstance(errors, PrometheusGateSpec) and isinstance(judge, WebhookGateSpec)
    assert (errors.nan, errors.no_data, judge.url, judge.url_env) == (
        "pass",
        "error",
        None,
        "JUDGE_URL",
    )
    assert Plan.model_validate(json.loads(json.dumps(stored))) == plan


def test_a_plan_names_what_does_not_fit() -> None:
    stored = _plan("ledger").model_dump(mode="json")
    with pytest.raises(ValidationError, match="extra"):
        Plan.model_validate({**stored, "surprise": 1})
    with pytest.raises(ValidationError, match="version"):
        Plan.model_validate({**stored, "version": 2})
    gate = {**stored["gates"][0], "type": "telepathy"}
    with pytest.raises(ValidationError, match="telepathy"):
        Plan.model_validate({**stored, "gates": [gate]})
