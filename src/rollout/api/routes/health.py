"""Liveness, readiness and Prometheus metrics: what a load balancer and a scraper ask."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, Response
from sqlalchemy import text

from rollout.api.deps import Context
from rollout.api.errors import RETRY_AFTER
from rollout.api.schemas import Health, Readiness
from rollout.observability import metrics
from rollout.store.database import engine_for

router = APIRouter()


@router.get("/metrics", include_in_schema=False)
def prometheus_metrics() -> Response:
    """Prometheus' text format; unauthenticated as scrapers are, and no label holds a
    secret or a payload."""
    body, content_type = metrics.exposition()
    return Response(body, media_type=content_type)


@router.get("/healthz", tags=["health"])
def healthz() -> Health:
    """The process answers."""
    return Health(status="ok")


@router.get("/readyz", tags=["health"], responses={503: {"model": Readiness}})
def readyz(response: Response, ctx: Context) -> Readiness:
    """The database and the broker are reachable."""
    database_url, broker_url = ctx.database_url, ctx.broker_url
    database = _check(lambda: _ping_database(database_url))
    broker = "not checked" if broker_url is None else _check(lambda: _ping_broker(broker_url))
    ready = database == "ok" and broker in ("ok", "not checked")
    if not ready:
        response.status_code = 503
        response.headers["Retry-After"] = RETRY_AFTER
    return Readiness(status="ready" if ready else "not ready", database=database, broker=broker)


def _check(probe: Callable[[], None]) -> str:
    try:
        probe()
    except Exception as error:
        # The class name only: a driver's message may carry a host or a user name.
        return f"unreachable ({type(error).__name__})"
    return "ok"


def _ping_database(url: str) -> None:
    with engine_for(url).connect() as connection:
        connection.execute(text("SELECT 1"))


def _ping_broker(url: str) -> None:
    from kombu.connection import Connection

    # kombu is untyped here; the call is a plain connect-and-close.
    with Connection(url, connect_timeout=2) as connection:  # type: ignore[no-untyped-call]
        connection.ensure_connection(max_retries=1, timeout=2)
