"""Steering a rollout: what an operator may ask of it, each action one transaction under the
rollout's lock (the lock order of every mover: the rollout row first).

- pause: a RUNNING rollout becomes PAUSED with the reason "paused by operator: <reason>".
  Nothing new starts: upgrades let start but not yet deploying (READY) go back to PENDING and
  wait with the reason; upgrades in flight (deploying, verifying, rolling back) finish.
  Pausing a paused rollout changes nothing.
- resume: a PAUSED rollout becomes RUNNING. Resuming is the operator's decision on every
  upgrade that waits for one (AWAITING_DECISION, an inconclusive gate): it passes, becomes
  SUCCEEDED and its environment's installed version is updated, as a passed gate does. Then
  the rollout is planned again. Resuming a running rollout changes nothing.
- abort: a RUNNING or PAUSED rollout halts like a failure: FAILING with the reason
  "aborted by operator: <reason>" (FAILED once nothing is in flight), its release failed.
  Upgrades that await a decision roll back (ROLLING_BACK, due now: the ticker picks them
  up); upgrades not started are cancelled; those in flight finish. No page is written: the
  operator knows. Aborting a failing or failed rollout changes nothing.
- retry: a FAILED rollout's release gets a new rollout (same version and digest: the same
  release) with a fresh plan snapshot from the current fleet config, if no newer rollout of
  the service exists. Retrying a rollout that was retried already answers with that retry.
- promote: the current stage's remaining soak is skipped (its `stage_passed_at` is moved
  back so the soak is over now), only when the stage's required share of environments has
  passed. The rollout is then planned again, so the next stage starts at once.
- promote with force (an escape hatch, with a reason): the same when the stage has passed;
  when it has not, the rollout moves to the next stage now, without waiting for the rest of
  the stage's gates and soak. Upgrades of the stage already started go on as they would
  (a gate that fails still halts the rollout), and its pending ones may still start. The
  last stage has no next one: it is refused there (skip what holds it instead).
- skip (an escape hatch, with a reason): one environment's upgrade that has not started
  (PENDING, or READY and not yet taken by a step) becomes SKIPPED, a final state: its
  stage's share is counted without it, so the stage can pass. An upgrade already started
  is refused (wait for it, or abort); READY is taken back by a claim-checked update, so a
  step that took it first wins and the skip is refused, never both.

Every action that changes something writes its event (who, what, why) in the action's own
transaction: an action refused, or one that changed nothing, records none.

An action the rollout's state does not allow raises `SteeringRefused` with a one-line
reason (the API answers 409); an unknown rollout raises `NoSuchRollout` (404).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from rollout.config import Fleet
from rollout.domain.audit import Act, Actor
from rollout.domain.planning import PromotionRefused, RolloutView, end_soak
from rollout.domain.states import (
    ReleaseState,
    RolloutState,
    Steer,
    SteeringRefused,
    UpgradeState,
    check_upgrade,
    steer,
)
from rollout.engine.dispatch import Nudge
from rollout.engine.progress import (
    NO_HOLD,
    halt,
    install,
    lock_rollout,
    lock_service,
    replan,
    stages_of,
    upgrade_view,
    wake_waiting,
)
from rollout.engine.runtime import Runtime
from rollout.engine.submission import open_rollout
from rollout.store.database import is_postgresql, transaction
from rollout.store.events import record
from rollout.store.models import Release, Rollout, Upgrade

__all__ = [
    "NoSuchRollout",
    "NotInRollout",
    "Steered",
    "SteeringRefused",
    "abort",
    "pause",
    "promote",
    "resume",
    "retry",
    "skip",
]


class NoSuchRollout(LookupError):
    """No rollout has that id."""


class NotInRollout(LookupError):
    """The rollout has no upgrade in that environment."""


@dataclass(frozen=True)
class Steered:
    """What an action did: the rollout it leaves (for retry, the new one), and whether it
    changed anything."""

    rollout_id: int
    state: RolloutState
    changed: bool
    message: str
    retried_from: int | None = None


@dataclass
class _Done:
    steered: Steered
    nudges: list[Nudge]
    freed: bool = False  # upgrades finished: other rollouts of the service may go on


Action = Callable[[Session, Rollout, datetime], _Done]


def _act(
    runtime: Runtime,
    rollout_id: int,
    action: Action,
    actor: Actor,
    act: Act,
    reason: str | None,
    subject: str | None = None,
) -> Steered:
    service: str | None = None
    with transaction(runtime.database_url) as session:
        rollout = lock_rollout(session, rollout_id, runtime.database_url)
        if rollout is None:
            raise NoSuchRollout(f"no rollout {rollout_id}")
        now = runtime.now()
        done = action(session, rollout, now)
        service = rollout.service
        if done.steered.changed:
            # In the action's transaction: the event exists exactly if the action happened.
            record(
                session,
                actor,
                act,
                now,
                done.steered.message,
                reason=reason,
                service=rollout.service,
                rollout_id=rollout.id,
                team=rollout.team,
                subject=subject,
            )
    if done.freed:
        # As a step does after the upgrade's commit: it locks other rollouts.
        wake_waiting(runtime, service, rollout_id)
    runtime.dispatcher.send(done.nudges)
    return done.steered


def _by_operator(what: str, reason: str | None) -> str:
    return f"{what} by operator: {reason}" if reason else f"{what} by operator"


def _no_op(rollout: Rollout, message: str) -> _Done:
    return _Done(Steered(rollout.id, RolloutState(rollout.state), False, message), [])


def _upgrades(session: Session, rollout: Rollout, state: UpgradeState) -> list[Upgrade]:
    return list(
        session.scalars(
            select(Upgrade)
            .where(Upgrade.rollout_id == rollout.id, Upgrade.state == state)
            .order_by(Upgrade.id)
        )
    )


def take_back_ready(
    session: Session, rollout: Rollout, state: UpgradeState, **values: object
) -> None:
    """Move the rollout's READY upgrades to `state`, only those still READY: a step takes an
    upgrade READY -> DEPLOYING without the rollout's lock, by a claim-checked update, and this
    one bumps the claim, so exactly one of the two wins."""
    check_upgrade(UpgradeState.READY, state)
    session.execute(
        update(Upgrade)
        .where(Upgrade.rollout_id == rollout.id, Upgrade.state == UpgradeState.READY)
        .values(state=state, claim=Upgrade.claim + 1, due_at=None, **values)
        .execution_options(synchronize_session=False)
    )


def pause(runtime: Runtime, rollout_id: int, reason: str | None = None, *, actor: Actor) -> Steered:
    def action(session: Session, rollout: Rollout, now: datetime) -> _Done:
        if steer(RolloutState(rollout.state), Steer.PAUSE, f"rollout {rollout.id}") is None:
            return _no_op(rollout, f"rollout {rollout.id} is paused already: {rollout.reason}")
        rollout.state = RolloutState.PAUSED
        rollout.reason = _by_operator("paused", reason)
        take_back_ready(session, rollout, UpgradeState.PENDING)
        nudges = replan(session, rollout, runtime)
        message = f"rollout {rollout.id} paused: {rollout.reason}"
        return _Done(Steered(rollout.id, RolloutState.PAUSED, True, message), nudges)

    return _act(runtime, rollout_id, action, actor, Act.PAUSE, reason)


def resume(
    runtime: Runtime, rollout_id: int, reason: str | None = None, *, actor: Actor
) -> Steered:
    def action(session: Session, rollout: Rollout, now: datetime) -> _Done:
        if steer(RolloutState(rollout.state), Steer.RESUME, f"rollout {rollout.id}") is None:
            return _no_op(rollout, f"rollout {rollout.id} is running already")
        rollout.state, rollout.reason = RolloutState.RUNNING, None
        decided = _upgrades(session, rollout, UpgradeState.AWAITING_DECISION)
        for upgrade in decided:
            check_upgrade(UpgradeState.AWAITING_DECISION, UpgradeState.SUCCEEDED)
            upgrade.state = UpgradeState.SUCCEEDED
            upgrade.reason = f"{_by_operator('passed', reason)} (was: {upgrade.reason})"
            upgrade.claim += 1
            upgrade.due_at, upgrade.finished_at = None, now
            install(session, upgrade, now)
        nudges = replan(session, rollout, runtime)
        message = f"rollout {rollout.id} resumed"
        if decided:
            message += f"; passed {', '.join(u.environment for u in decided)}"
        steered = Steered(rollout.id, RolloutState(rollout.state), True, message)
        return _Done(steered, nudges, freed=bool(decided))

    return _act(runtime, rollout_id, action, actor, Act.RESUME, reason)


def abort(runtime: Runtime, rollout_id: int, reason: str | None = None, *, actor: Actor) -> Steered:
    def action(session: Session, rollout: Rollout, now: datetime) -> _Done:
        if steer(RolloutState(rollout.state), Steer.ABORT, f"rollout {rollout.id}") is None:
            return _no_op(rollout, f"rollout {rollout.id} is halted already: {rollout.reason}")
        why = _by_operator("aborted", reason)
        halt(session, rollout, why)
        take_back_ready(
            session,
            rollout,
            UpgradeState.CANCELLED,
            reason="not started: the rollout halted",
            finished_at=now,
        )
        for upgrade in _upgrades(session, rollout, UpgradeState.AWAITING_DECISION):
            check_upgrade(UpgradeState.AWAITING_DECISION, UpgradeState.ROLLING_BACK)
            upgrade.state, upgrade.reason = UpgradeState.ROLLING_BACK, why
            upgrade.claim += 1
            upgrade.due_at = now  # the ticker claims it and a worker rolls it back
        nudges = replan(session, rollout, runtime)
        message = f"rollout {rollout.id} aborted: {why}"
        return _Done(Steered(rollout.id, RolloutState(rollout.state), True, message), nudges)

    return _act(runtime, rollout_id, action, actor, Act.ABORT, reason)


def retry(runtime: Runtime, fleet: Fleet, rollout_id: int, *, actor: Actor) -> Steered:
    def action(session: Session, rollout: Rollout, now: datetime) -> _Done:
        # A submission at this moment must not open a second live rollout beside ours. The
        # rollout is final, so no submission waits on its lock while holding the service's.
        lock_service(session, rollout.service, runtime.database_url)
        newer = session.scalars(
            select(Rollout)
            .where(Rollout.service == rollout.service, Rollout.id > rollout.id)
            .order_by(Rollout.id.desc())
        ).first()
        if newer is not None and newer.release_id == rollout.release_id:
            message = f"rollout {rollout.id} was retried already: rollout {newer.id}"
            steered = Steered(newer.id, RolloutState(newer.state), False, message, rollout.id)
            return _Done(steered, [])
        if newer is not None:
            raise SteeringRefused(
                f"rollout {rollout.id} cannot be retried: rollout {newer.id} of "
                f"{rollout.service} ({newer.version}) is newer"
            )
        steer(RolloutState(rollout.state), Steer.RETRY, f"rollout {rollout.id}")
        try:
            spec = fleet.service(rollout.service)
        except KeyError:
            raise SteeringRefused(
                f"rollout {rollout.id} cannot be retried: service {rollout.service} is not in "
                "the fleet config any more"
            ) from None
        release = session.get(Release, rollout.release_id)
        assert release is not None
        release.state, release.reason = ReleaseState.ACTIVE, None
        fresh = open_rollout(session, fleet, spec, fleet.environments_of(spec), release, now)
        nudges = replan(session, fresh, runtime)
        message = f"rollout {rollout.id} retried: rollout {fresh.id} ({release.version})"
        steered = Steered(fresh.id, RolloutState(fresh.state), True, message, rollout.id)
        return _Done(steered, nudges)

    return _act(runtime, rollout_id, action, actor, Act.RETRY, None)


def promote(
    runtime: Runtime,
    rollout_id: int,
    reason: str | None = None,
    *,
    actor: Actor,
    force: bool = False,
) -> Steered:
    reason = (reason or "").strip() or None
    if force and reason is None:
        raise SteeringRefused("a forced promotion needs a reason (--reason)")

    def action(session: Session, rollout: Rollout, now: datetime) -> _Done:
        steer(RolloutState(rollout.state), Steer.PROMOTE, f"rollout {rollout.id}")
        stages = stages_of(rollout)
        upgrades = session.scalars(select(Upgrade).where(Upgrade.rollout_id == rollout.id))
        view = RolloutView(
            RolloutState(rollout.state), rollout.stage_index, rollout.stage_passed_at
        )
        stage = stages[rollout.stage_index].name
        try:
            passed_at = end_soak(view, stages, [upgrade_view(u) for u in upgrades], now)
        except PromotionRefused as refused:
            if not force:
                raise
            if rollout.stage_index + 1 == len(stages):
                raise SteeringRefused(
                    f"{refused}; it is the last stage, so there is no next stage to force: "
                    "skip the environments that hold it (rollout skip)"
                ) from None
            # The stage counts as passed now: the planner goes on from the next one.
            rollout.stage_index, rollout.stage_passed_at = rollout.stage_index + 1, None
            forced = f"{refused}, promoted by force"
        else:
            forced = ""
            if rollout.stage_passed_at is None or rollout.stage_passed_at > passed_at:
                rollout.stage_passed_at = passed_at
        nudges = replan(session, rollout, runtime)
        message = f"rollout {rollout.id}: stage {stage} promoted"
        if forced:
            message = f"rollout {rollout.id}: {forced}"
        if rollout.stage_index < len(stages) and stages[rollout.stage_index].name != stage:
            message += f"; now at stage {stages[rollout.stage_index].name}"
        return _Done(Steered(rollout.id, RolloutState(rollout.state), True, message), nudges)

    act = Act.FORCE_PROMOTE if force else Act.PROMOTE
    return _act(runtime, rollout_id, action, actor, act, reason)


def skip(
    runtime: Runtime, rollout_id: int, environment: str, reason: str, *, actor: Actor
) -> Steered:
    why = reason.strip()
    if not why:
        raise SteeringRefused("skipping an environment needs a reason (--reason)")

    def action(session: Session, rollout: Rollout, now: datetime) -> _Done:
        steer(RolloutState(rollout.state), Steer.SKIP, f"rollout {rollout.id}")
        query = select(Upgrade).where(
            Upgrade.rollout_id == rollout.id, Upgrade.environment == environment
        )
        if is_postgresql(runtime.database_url):
            query = query.with_for_update()
        upgrade = session.scalars(query).one_or_none()
        if upgrade is None:
            raise NotInRollout(f"rollout {rollout.id} has no upgrade in {environment}")
        state = UpgradeState(upgrade.state)
        if state is UpgradeState.SKIPPED:
            return _no_op(rollout, f"rollout {rollout.id}: {environment} is skipped already")
        if state not in (UpgradeState.PENDING, UpgradeState.READY):
            raise SteeringRefused(
                f"rollout {rollout.id}: {environment} is {state}: only an upgrade not started "
                "yet can be skipped (wait for it to finish, or abort the rollout)"
            )
        check_upgrade(state, UpgradeState.SKIPPED)
        # Claim-checked as take_back_ready: a step taking it READY -> DEPLOYING without the
        # rollout's lock bumps the claim too, so exactly one of the two wins.
        taken = session.execute(
            update(Upgrade)
            .where(Upgrade.id == upgrade.id, Upgrade.claim == upgrade.claim)
            .where(Upgrade.state.in_([UpgradeState.PENDING, UpgradeState.READY]))
            .values(
                state=UpgradeState.SKIPPED,
                claim=Upgrade.claim + 1,
                reason=_by_operator("skipped", why),
                due_at=None,
                finished_at=now,
                **NO_HOLD,
            )
            .execution_options(synchronize_session=False)
        )
        if taken.rowcount != 1:  # type: ignore[attr-defined]
            raise SteeringRefused(
                f"rollout {rollout.id}: {environment} started meanwhile: only an upgrade not "
                "started yet can be skipped"
            )
        before, stage = rollout.stage_index, upgrade.stage_index
        session.expire(upgrade)
        nudges = replan(session, rollout, runtime)
        message = f"rollout {rollout.id}: {environment} skipped: {why}"
        stages = stages_of(rollout)
        if rollout.stage_index != before and rollout.stage_index < len(stages):
            message += f"; now at stage {stages[rollout.stage_index].name}"
        elif rollout.stage_index == stage and rollout.stage_passed_at is not None:
            message += f"; stage {stages[stage].name} passed"
        return _Done(Steered(rollout.id, RolloutState(rollout.state), True, message), nudges)

    return _act(runtime, rollout_id, action, actor, Act.SKIP, why, subject=environment)
