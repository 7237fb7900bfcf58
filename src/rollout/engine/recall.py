"""Recalling a release: no new upgrade to it anywhere, and every environment running it
rolls off to its last good version at once (no gates, no ramp, no page)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from rollout.domain.audit import Act, Actor
from rollout.domain.states import ReleaseState, RolloutState, UpgradeState, check_upgrade
from rollout.engine.dispatch import Nudge
from rollout.engine.progress import halt, lock_rollout, replan
from rollout.engine.runtime import Runtime
from rollout.engine.steering import take_back_ready
from rollout.quoting import cut
from rollout.store.database import transaction
from rollout.store.events import record
from rollout.store.models import Installation, Release, Rollout, Upgrade


class NoSuchRelease(LookupError):
    """No release of that service and version was submitted."""


@dataclass(frozen=True)
class Recalled:
    release_id: int
    changed: bool  # False: it was recalled already
    rolling_off: tuple[str, ...]  # environments that go back to their last good version
    message: str


def recall(
    runtime: Runtime, service: str, version: str, reason: str | None = None, *, actor: Actor
) -> Recalled:
    why = f"recalled: {reason}" if reason else "recalled"
    nudges: list[Nudge] = []
    with transaction(runtime.database_url) as session:
        release = session.scalars(
            select(Release).where(Release.service == service, Release.version == version)
        ).first()
        if release is None:
            raise NoSuchRelease(f"no release {cut(service)} {cut(version)}")
        if release.state == ReleaseState.RECALLED:
            return Recalled(release.id, False, (), f"{service} {version} is recalled already")
        now = runtime.now()
        rolling_off: list[str] = []
        ids = session.scalars(
            select(Rollout.id).where(Rollout.release_id == release.id).order_by(Rollout.id)
        ).all()
        for rollout_id in ids:
            # The rollout first, as every mover of its rows takes it.
            rollout = lock_rollout(session, rollout_id, runtime.database_url)
            assert rollout is not None
            if not RolloutState(rollout.state).final:
                halt(session, rollout, why)
                take_back_ready(
                    session,
                    rollout,
                    UpgradeState.CANCELLED,
                    reason="not started: the release was recalled",
                    finished_at=now,
                )
            for upgrade in session.scalars(
                select(Upgrade).where(
                    Upgrade.rollout_id == rollout.id,
                    Upgrade.state.in_([UpgradeState.SUCCEEDED, UpgradeState.AWAITING_DECISION]),
                )
            ):
                installed = session.get(Installation, (upgrade.environment, upgrade.service))
                if upgrade.state == UpgradeState.SUCCEEDED and (
                    installed is None or installed.version != version
                ):
                    continue  # something newer replaced it there since: nothing to roll off
                check_upgrade(UpgradeState(upgrade.state), UpgradeState.ROLLING_BACK)
                upgrade.state, upgrade.reason = UpgradeState.ROLLING_BACK, why
                upgrade.rollback_started_at, upgrade.finished_at = None, None
                upgrade.claim += 1
                upgrade.due_at = now  # the ticker claims it; a worker rolls it back
                rolling_off.append(upgrade.environment)
            if not RolloutState(rollout.state).final:
                nudges += replan(session, rollout, runtime)
        release.state, release.reason = ReleaseState.RECALLED, why
        message = f"{service} {version} {why}; rolling off in " + (
            ", ".join(rolling_off) if rolling_off else "no environment"
        )
        result = Recalled(release.id, True, tuple(rolling_off), message)
        team = session.scalar(
            select(Rollout.team).where(Rollout.release_id == release.id).order_by(Rollout.id)
        )
        record(
            session,
            actor,
            Act.RECALL,
            now,
            message,
            reason=reason,
            service=service,
            team=team,
            subject=version,
        )
    runtime.dispatcher.send(nudges)
    return result
