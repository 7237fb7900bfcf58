"""Process settings read from ROLLOUT_* environment variables (the 12-factor way)."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


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

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{(self.data_dir / 'rollout.db').resolve()}"

    def resolved_simulator_url(self) -> str:
        if self.simulator_url:
            return self.simulator_url
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{(self.data_dir / 'simulator.db').resolve()}"


@cache
def get_settings() -> Settings:
    return Settings()
