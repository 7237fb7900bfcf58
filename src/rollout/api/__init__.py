"""The HTTP API for pipelines, teams and operators (FastAPI, served by uvicorn)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastapi import FastAPI

    from rollout.config import Fleet


def create_app(database_url: str, fleet: Fleet, **options: Any) -> FastAPI:
    """The application (see rollout.api.app.create_app for the options)."""
    # Imported here: the CLI reads the views of this package without loading FastAPI.
    from rollout.api.app import create_app as create

    return create(database_url, fleet, **options)
