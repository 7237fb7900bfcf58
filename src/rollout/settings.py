"""Process settings read from ROLLOUT_* environment variables (the 12-factor way)."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from rollout.quoting import cut, masked_url, quoted


class SettingsError(ValueError):
    """A ROLLOUT_* value this process cannot use; the message names it, in one line."""


class Settings(BaseSettings):
    """Where the database, broker, fleet config and simulated fleet live."""

    model_config = SettingsConfigDict(env_prefix="ROLLOUT_", extra="ignore")

    data_dir: Path = Path(".rollout")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default: SQLite in the data directory"
    )
    broker_url: str = "redis://127.0.0.1:6379/0"
    config: Path = Path("config/fleet.yaml")
    simulator_url: str | None = Field(
        default=None,
        description="where the simulated fleet keeps its state; default: SQLite beside the data",
    )
    # How long a claimed step may run before the ticker re-drives it: the reconciler's clock.
    lease_seconds: float = 30.0
    tick_seconds: float = 0.2
    claim_batch: int = 500
    # Logs: text for people, json (one object a line, with rollout, upgrade and trace ids)
    # for a log pipeline.
    log_format: Literal["text", "json"] = "text"
    # Where a worker or the ticker serves /metrics; None: not at all (the API serves its own
    # on its HTTP port).
    metrics_port: int | None = Field(default=None, ge=0, le=65535)
    # The address it listens on. /metrics has no authentication, so only this host by
    # default; a container widens it (0.0.0.0) for Prometheus to scrape.
    metrics_host: str = "127.0.0.1"

    @field_validator("broker_url")
    @classmethod
    def _a_url(cls, value: str) -> str:
        # kombu reads a bare word as the name of an AMQP host, and retries it for ever.
        if "://" not in value:
            raise ValueError("not a URL (such as redis://127.0.0.1:6379/0)")
        return value

    def resolved_database_url(self) -> str:
        if self.database_url:
            return usable_database_url(self.database_url, "ROLLOUT_DATABASE_URL")
        self._make_data_dir()
        return f"sqlite:///{(self.data_dir / 'rollout.db').resolve()}"

    def resolved_simulator_url(self) -> str:
        if self.simulator_url:
            return usable_database_url(self.simulator_url, "ROLLOUT_SIMULATOR_URL")
        self._make_data_dir()
        return f"sqlite:///{(self.data_dir / 'simulator.db').resolve()}"

    def _make_data_dir(self) -> None:
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise SettingsError(
                f"ROLLOUT_DATA_DIR {self.data_dir}: cannot create it ({error.strerror or error}); "
                "set ROLLOUT_DATA_DIR to a directory this process may write, or "
                "ROLLOUT_DATABASE_URL"
            ) from None


@cache  # every Runtime resolves the URL; it is checked once a process
def usable_database_url(url: str, variable: str) -> str:
    """`url` if SQLAlchemy can parse it and this process has its dialect and driver; else
    SettingsError naming the variable and the URL (its password masked)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    shown = masked_url(url)
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise SettingsError(
            f"{variable} {shown!r} is not a database URL (such as "
            "postgresql+psycopg://user@host/db or sqlite:////path/rollout.db)"
        ) from None
    try:
        parsed.get_dialect().import_dbapi()
    except NoSuchModuleError:
        dialect = quoted(parsed.drivername)
        raise SettingsError(f"{variable} {shown!r}: no database dialect {dialect}") from None
    except ImportError as error:
        raise SettingsError(
            f"{variable} {shown!r}: its driver is not installed ({cut(str(error))}); "
            "for PostgreSQL name psycopg: postgresql+psycopg://…"
        ) from None
    return url


@cache
def get_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as error:
        raise SettingsError(_first_problem(error)) from None


def _first_problem(error: ValidationError) -> str:
    problem = error.errors()[0]
    field = ".".join(str(part) for part in problem["loc"])
    message = problem["msg"].removeprefix("Value error, ")
    return (
        # Masked: the value may be a URL with a password in it.
        f"ROLLOUT_{field.upper()} {quoted(masked_url(str(problem.get('input'))))}: "
        f"{message[0].lower()}{message[1:]}"
    )
