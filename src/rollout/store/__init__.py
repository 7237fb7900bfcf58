"""Persistence: SQLAlchemy models, named queries and Alembic migrations."""

# Ids are PostgreSQL integers: a larger one names no row, and must not reach the driver
# (PostgreSQL refuses it; SQLite's driver cannot even bind one past 64 bits).
MAX_ID = 2**31 - 1
