"""Connections: one SQLAlchemy engine per URL, SQLite tuned for concurrent writers, and
Alembic migrations."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from functools import cache
from pathlib import Path
from typing import Any

import sqlalchemy
from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, event
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).parent / "migrations"


def _tune_sqlite(engine: Engine, writer: bool) -> None:
    # pysqlite's own transaction handling defers BEGIN and so turns every writer into a
    # reader that upgrades its lock later, which deadlocks under concurrency: take the write
    # lock up front (BEGIN IMMEDIATE) and wait for it (busy_timeout); WAL lets readers in.
    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        # Readers take no lock at all: WAL gives them a snapshot.
        connection.exec_driver_sql("BEGIN IMMEDIATE" if writer else "BEGIN")


@cache
def engine_for(url: str, writer: bool = True) -> Engine:
    """The engine for a URL; on SQLite, readers get an engine of their own that never
    takes the write lock (elsewhere both are the same engine)."""
    if url.startswith("sqlite"):
        # Looked up at the call: tracing (rollout.observability) wraps sqlalchemy's own.
        engine = sqlalchemy.create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, pool_size=8
        )
        _tune_sqlite(engine, writer)
        return engine
    if not writer:
        return engine_for(url)
    # No pre-ping: it costs a round trip per checkout. A connection lost to a database restart
    # fails its step, SQLAlchemy drops the pool, and the row's lease re-drives the step.
    return sqlalchemy.create_engine(url, pool_size=5, max_overflow=10)


@cache
def session_factory(url: str, writer: bool = True) -> sessionmaker[Session]:
    return sessionmaker(engine_for(url, writer), expire_on_commit=False)


@cache
def _writer_lock(url: str) -> threading.Lock | nullcontext[None]:
    # SQLite admits one writer at a time; threads of one process queue on a lock here instead
    # of polling the database file's lock in SQLite's busy handler, which sleeps in steps.
    return threading.Lock() if url.startswith("sqlite") else nullcontext()


@contextmanager
def transaction(url: str) -> Iterator[Session]:
    """A session whose transaction commits on leaving the block and rolls back on error."""
    with _writer_lock(url), session_factory(url).begin() as session:
        yield session


@contextmanager
def reading(url: str) -> Iterator[Session]:
    """A session for reads only: on SQLite it waits for no writer."""
    with session_factory(url, writer=False).begin() as session:
        yield session


@contextmanager
def connection(url: str) -> Iterator[Connection]:
    """A Core connection in a transaction, committed on leaving the block."""
    with _writer_lock(url), engine_for(url).begin() as db:
        yield db


def is_postgresql(url: str) -> bool:
    return url.startswith("postgresql")


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["url"] = url
    return config


def migrate(url: str) -> None:
    """Bring the schema to the newest migration (what `rollout db upgrade` runs)."""
    command.upgrade(alembic_config(url), "head")
