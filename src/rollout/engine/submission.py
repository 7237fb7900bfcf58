"""Submitting a release: validate, record it, snapshot its plan, supersede older rollouts,
and start planning; all in one transaction."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from rollout.config import VERSION_PATTERN, Fleet
from rollout.config.base import fill_placeholders
from rollout.config.environments import Environment, MaintenanceWindow
from rollout.config.services import Artifacts, Service
from rollout.config.teams import Team
from rollout.domain.states import ReleaseState, RolloutState, UpgradeState, check_rollout
from rollout.engine.dispatch import Nudge
from rollout.engine.progress import lock_service, replan
from rollout.engine.runtime import Runtime
from rollout.observability import events, tracing
from rollout.store.database import is_postgresql, transaction
from rollout.store.models import Release, Rollout, Upgrade

DIGEST_PATTERN = r"^sha256:[0-9a-f]{64}$"


class SubmitError(ValueError):
    """The submission was refused; the message says why, and nothing was written."""


@dataclass(frozen=True)
class Submitted:
    release_id: int
    rollout_id: int
    created: bool  # False: the same release was submitted before
    superseded: tuple[int, ...] = ()


def submit(
    runtime: Runtime, fleet: Fleet, service: str, version: str, digest: str | None = None
) -> Submitted:
    if not re.fullmatch(VERSION_PATTERN, version):
        raise SubmitError(
            f"malformed version {version!r}: use letters, digits and . _ + - (at most 64), "
            "starting with a letter or digit"
        )
    if digest is not None and not re.fullmatch(DIGEST_PATTERN, digest):
        raise SubmitError(f"malformed digest {digest!r}: expected sha256: and 64 hex digits")
    try:
        spec = fleet.service(service)
    except KeyError:
        known = ", ".join(sorted(s.name for s in fleet.services)) or "none"
        raise SubmitError(f"unknown service {service!r} (known: {known})") from None
    environments = fleet.environments_of(spec)
    with events.submitting(service, version) as submitted:
        try:
            result = _record(runtime, fleet, spec, environments, version, digest)
        except IntegrityError:
            # Another pipeline submitted the same release at the same moment: theirs stands.
            result = _record(runtime, fleet, spec, environments, version, digest)
        submitted(result.rollout_id)
    return result


def _record(
    runtime: Runtime,
    fleet: Fleet,
    spec: Service,
    environments: list[Environment],
    version: str,
    digest: str | None,
) -> Submitted:
    now = runtime.now()
    nudges: list[Nudge] = []
    with transaction(runtime.database_url) as session:
        # Before anything else: the newest accepted release must see every older rollout.
        lock_service(session, spec.name, runtime.database_url)
        existing = session.execute(
            select(Release).where(Release.service == spec.name, Release.version == version)
        ).scalar_one_or_none()
        if existing is not None:
            if existing.state == ReleaseState.RECALLED:
                raise SubmitError(
                    f"{spec.name} {version} was {existing.reason}; submit a new version"
                )
            if digest is not None and existing.digest is not None and existing.digest != digest:
                raise SubmitError(
                    f"{spec.name} {version} was already submitted with digest {existing.digest}"
                    f"; refusing {digest}"
                )
            rollout_id = session.scalars(
                # The newest: a retried release has more than one rollout.
                select(Rollout.id)
                .where(Rollout.release_id == existing.id)
                .order_by(Rollout.id.desc())
            ).first()
            assert rollout_id is not None
            return Submitted(existing.id, rollout_id, created=False)

        release = Release(
            service=spec.name,
            version=version,
            digest=digest,
            state=ReleaseState.ACTIVE,
            submitted_at=now,
        )
        session.add(release)
        session.flush()

        live = select(Rollout).where(
            Rollout.service == spec.name,
            Rollout.state.in_([RolloutState.RUNNING, RolloutState.PAUSED]),
        )
        if is_postgresql(runtime.database_url):
            live = live.order_by(Rollout.id).with_for_update()  # as every mover: rollout first
        older = session.scalars(live).all()
        for old in older:
            check_rollout(RolloutState(old.state), RolloutState.SUPERSEDING)
            old.state = RolloutState.SUPERSEDING
        session.flush()  # the index admits one live rollout per service: theirs ends first
        rollout = open_rollout(session, fleet, spec, environments, release, now)
        for old in older:
            old.reason = f"superseded by {version} (rollout {rollout.id})"
            old_release = session.get(Release, old.release_id)
            if old_release is not None and old_release.state == ReleaseState.ACTIVE:
                old_release.state = ReleaseState.SUPERSEDED
                old_release.reason = old.reason
            nudges += replan(session, old, runtime)
        nudges += replan(session, rollout, runtime)
        result = Submitted(release.id, rollout.id, True, tuple(o.id for o in older))
    runtime.dispatcher.send(nudges)
    return result


def open_rollout(
    session: Session,
    fleet: Fleet,
    spec: Service,
    environments: list[Environment],
    release: Release,
    now: datetime,
) -> Rollout:
    """A new running rollout of `release` with its plan snapshotted from `fleet` and one
    pending upgrade per environment (at submit, and when an operator retries a release)."""
    rollout = Rollout(
        release_id=release.id,
        service=spec.name,
        version=release.version,
        team=spec.team,
        state=RolloutState.RUNNING,
        stage_index=0,
        plan=snapshot(fleet, spec, environments),
        created_at=now,
        updated_at=now,
        traceparent=tracing.current_traceparent(),
    )
    session.add(rollout)
    session.flush()
    for environment in environments:
        session.add(
            Upgrade(
                rollout_id=rollout.id,
                service=spec.name,
                environment=environment.name,
                stage_index=fleet.stage_index(environment.stage),
                stage=environment.stage,
                to_version=release.version,
                driver=_driver_spec(environment),
                state=UpgradeState.PENDING,
                claim=0,
                created_at=now,
            )
        )
    session.flush()
    return rollout


def _seconds(value: Any) -> float:
    return float(value.total_seconds())


def _driver_spec(environment: Environment) -> dict[str, Any]:
    driver = environment.driver
    spec: dict[str, Any] = {
        "type": driver.type,
        "poll_interval_s": _seconds(driver.poll_interval),
        "deploy_timeout_s": _seconds(driver.deploy_timeout),
    }
    if driver.type == "command":
        spec.update(
            deploy=list(driver.deploy),
            status=None if driver.status is None else list(driver.status),
            remove=None if driver.remove is None else list(driver.remove),
            health=None if driver.health is None else list(driver.health),
            timeout_s=_seconds(driver.timeout),
            health_timeout_s=_seconds(driver.health_timeout),
            state_dir=driver.state_dir,
        )
    elif driver.type == "http":
        spec.update(
            mode=driver.mode,
            # Rendered here: the worker knows the environment only as the deploy's.
            url=None
            if driver.url is None
            else fill_placeholders(driver.url, {"environment": environment.name}),
            # The reference only: the worker reads the token itself, at each call.
            token=None if driver.token is None else driver.token.model_dump(exclude_none=True),
            request_timeout_s=_seconds(driver.request_timeout),
        )
    return spec


def snapshot(fleet: Fleet, spec: Service, environments: list[Environment]) -> dict[str, Any]:
    """The stages and gates of this rollout, frozen as plain JSON at submit."""
    stages = []
    for stage in fleet.stages:
        parallelism = stage.parallelism
        percent = None
        if isinstance(parallelism, str):
            percent, parallelism = float(parallelism.rstrip("%")), None
        stages.append(
            {
                "name": stage.name,
                "soak_s": _seconds(stage.soak),
                "promote_share": stage.promote_share,
                "parallelism": parallelism,
                "parallelism_percent": percent,
                "severity": fleet.severity_for_stage(stage.name),
            }
        )
    return {
        "stages": stages,
        "gates": [_gate_spec(gate) for gate in spec.gates],
        "environments": [e.name for e in environments],
        "paging": paging_spec(fleet.team(spec.team)),
        "air_gapped": [e.name for e in environments if fleet.air_gapped(e)],
        "operations": (
            paging_spec(fleet.team(fleet.operations.team)) if fleet.operations else None
        ),
        "artifacts": _artifacts_spec(fleet.artifacts_for(spec)),
        # What decides when an upgrade may start, so workers plan without the config.
        "windows": {
            "service": [window_spec(w) for w in spec.windows],
            "environments": {
                e.name: [window_spec(w) for w in e.windows] for e in environments if e.windows
            },
        },
        "requires": [
            {"service": r.service, "op": r.op, "version": r.version} for r in spec.requires
        ],
    }


def window_spec(window: MaintenanceWindow) -> dict[str, Any]:
    return {
        "days": list(window.days),
        "start": window.start.isoformat(),
        "end": window.end.isoformat(),
        "zone": window.zone,
    }


def _artifacts_spec(artifacts: Artifacts | None) -> dict[str, Any] | None:
    """Where the artifact is and how it is scanned before air-gapped entry."""
    if artifacts is None:
        return None
    scanner = artifacts.scanner
    return {
        "path": artifacts.path,
        "url": artifacts.url,
        "max_bytes": int(artifacts.max_size),
        "timeout_s": _seconds(artifacts.timeout),
        "scanner": (
            {"command": list(scanner.command), "timeout_s": _seconds(scanner.timeout)}
            if scanner is not None
            else None
        ),
    }


def paging_spec(team: Team) -> dict[str, Any]:
    """Who is on call and how pages reach them; secrets stay references ({env}/{file})."""
    rotations = None
    if team.rotations is not None:
        rotations = {
            role: {
                "members": [
                    {"name": name, "timezone": team.member(name).timezone}
                    for name in rotation.members
                ],
                "shift_s": _seconds(rotation.shift),
                "handoff": rotation.handoff.isoformat(),
                "start": rotation.start.isoformat(),
                "timezone": rotation.timezone,
            }
            for role, rotation in (
                ("primary", team.rotations.primary),
                ("secondary", team.rotations.secondary),
            )
        }
    return {
        "team": team.name,
        "members": [
            {"name": m.name, "timezone": m.timezone, "email": m.email, "slack": m.slack}
            for m in team.members
        ],
        "rotations": rotations,
        "escalation": [
            {"to": step.to, "after_s": _seconds(step.after)} for step in team.escalation
        ],
        "channels": list(team.channels),
    }


def _gate_spec(gate: Any) -> dict[str, Any]:
    common = {
        "name": gate.name,
        "type": gate.type,
        "initial_delay_s": _seconds(gate.initial_delay),
        "interval_s": _seconds(gate.interval),
        "failure_limit": gate.failure_limit,
        "inconclusive_limit": gate.inconclusive_limit,
        "consecutive_error_limit": gate.consecutive_error_limit,
        "consecutive_successes": gate.consecutive_successes,
        "dry_run": gate.dry_run,
    }
    if gate.type == "soak":
        common["count"] = gate.count
        common["duration_s"] = _seconds(gate.duration)
        return common
    if gate.type == "prometheus":
        common.update(
            count=gate.count,
            url=gate.url,
            query=gate.query,
            success_condition=gate.success_condition,
            failure_condition=gate.failure_condition,
            value_name=gate.value_name,
            no_data=gate.no_data,
            nan=gate.nan,
            timeout_s=_seconds(gate.timeout),
        )
        return common
    if gate.type == "webhook":
        # Only the names of the variables holding secrets: their values never enter the plan.
        common.update(
            count=gate.count,
            url=gate.url,
            url_env=gate.url_env,
            token_env=gate.token_env,
            timeout_s=_seconds(gate.timeout),
        )
        return common
    common.update(
        count=gate.count,
        url=gate.url,
        method=gate.method,
        expect_status=list(gate.expect_status),
        success_condition=gate.success_condition,
        failure_condition=gate.failure_condition,
        no_data=gate.no_data,
        timeout_s=_seconds(gate.timeout),
    )
    return common
