"""The schema: migrations create exactly what the models describe, on PostgreSQL and SQLite."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from rollout.store.database import engine_for, migrate
from rollout.store.models import Base

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
