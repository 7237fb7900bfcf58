"""The API's routers, one per resource, in the order the OpenAPI document lists them."""

from __future__ import annotations

from fastapi import APIRouter

from rollout.api.routes import (
    agents,
    config,
    events,
    fleet,
    freezes,
    health,
    hygiene,
    oncall,
    pages,
    releases,
    rollouts,
    status,
    tokens,
)

# The order routes are included is the order of the document's paths (and of /docs).
ROUTERS: tuple[APIRouter, ...] = (
    health.router,
    releases.router,
    freezes.router,
    rollouts.router,
    status.router,
    fleet.router,
    oncall.router,
    pages.router,
    hygiene.router,
    config.router,
    tokens.router,
    agents.router,
    events.router,
)
