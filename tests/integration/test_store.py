"""The schema: migrations create exactly what the models describe, on PostgreSQL and SQLite,
and carry the rows of older schemas over."""

from __future__ import annotations

from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import insert, select, text, update
from sqlalchemy.exc import IntegrityError

from rollout.store.database import alembic_config, engine_for, migrate
from rollout.store.models import Base, Release, Rollout, Upgrade
from tests.conftest import fresh_database

pytestmark = pytest.mark.integration


def _drift(url: str) -> list[object]:
    with engine_for(url).connect() as connection:
        # The simulated fleet keeps its own tables beside ours in the test database.
        ours = {
            "include_name": lambda name, kind, _: kind != "table" or not name.startswith("sim_")
        }
        context = MigrationContext.configure(connection, opts=ours)
        return list(compare_metadata(context, Base.metadata))


def test_migrations_match_the_models_on_postgresql(postgres_url: str) -> None:
    assert _drift(postgres_url) == []


def test_migrations_match_the_models_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'rollout.db'}"
    migrate(url)
    migrate(url)  # a second upgrade is a no-op
    assert _drift(url) == []


def _two_rollouts_of_one_service(url: str, first: str = "running") -> None:
    """Two running rollouts: what the submission race of 0009 and before could leave."""
    now = datetime.now(UTC)
    with engine_for(url).begin() as db:
        for n in (1, 2):
            db.execute(
                insert(Release).values(
                    id=n, service="checkout", version=f"2.0.{n}", state="active", submitted_at=now
                )
            )
            db.execute(
                insert(Rollout).values(
                    id=n,
                    release_id=n,
                    service="checkout",
                    version=f"2.0.{n}",
                    team="payments",
                    state=first if n == 1 else "running",
                    stage_index=0,
                    plan={},
                    created_at=now,
                    updated_at=now,
                )
            )


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_the_migration_to_one_live_rollout_supersedes_all_but_the_newest(
    backend: str, tmp_path: Path
) -> None:
    with ExitStack() as stack:
        if backend == "sqlite":
            url = f"sqlite:///{tmp_path / 'rollout.db'}"
        else:
            url = stack.enter_context(fresh_database("rollout_migration_test"))
            command.downgrade(alembic_config(url), "0009")
        command.upgrade(alembic_config(url), "0009")
        _two_rollouts_of_one_service(url)
        migrate(url)
        with engine_for(url).connect() as db:
            rows = db.execute(select(Rollout.id, Rollout.state, Rollout.reason)).all()
        assert sorted(rows) == [
            (1, "superseding", "superseded by rollout 2 (one live rollout per service)"),
            (2, "running", None),
        ]
        with pytest.raises(IntegrityError), engine_for(url).begin() as db:
            db.execute(update(Rollout).where(Rollout.id == 1).values(state="paused"))
        engine_for(url).dispose()


def test_the_migration_to_structured_holds_keeps_who_waits_for_a_service(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'rollout.db'}"
    command.upgrade(alembic_config(url), "0010")
    _two_rollouts_of_one_service(url, first="superseding")
    now = datetime.now(UTC)
    waits = {
        1: "waits for billing-db >= 2.3 in prod-1 (installed 2.1)",
        2: "waiting for stage canary: 0 of 1 environments passed",
    }
    with engine_for(url).begin() as db:
        for n, reason in waits.items():
            db.execute(
                text(
                    "INSERT INTO upgrades (id, rollout_id, service, environment, stage_index,"
                    " stage, to_version, driver, state, hold_reason, claim, created_at)"
                    " VALUES (:n, 2, 'checkout', 'prod-1', 0, 'production', '2.0.2', '{}',"
                    " 'pending', :reason, 0, :now)"
                ),
                {"n": n, "reason": reason, "now": now.replace(tzinfo=None)},
            )
    migrate(url)
    with engine_for(url).connect() as db:
        rows = db.execute(select(Upgrade.id, Upgrade.hold_kind, Upgrade.hold_subject)).all()
    assert sorted(rows) == [(1, "dependency", "billing-db"), (2, None, None)]
    engine_for(url).dispose()
