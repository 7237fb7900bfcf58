"""Moving a rollout: run the planner over its rows and write the decisions back."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.orm import Session, defer
from sqlalchemy.orm.attributes import set_committed_value

from rollout.domain.constraints import DAYS, Constraints, Freeze, Requirement, Window
from rollout.domain.holds import Hold, HoldKind
from rollout.domain.planning import RolloutView, StagePlan, UpgradeView, plan
from rollout.domain.states import ReleaseState, RolloutState, UpgradeState, check_rollout
from rollout.engine.dispatch import Nudge, StepNudge
from rollout.engine.runtime import Runtime
from rollout.plan.models import WindowSpec
from rollout.store.database import is_postgresql, transaction
from rollout.store.models import Freeze as FreezeRow
from rollout.store.models import Installation, Release, Rollout, Upgrade

IN_FLIGHT = [s.value for s in UpgradeState if s.in_flight]
# What an upgrade that no longer waits has for a hold.
NO_HOLD: dict[str, None] = {"hold_reason": None, "hold_kind": None, "hold_subject": None}
_SETTLED_RELEASE = {
    RolloutState.SUCCEEDED: ReleaseState.SUCCEEDED,
    RolloutState.SUPERSEDED: ReleaseState.SUPERSEDED,
}


def stages_of(rollout: Rollout) -> list[StagePlan]:
    return [
        StagePlan(
            name=s.name,
            soak=s.soak,
            promote_share=s.promote_share,
            parallelism=s.parallelism,
            parallelism_percent=s.parallelism_percent,
        )
        for s in rollout.plan.stages
    ]


def _windows(specs: Sequence[WindowSpec]) -> tuple[Window, ...]:
    return tuple(
        Window(frozenset(DAYS.index(d) for d in spec.days), spec.start, spec.end, spec.zone)
        for spec in specs
    )


def constraints_of(
    session: Session, rollout: Rollout, environments: list[str], now: datetime
) -> Constraints:
    """What the rollout's pending upgrades must respect now: windows and requirements from
    its snapshot, freezes and installed versions from the database, in this transaction."""
    windows = rollout.plan.windows
    requires = tuple(Requirement(r.service, r.op, r.version) for r in rollout.plan.requires)
    freezes = session.scalars(
        select(FreezeRow).where(
            FreezeRow.until > now,
            or_(
                and_(FreezeRow.kind == "service", FreezeRow.target == rollout.service),
                and_(FreezeRow.kind == "environment", FreezeRow.target.in_(environments)),
            ),
        )
    ).all()
    installed: dict[tuple[str, str], str] = {}
    if requires:
        rows = session.execute(
            select(Installation.environment, Installation.service, Installation.version).where(
                Installation.service.in_([r.service for r in requires]),
                Installation.environment.in_(environments),
            )
        ).all()
        installed = {(env, service): version for env, service, version in rows}
    release = session.get(Release, rollout.release_id)
    return Constraints(
        service=rollout.service,
        version=rollout.version,
        service_windows=_windows(windows.service),
        environment_windows={env: _windows(specs) for env, specs in windows.environments.items()},
        requires=requires,
        freezes=tuple(Freeze(f.target, f.kind, f.until, f.reason) for f in freezes),
        installed=installed,
        recalled=release is not None and release.state == ReleaseState.RECALLED,
    )


def lock_rollout(session: Session, rollout_id: int, url: str) -> Rollout | None:
    """Every transaction that moves a rollout's rows takes the rollout first: one lock order,
    no deadlocks."""
    # The plan is loaded only if the caller needs it: most steps never do.
    query = select(Rollout).where(Rollout.id == rollout_id).options(defer(Rollout.plan))
    if is_postgresql(url):
        query = query.with_for_update()
    return session.execute(query).scalar_one_or_none()


def lock_service(session: Session, service: str, url: str) -> None:
    """Serialise the transactions that open rollouts of `service` (submit, retry) until this
    one ends. A row lock cannot do it: a rollout another submission inserted and has not
    committed is invisible to `SELECT … FOR UPDATE`. SQLite needs none: its writers take the
    database's one write lock at BEGIN."""
    if is_postgresql(url):
        session.execute(select(func.pg_advisory_xact_lock(_service_key(service))))


def _service_key(service: str) -> int:
    # A stable signed 64-bit key (Python's hash() differs between processes).
    digest = hashlib.blake2b(f"rollout/service/{service}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def advance(runtime: Runtime, rollout_id: int) -> None:
    """Plan one rollout again (a nudge, a soak that ended, or the reconciler)."""
    with transaction(runtime.database_url) as session:
        rollout = lock_rollout(session, rollout_id, runtime.database_url)
        if rollout is None or RolloutState(rollout.state).final:
            return
        nudges = replan(session, rollout, runtime)
    runtime.dispatcher.send(nudges)


def replan(session: Session, rollout: Rollout, runtime: Runtime) -> list[Nudge]:
    """Apply the planner's decisions for a rollout locked by the caller; return the nudges to
    send once the transaction commits."""
    now = runtime.now()
    rows = select(Upgrade).where(Upgrade.rollout_id == rollout.id).order_by(Upgrade.id)
    if is_postgresql(runtime.database_url):
        # A step taking a READY upgrade for deploy waits for this plan, or this plan sees it
        # deploying: never cancelled here while deployed there.
        rows = rows.with_for_update()
    upgrades = session.execute(rows).scalars().all()
    pending_envs = [u.environment for u in upgrades if u.state == UpgradeState.PENDING]
    decided = plan(
        _view(rollout),
        stages_of(rollout),
        [upgrade_view(u) for u in upgrades],
        _busy(session, rollout, pending_envs),
        now,
        # Only a running rollout starts upgrades: a halted one needs no constraint read.
        constraints_of(session, rollout, pending_envs, now)
        if pending_envs and rollout.state == RolloutState.RUNNING
        else None,
    )
    by_id = {u.id: u for u in upgrades}
    lease_end = runtime.claimed_until(now)
    started = [by_id[upgrade_id] for upgrade_id in decided.start]
    _write_alike(
        session, started, claimed=True, state=UpgradeState.READY, due_at=lease_end, **NO_HOLD
    )
    nudges: list[Nudge] = [StepNudge(u.id, u.claim, rollout.id) for u in started]
    held: dict[Hold, list[Upgrade]] = defaultdict(list)
    for upgrade_id, hold in decided.holds.items():
        if _hold_of(by_id[upgrade_id]) != hold:
            held[hold].append(by_id[upgrade_id])
    for hold, alike in held.items():
        _write_alike(
            session, alike, hold_reason=hold.text, hold_kind=hold.kind, hold_subject=hold.subject
        )
    if rollout.state == RolloutState.SUPERSEDING:
        never_started, why = UpgradeState.SUPERSEDED, rollout.reason
    else:
        never_started, why = UpgradeState.CANCELLED, "not started: the rollout halted"
    _write_alike(
        session,
        [by_id[upgrade_id] for upgrade_id in decided.cancel],
        claimed=True,
        state=never_started,
        reason=why,
        due_at=None,
        finished_at=now,
        **NO_HOLD,
    )

    rollout.stage_index = decided.stage_index
    rollout.stage_passed_at = decided.stage_passed_at
    rollout.due_at = decided.due_at
    if decided.state != rollout.state:
        rollout.state = decided.state
        if decided.state.final:
            rollout.finished_at = now
            settled = _SETTLED_RELEASE.get(decided.state)
            if settled is not None:
                session.execute(
                    update(Release)
                    .where(Release.id == rollout.release_id, Release.state == ReleaseState.ACTIVE)
                    .values(state=settled)
                )
    rollout.updated_at = now
    return nudges


def _write_alike(
    session: Session, upgrades: Sequence[Upgrade], claimed: bool = False, **values: Any
) -> None:
    """Give upgrades the same new values in one statement (`claimed`: and a new claim each),
    keeping their loaded rows in step. A plan moves many rows alike (every held upgrade's
    reason changes as its stage passes another environment): one statement per row was the
    largest share of a plan's writes."""
    if not upgrades:
        return
    assigned = {**values, "claim": Upgrade.claim + 1} if claimed else values
    # The ORM flushes pending changes before this statement, so none is lost below.
    session.execute(
        update(Upgrade)
        .where(Upgrade.id.in_([u.id for u in upgrades]))
        .values(assigned)
        .execution_options(synchronize_session=False)
    )
    for upgrade in upgrades:
        for name, value in values.items():
            set_committed_value(upgrade, name, value)
        if claimed:
            set_committed_value(upgrade, "claim", upgrade.claim + 1)


def _hold_of(upgrade: Upgrade) -> Hold | None:
    if upgrade.hold_kind is None or upgrade.hold_reason is None:
        return None
    return Hold(HoldKind(upgrade.hold_kind), upgrade.hold_subject or "", upgrade.hold_reason)


def _view(rollout: Rollout) -> RolloutView:
    state = RolloutState(rollout.state)
    return RolloutView(state, rollout.stage_index, rollout.stage_passed_at, rollout.reason)


def upgrade_view(upgrade: Upgrade) -> UpgradeView:
    """An upgrade row as the planner sees it."""
    return UpgradeView(
        upgrade.id, upgrade.environment, upgrade.stage_index, UpgradeState(upgrade.state)
    )


def install(session: Session, upgrade: Upgrade, now: datetime) -> None:
    """An upgrade succeeded: its version is what the environment runs now."""
    installation = session.get(Installation, (upgrade.environment, upgrade.service))
    if installation is None:
        session.add(
            Installation(
                environment=upgrade.environment,
                service=upgrade.service,
                version=upgrade.to_version,
                updated_at=now,
            )
        )
    else:
        installation.version, installation.updated_at = upgrade.to_version, now


def uninstall(session: Session, upgrade: Upgrade, now: datetime) -> None:
    """An upgrade rolled back: where its version had been recorded as installed (a recall
    rolling off a success), the environment runs the version before it again."""
    installation = session.get(Installation, (upgrade.environment, upgrade.service))
    if installation is None or installation.version != upgrade.to_version:
        return
    if upgrade.from_version is None:
        session.delete(installation)
    else:
        installation.version, installation.updated_at = upgrade.from_version, now


def halt(session: Session, rollout: Rollout, reason: str) -> None:
    """Halt a rollout like a failure: nothing new starts, and its release failed."""
    current = RolloutState(rollout.state)
    if current is not RolloutState.FAILING:
        check_rollout(current, RolloutState.FAILING)
        rollout.state = RolloutState.FAILING
        rollout.reason = reason
    release = session.get(Release, rollout.release_id)
    assert release is not None
    if release.state in (ReleaseState.ACTIVE, ReleaseState.SUPERSEDED):
        release.state, release.reason = ReleaseState.FAILED, reason


def _busy(session: Session, rollout: Rollout, environments: list[str]) -> dict[str, Hold]:
    """Environments where another rollout of this service has an upgrade in flight.

    Read without locking the other rollouts, and still race-free: only the one live rollout
    of a service starts upgrades (the index on `rollouts` admits no second), and it was made
    live in the transaction that superseded the others, after their plans took back what
    they had not begun. What those others still have in flight can only finish, and a
    finish commits before it wakes this rollout, whose lock that wake waits for."""
    if not environments:
        return {}
    rows = session.execute(
        select(Upgrade.environment, Upgrade.rollout_id, Upgrade.to_version).where(
            Upgrade.service == rollout.service,
            Upgrade.environment.in_(environments),
            Upgrade.rollout_id != rollout.id,
            Upgrade.state.in_(IN_FLIGHT),
        )
    ).all()
    return {
        env: Hold(
            HoldKind.BUSY,
            str(other),
            f"environment busy: rollout {other} is moving it to {version}",
        )
        for env, other, version in rows
    }


@dataclass
class Wakes:
    """Other rollouts that a batch of steps may have let go on: woken together, after the
    writes that let them committed."""

    # (service, rollout): that rollout finished an upgrade of the service, so an environment
    # its other live rollouts wait for may be free.
    freed: set[tuple[str, int]] = field(default_factory=set)
    # (environment, service) whose installed version changed: upgrades requiring it may start.
    installed: set[tuple[str, str]] = field(default_factory=set)


def wake(runtime: Runtime, wakes: Wakes) -> None:
    """Plan soon the rollouts `wakes` names, in one statement of its own transaction: it
    locks other rollouts, so it never runs while one is held (that could deadlock with their
    plans). Once per batch: one transaction per step's wakes cost a tenth of a worker in the
    benchmark."""
    if not wakes.freed and not wakes.installed:
        return
    woken = []
    if wakes.freed:
        woken.append(
            and_(
                Rollout.state.in_([RolloutState.RUNNING, RolloutState.SUPERSEDING]),
                or_(
                    *(
                        and_(Rollout.service == service, Rollout.id != freed_by)
                        for service, freed_by in sorted(wakes.freed)
                    )
                ),
            )
        )
    if wakes.installed:
        waiting = select(Upgrade.rollout_id).where(
            Upgrade.state == UpgradeState.PENDING,
            or_(
                *(
                    and_(
                        Upgrade.environment == environment,
                        Upgrade.hold_kind == HoldKind.DEPENDENCY,
                        Upgrade.hold_subject == service,
                    )
                    for environment, service in sorted(wakes.installed)
                )
            ),
        )
        woken.append(and_(Rollout.state == RolloutState.RUNNING, Rollout.id.in_(waiting)))
    make_due(runtime, or_(*woken))


def make_due(runtime: Runtime, which: ColumnElement[bool]) -> None:
    """Make the rollouts `which` selects due now, in a transaction of its own that locks
    them in id order: every waker does, so two at once cannot deadlock."""
    chosen = select(Rollout.id).where(which).order_by(Rollout.id)
    if is_postgresql(runtime.database_url):
        chosen = chosen.with_for_update()
    with transaction(runtime.database_url) as session:
        session.execute(
            update(Rollout)
            .where(Rollout.id.in_(chosen.scalar_subquery()))
            .values(due_at=runtime.now())
            .execution_options(synchronize_session=False)
        )


def wake_waiting(runtime: Runtime, service: str, except_rollout: int) -> None:
    """An environment came free: plan the other live rollouts of the service soon."""
    wake(runtime, Wakes(freed={(service, except_rollout)}))
