"""On-call overrides: someone covers a team's rotation for a while, checked and written."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.orm import Session

from rollout.config import Team
from rollout.domain.audit import Act, Actor
from rollout.quoting import quoted
from rollout.store.events import record
from rollout.store.models import Override


class OverrideRefused(Exception):
    """The override names someone outside the team, an unknown role, or an empty span."""


def add_override(
    session: Session,
    team: Team,
    member: str,
    starts: datetime,
    ends: datetime,
    now: datetime,
    role: str = "primary",
    replaces: str | None = None,
    *,
    actor: Actor,
) -> Override:
    """Write the override (it wins over the rota from `starts` to `ends`); refuse a mistake."""
    members = {m.name: m for m in team.members}
    if member not in members:
        raise OverrideRefused(
            f"{quoted(member)} is not a member of team {team.name!r} ({', '.join(members)})"
        )
    if replaces is not None and replaces not in members:
        raise OverrideRefused(f"{quoted(replaces)} is not a member of team {team.name!r}")
    if role not in ("primary", "secondary"):
        raise OverrideRefused(f"unknown role {quoted(role)} (primary or secondary)")
    try:
        start, end = starts.astimezone(UTC), ends.astimezone(UTC)
    except OverflowError:
        raise OverrideRefused(
            f"{starts.isoformat()} to {ends.isoformat()}: a time out of range"
        ) from None
    if end <= start:
        raise OverrideRefused("--until must be after --from")
    row = Override(
        team=team.name,
        role=role,
        member=member,
        timezone=members[member].timezone,
        replaces=replaces,
        starts_at=start,
        ends_at=end,
        created_at=now,
    )
    session.add(row)
    session.flush()
    instead = f" in place of {replaces}" if replaces else ""
    record(
        session,
        actor,
        Act.OVERRIDE,
        now,
        f"override {row.id}: {member} covers {team.name}'s {role}{instead} from "
        f"{start.isoformat()} to {end.isoformat()}",
        team=team.name,
        subject=member,
    )
    return row
