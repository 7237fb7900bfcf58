"""Building a rollout's plan from the fleet config, at submit and when a release is retried."""

from __future__ import annotations

from datetime import timedelta

from rollout.config import Fleet
from rollout.config.base import fill_placeholders
from rollout.config.environments import (
    CommandDriver,
    Environment,
    HttpDriver,
    MaintenanceWindow,
    Stage,
)
from rollout.config.gates import Gate, HttpGate, PrometheusGate, SoakGate
from rollout.config.services import Artifacts, Service
from rollout.config.teams import Team
from rollout.plan.driver import (
    CommandDriverSpec,
    DriverSpec,
    HttpDriverSpec,
    SimulatedDriverSpec,
)
from rollout.plan.models import (
    ArtifactsSpec,
    EscalationStep,
    GateSpec,
    HttpGateSpec,
    MemberSpec,
    PagingSpec,
    Plan,
    PrometheusGateSpec,
    RequirementSpec,
    RotationMember,
    RotationSpec,
    RotationsSpec,
    ScannerSpec,
    SoakGateSpec,
    StageSpec,
    WebhookGateSpec,
    WindowSpec,
    WindowsSpec,
)


def _seconds(value: timedelta) -> float:
    return value.total_seconds()


def build_plan(fleet: Fleet, spec: Service, environments: list[Environment]) -> Plan:
    """The stages, gates, paging and constraints of a rollout of `spec` to `environments`."""
    return Plan(
        version=1,
        stages=tuple(_stage_spec(fleet, stage) for stage in fleet.stages),
        gates=tuple(gate_spec(gate) for gate in spec.gates),
        environments=tuple(e.name for e in environments),
        paging=paging_spec(fleet.team(spec.team)),
        air_gapped=tuple(e.name for e in environments if fleet.air_gapped(e)),
        operations=paging_spec(fleet.team(fleet.operations.team)) if fleet.operations else None,
        artifacts=_artifacts_spec(fleet.artifacts_for(spec)),
        windows=WindowsSpec(
            service=tuple(window_spec(w) for w in spec.windows),
            environments={
                e.name: tuple(window_spec(w) for w in e.windows) for e in environments if e.windows
            },
        ),
        requires=tuple(
            RequirementSpec(service=r.service, op=r.op, version=r.version) for r in spec.requires
        ),
    )


def _stage_spec(fleet: Fleet, stage: Stage) -> StageSpec:
    parallelism = stage.parallelism
    percent = None
    if isinstance(parallelism, str):  # "25%": a share of the stage's environments
        percent, parallelism = float(parallelism.rstrip("%")), None
    return StageSpec(
        name=stage.name,
        soak_s=_seconds(stage.soak),
        promote_share=stage.promote_share,
        parallelism=parallelism,
        parallelism_percent=percent,
        severity=fleet.severity_for_stage(stage.name),
    )


def window_spec(window: MaintenanceWindow) -> WindowSpec:
    return WindowSpec(days=tuple(window.days), start=window.start, end=window.end, zone=window.zone)


def _artifacts_spec(artifacts: Artifacts | None) -> ArtifactsSpec | None:
    if artifacts is None:
        return None
    scanner = artifacts.scanner
    return ArtifactsSpec(
        path=artifacts.path,
        url=artifacts.url,
        max_bytes=int(artifacts.max_size),
        timeout_s=_seconds(artifacts.timeout),
        scanner=(
            ScannerSpec(command=tuple(scanner.command), timeout_s=_seconds(scanner.timeout))
            if scanner is not None
            else None
        ),
    )


def paging_spec(team: Team) -> PagingSpec:
    """Who is on call for `team` and how pages reach them; secrets stay references
    ({env}/{file})."""
    rotations = None
    if team.rotations is not None:
        primary, secondary = (
            RotationSpec(
                members=tuple(
                    RotationMember(name=name, timezone=team.member(name).timezone)
                    for name in rotation.members
                ),
                shift_s=_seconds(rotation.shift),
                handoff=rotation.handoff,
                start=rotation.start,
                timezone=rotation.timezone,
            )
            for rotation in (team.rotations.primary, team.rotations.secondary)
        )
        rotations = RotationsSpec(primary=primary, secondary=secondary)
    return PagingSpec(
        team=team.name,
        members=tuple(
            MemberSpec(name=m.name, timezone=m.timezone, email=m.email, slack=m.slack)
            for m in team.members
        ),
        rotations=rotations,
        escalation=tuple(
            EscalationStep(to=step.to, after_s=_seconds(step.after)) for step in team.escalation
        ),
        channels=tuple(team.channels),
    )


def gate_spec(gate: Gate) -> GateSpec:
    common = {
        "name": gate.name,
        "initial_delay_s": _seconds(gate.initial_delay),
        "interval_s": _seconds(gate.interval),
        "failure_limit": gate.failure_limit,
        "inconclusive_limit": gate.inconclusive_limit,
        "consecutive_error_limit": gate.consecutive_error_limit,
        "consecutive_successes": gate.consecutive_successes,
        "dry_run": gate.dry_run,
    }
    if isinstance(gate, SoakGate):
        return SoakGateSpec.model_validate(
            {**common, "type": "soak", "count": gate.count, "duration_s": _seconds(gate.duration)}
        )
    if isinstance(gate, PrometheusGate):
        return PrometheusGateSpec.model_validate(
            {
                **common,
                "type": "prometheus",
                "count": gate.count,
                "url": gate.url,
                "query": gate.query,
                "success_condition": gate.success_condition,
                "failure_condition": gate.failure_condition,
                "value_name": gate.value_name,
                "no_data": gate.no_data,
                "nan": gate.nan,
                "timeout_s": _seconds(gate.timeout),
            }
        )
    if isinstance(gate, HttpGate):
        return HttpGateSpec.model_validate(
            {
                **common,
                "type": "http",
                "count": gate.count,
                "url": gate.url,
                "method": gate.method,
                "expect_status": tuple(gate.expect_status),
                "success_condition": gate.success_condition,
                "failure_condition": gate.failure_condition,
                "no_data": gate.no_data,
                "timeout_s": _seconds(gate.timeout),
            }
        )
    return WebhookGateSpec.model_validate(
        {
            **common,
            "type": "webhook",
            "count": gate.count,
            "url": gate.url,
            "url_env": gate.url_env,
            "token_env": gate.token_env,
            "timeout_s": _seconds(gate.timeout),
        }
    )


def driver_spec(environment: Environment) -> DriverSpec:
    """How a worker reaches `environment`'s driver, without the config."""
    driver = environment.driver
    poll, deploy_timeout = _seconds(driver.poll_interval), _seconds(driver.deploy_timeout)
    if isinstance(driver, CommandDriver):
        return CommandDriverSpec(
            type="command",
            poll_interval_s=poll,
            deploy_timeout_s=deploy_timeout,
            deploy=tuple(driver.deploy),
            status=None if driver.status is None else tuple(driver.status),
            remove=None if driver.remove is None else tuple(driver.remove),
            health=None if driver.health is None else tuple(driver.health),
            timeout_s=_seconds(driver.timeout),
            health_timeout_s=_seconds(driver.health_timeout),
            state_dir=driver.state_dir,
        )
    if isinstance(driver, HttpDriver):
        return HttpDriverSpec(
            type="http",
            poll_interval_s=poll,
            deploy_timeout_s=deploy_timeout,
            mode=driver.mode,
            # Rendered here: the worker knows the environment only as the deploy's.
            url=None
            if driver.url is None
            else fill_placeholders(driver.url, {"environment": environment.name}),
            # The reference only: the worker reads the token itself, at each call.
            token=driver.token,
            request_timeout_s=_seconds(driver.request_timeout),
        )
    return SimulatedDriverSpec(
        type="simulated", poll_interval_s=poll, deploy_timeout_s=deploy_timeout
    )
