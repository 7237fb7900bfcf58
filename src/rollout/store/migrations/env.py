"""Alembic's entry point: runs migrations against the URL the caller configured."""

from alembic import context

from rollout.store.database import engine_for
from rollout.store.models import Base

url: str = context.config.attributes["url"]
with engine_for(url).connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        # SQLite alters tables by copying them; batch mode does that for us.
        render_as_batch=url.startswith("sqlite"),
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
