"""The audit trail: an action's event, added to the session of the action's transaction."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from rollout.domain.audit import Act, Actor
from rollout.store.models import Event


def record(
    session: Session,
    actor: Actor,
    act: Act,
    at: datetime,
    message: str,
    *,
    reason: str | None = None,
    service: str | None = None,
    rollout_id: int | None = None,
    team: str | None = None,
    subject: str | None = None,
) -> None:
    """Add the event to `session`: it commits with the action, or neither does."""
    session.add(
        Event(
            at=at,
            actor=actor.name[:255],
            token_id=actor.token_id,
            action=act.value,
            service=service,
            rollout_id=rollout_id,
            team=team,
            subject=None if subject is None else subject[:255],
            message=message,
            reason=reason,
        )
    )
