"""Freezes: an operator holds every new upgrade of an environment or a service until a time;
lifting one wakes what it held."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from rollout.config import Fleet, parse_duration
from rollout.domain.audit import Act, Actor
from rollout.domain.constraints import at_utc
from rollout.domain.states import RolloutState, UpgradeState
from rollout.engine.progress import make_due
from rollout.engine.runtime import Runtime
from rollout.quoting import cut, quoted
from rollout.store.database import transaction
from rollout.store.events import record
from rollout.store.models import Freeze, Rollout, Upgrade

KINDS = ("environment", "service")
MAX_REASON = 500


class FreezeRefused(ValueError):
    """The freeze was refused; the message says why in one line, and nothing was written."""


class UnknownTarget(FreezeRefused):
    """No environment or service of the fleet has that name."""


@dataclass(frozen=True)
class FreezeView:
    kind: str
    target: str
    until: datetime
    reason: str
    created_at: datetime

    @property
    def message(self) -> str:
        return f"{self.kind} {self.target} frozen until {at_utc(self.until)}: {self.reason}"


@dataclass(frozen=True)
class Unfrozen:
    changed: bool
    message: str


def parse_until(given: str | datetime, now: datetime) -> datetime:
    """An ISO time (UTC when it names no zone) or a duration from now such as 2h or 90m;
    refused when it is not in the future."""
    text = given.isoformat() if isinstance(given, datetime) else given.strip()
    try:
        if isinstance(given, datetime):
            return _future(given, text, now)
        try:
            ahead = parse_duration(text)
        except ValueError:
            pass
        else:
            return _future(now + ahead, text, now)
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise FreezeRefused(
                f"invalid until {quoted(text)}: use an ISO time (2026-12-24T18:00+01:00) or a "
                "duration (2h, 90m, 1d)"
            ) from None
        return _future(parsed, text, now)
    except OverflowError:
        raise FreezeRefused(f"{cut(text)} is out of range") from None


def _future(when: datetime, text: str, now: datetime) -> datetime:
    until = (when if when.tzinfo is not None else when.replace(tzinfo=UTC)).astimezone(UTC)
    if until <= now:
        raise FreezeRefused(f"{cut(text)} is not in the future (now is {at_utc(now)})")
    return until


def target_kind(fleet: Fleet, target: str, kind: str | None = None) -> str:
    """Whether `target` names an environment or a service of the fleet; refused if neither,
    or if it names both and `kind` does not say which."""
    found = []
    if kind in (None, "environment") and target in {e.name for e in fleet.environments}:
        found.append("environment")
    if kind in (None, "service") and target in {s.name for s in fleet.services}:
        found.append("service")
    if not found:
        what = kind or "environment or service"
        raise UnknownTarget(f"unknown {what} {quoted(target)}")
    if len(found) > 1:
        raise FreezeRefused(f"{quoted(target)} is an environment and a service: say which (--kind)")
    return found[0]


def freeze(
    runtime: Runtime,
    fleet: Fleet,
    target: str,
    until: str | datetime,
    reason: str,
    kind: str | None = None,
    *,
    actor: Actor,
) -> FreezeView:
    """Freeze `target` until `until`; freezing it again replaces the time and the reason."""
    now = runtime.now()
    reason = reason.strip()
    if not reason:
        raise FreezeRefused("a freeze needs a reason (--reason)")
    if len(reason) > MAX_REASON:
        raise FreezeRefused(f"the reason is longer than {MAX_REASON} characters")
    found_kind = target_kind(fleet, target, kind)
    ends = parse_until(until, now)
    with transaction(runtime.database_url) as session:
        row = session.get(Freeze, (found_kind, target), with_for_update=True)
        if row is None:
            row = Freeze(kind=found_kind, target=target, until=ends, reason=reason, created_at=now)
            session.add(row)
        else:
            row.until, row.reason, row.created_at = ends, reason, now
        view = _view(row)
        service = target if found_kind == "service" else None
        record(
            session,
            actor,
            Act.FREEZE,
            now,
            view.message,
            reason=reason,
            service=service,
            team=fleet.service(target).team if service is not None else None,
            subject=f"{found_kind} {target}",
        )
    # Nothing to wake: a frozen upgrade simply is not started by the next plan.
    return view


def unfreeze(runtime: Runtime, target: str, kind: str | None = None, *, actor: Actor) -> Unfrozen:
    """Lift the freezes of `target` and plan at once what they held."""
    now = runtime.now()
    with transaction(runtime.database_url) as session:
        query = select(Freeze).where(Freeze.target == target)
        if kind is not None:
            query = query.where(Freeze.kind == kind)
        rows = [r for r in session.scalars(query) if r.until > now]
        for row in session.scalars(query):
            session.delete(row)
        kinds = [r.kind for r in rows]
        message = f"{' and '.join(kinds)} {target} unfrozen"
        if kinds:
            service = target if "service" in kinds else None
            # The service's owner, as its rollouts name it: a team token sees its own.
            team = session.scalar(
                select(Rollout.team).where(Rollout.service == target).order_by(Rollout.id.desc())
            )
            record(
                session,
                actor,
                Act.UNFREEZE,
                now,
                message,
                service=service,
                team=team if service is not None else None,
                subject=" and ".join(f"{k} {target}" for k in kinds),
            )
    if not kinds:
        return Unfrozen(False, f"{cut(target)} was not frozen")
    _wake(runtime, target, kinds)
    return Unfrozen(True, message)


def active_freezes(session: Session, now: datetime) -> list[FreezeView]:
    rows = session.scalars(
        select(Freeze).where(Freeze.until > now).order_by(Freeze.until, Freeze.target)
    )
    return [_view(row) for row in rows]


def _view(row: Freeze) -> FreezeView:
    return FreezeView(row.kind, row.target, row.until, row.reason, row.created_at)


def _wake(runtime: Runtime, target: str, kinds: list[str]) -> None:
    # In a transaction of its own, after the freeze is gone: it locks rollout rows, and the
    # plans it triggers must see the freeze lifted. If it is lost, the held rollouts still
    # come due at the freeze's end, the time their plan recorded.
    held = select(Upgrade.rollout_id).where(Upgrade.state == UpgradeState.PENDING)
    if "service" in kinds and "environment" in kinds:
        held = held.where((Upgrade.environment == target) | (Upgrade.service == target))
    elif "service" in kinds:
        held = held.where(Upgrade.service == target)
    else:
        held = held.where(Upgrade.environment == target)
    make_due(runtime, and_(Rollout.id.in_(held), Rollout.state == RolloutState.RUNNING))
