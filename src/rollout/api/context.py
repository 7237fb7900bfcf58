"""What every route works with (database, fleet config, runtime, clock), held by the app."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from fastapi import Request

from rollout.config import Fleet
from rollout.engine.runtime import Runtime


@dataclass(frozen=True)
class ApiContext:
    """One per application, on `app.state.context`: two apps in one process (the tests
    build many) never see each other's database or fleet."""

    database_url: str
    fleet: Fleet
    runtime: Runtime
    now: Callable[[], datetime]
    # What /readyz checks besides the database; None: not checked.
    broker_url: str | None = None


def context(request: Request) -> ApiContext:
    """A dependency: the context of the application serving the request."""
    found: ApiContext = request.app.state.context
    return found
