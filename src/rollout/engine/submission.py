"""Submitting a release: validate, record it, snapshot its plan, supersede older rollouts,
and start planning; all in one transaction."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from rollout.config import VERSION_PATTERN, Fleet
from rollout.config.environments import Environment
from rollout.config.services import Service
from rollout.domain.states import ReleaseState, RolloutState, UpgradeState, check_rollout
from rollout.engine.dispatch import Nudge
from rollout.engine.progress import lock_service, replan
from rollout.engine.runtime import Runtime
from rollout.observability import events, tracing
from rollout.plan.build import build_plan, driver_spec
from rollout.quoting import quoted
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
            f"malformed version {quoted(version)}: use letters, digits and . _ + - (at most 64), "
            "starting with a letter or digit"
        )
    if digest is not None and not re.fullmatch(DIGEST_PATTERN, digest):
        raise SubmitError(f"malformed digest {quoted(digest)}: expected sha256: and 64 hex digits")
    try:
        spec = fleet.service(service)
    except KeyError:
        known = ", ".join(sorted(s.name for s in fleet.services)) or "none"
        raise SubmitError(f"unknown service {quoted(service)} (known: {known})") from None
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
            if digest is not None and existing.digest != digest:
                # Its rollout was planned without this digest (an air-gapped environment
                # checks the artifact against it): taking it now would change nothing.
                first = (
                    "without a digest"
                    if existing.digest is None
                    else f"with digest {existing.digest}"
                )
                raise SubmitError(
                    f"{spec.name} {version} was already submitted {first}; refusing "
                    f"{digest} (submit a new version to roll out with it)"
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
        plan=build_plan(fleet, spec, environments),
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
                driver=driver_spec(environment),
                state=UpgradeState.PENDING,
                claim=0,
                created_at=now,
            )
        )
    session.flush()
    return rollout
