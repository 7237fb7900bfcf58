"""The HTTP API: pipelines submit, teams read their rollouts and act on their pages,
operators read everything; every refusal is a 4xx with a one-line message."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from fastapi import Depends, FastAPI

from rollout.api.context import ApiContext
from rollout.api.errors import ERRORS, install_error_handlers
from rollout.api.limits import MAX_BODY, BodyLimit, known_query_parameters, query_check
from rollout.api.routes import ROUTERS
from rollout.config import Fleet
from rollout.engine.runtime import Runtime, utcnow
from rollout.observability import tracing


def create_app(
    database_url: str,
    fleet: Fleet,
    *,
    broker_url: str | None = None,
    max_body: int = MAX_BODY,
    runtime: Runtime | None = None,
    now: Callable[[], datetime] = utcnow,
) -> FastAPI:
    """The application. `fleet` is the config submissions are planned with; `broker_url`
    is what /readyz checks besides the database (unchecked when None)."""
    known: dict[int, frozenset[str]] = {}  # filled in once every router is included
    app = FastAPI(
        title="rollout",
        version="1",
        description="Submit releases, read rollouts, environments and pages, act on pages.",
        responses=ERRORS,
        dependencies=[Depends(query_check(known))],
    )
    app.state.context = ApiContext(
        database_url=database_url,
        fleet=fleet,
        # Submission only writes rows; the ticker nudges workers, as for the CLI.
        runtime=runtime or Runtime(database_url, now=now),
        now=now,
        broker_url=broker_url,
    )
    install_error_handlers(app)
    app.add_middleware(BodyLimit, limit=max_body)
    tracing.instrument_app(app)
    for router in ROUTERS:
        app.include_router(router)
    known.update(known_query_parameters(app))
    return app
