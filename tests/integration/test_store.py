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
from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from rollout.store.database import alembic_config, engine_for, migrate
from rollout.store.models import Base, Release, Rollout
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


def _two_live_rollouts_of_one_service(url: str) -> None:
    """What the submission race of 0009 and before could leave behind."""
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
                    state="running",
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
        _two_live_rollouts_of_one_service(url)
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
