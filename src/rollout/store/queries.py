"""Named read queries over the tables: a rollout with its rows, and the demo's counts."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rollout.store.models import Measurement, Page, Release, Rollout, Upgrade


@dataclass
class RolloutDetail:
    rollout: Rollout
    release: Release
    upgrades: list[Upgrade]
    # upgrade id -> gate -> its measurements, oldest first
    measurements: dict[int, dict[str, list[Measurement]]] = field(default_factory=dict)
    pages: list[Page] = field(default_factory=list)


def rollout_detail(session: Session, rollout_id: int) -> RolloutDetail | None:
    rollout = session.get(Rollout, rollout_id)
    if rollout is None:
        return None
    release = session.get(Release, rollout.release_id)
    assert release is not None
    upgrades = list(
        session.scalars(
            select(Upgrade)
            .where(Upgrade.rollout_id == rollout_id)
            .order_by(Upgrade.stage_index, Upgrade.id)
        )
    )
    detail = RolloutDetail(rollout, release, upgrades)
    rows = session.scalars(
        select(Measurement)
        .join(Upgrade, Upgrade.id == Measurement.upgrade_id)
        .where(Upgrade.rollout_id == rollout_id)
        .order_by(Measurement.id)
    )
    for m in rows:
        detail.measurements.setdefault(m.upgrade_id, {}).setdefault(m.gate, []).append(m)
    detail.pages = list(
        session.scalars(select(Page).where(Page.rollout_id == rollout_id).order_by(Page.id))
    )
    return detail


def all_pages(session: Session) -> list[Page]:
    return list(session.scalars(select(Page).order_by(Page.id)))


def upgrade_counts(session: Session) -> dict[str, int]:
    return {
        state: n
        for state, n in session.execute(select(Upgrade.state, func.count()).group_by(Upgrade.state))
    }


def rollout_counts(session: Session) -> dict[str, int]:
    return {
        state: n
        for state, n in session.execute(select(Rollout.state, func.count()).group_by(Rollout.state))
    }
