"""Opening a page: one per cause, in the transaction that records the failure, addressed
to the person on call and queued to the team's channels (the outbox sends it)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from rollout.domain.pages import PageState
from rollout.domain.paging import PageFacts, PageKind, page_key, page_severity, summary
from rollout.paging.outbox import SAME_FACTS, address
from rollout.store.models import Page, Rollout, Upgrade


def open_page(
    session: Session,
    rollout: Rollout,
    upgrade: Upgrade,
    kind: PageKind,
    gate: str | None,
    reason: str | None,
    now: datetime,
) -> None:
    """Open the page for this cause, in the caller's transaction (the one that records the
    failure), addressed to whoever is on call and queued to the team's channels; and, for
    an air-gapped environment, the same facts to the operations rotation. A cause paged
    already is not paged again."""
    key = page_key(kind, rollout.id, gate, upgrade.environment)
    if session.execute(select(Page.id).where(Page.dedup_key == key)).first() is not None:
        return
    facts = PageFacts(
        rollout_id=rollout.id,
        service=upgrade.service,
        version=upgrade.to_version,
        environment=upgrade.environment,
        stage=upgrade.stage,
        gate=gate,
        reason=reason or "",
        rollback_to=upgrade.from_version,
    )
    page = Page(
        dedup_key=key,
        team=rollout.team,
        severity=page_severity(kind, rollout.plan.stage(upgrade.stage).severity),
        kind=kind,
        rollout_id=rollout.id,
        upgrade_id=upgrade.id,
        service=upgrade.service,
        version=upgrade.to_version,
        environment=upgrade.environment,
        stage=upgrade.stage,
        gate=gate,
        detail=facts.reason,
        summary=summary(kind, facts),
        state=PageState.OPEN,
        created_at=now,
    )
    session.add(page)
    address(session, page, rollout.plan.paging, now)
    operations = rollout.plan.operations
    if operations is not None and upgrade.environment in rollout.plan.air_gapped:
        # The NOC has hands on the air-gapped network: it gets its own page of the same facts.
        noc = Page(
            **{c: getattr(page, c) for c in SAME_FACTS},
            dedup_key=f"{key}/noc",
            team=operations.team,
            state=PageState.OPEN,
            created_at=now,
        )
        session.add(noc)
        address(session, noc, operations, now)
