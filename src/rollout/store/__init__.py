"""Persistence: SQLAlchemy models, named queries and Alembic migrations."""
