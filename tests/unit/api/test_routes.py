"""How the API is put together: each resource's router holds its own routes and tags,
create_app wires every router once and in order, and every app has its own context."""

from __future__ import annotations

import ast
import dataclasses
import importlib
import pkgutil
import re
from datetime import datetime
from pathlib import Path

import pytest
from fastapi import FastAPI, Request
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient

import rollout
from rollout.api import create_app, routes
from rollout.api.context import ApiContext, context
from rollout.api.routes import ROUTERS
from rollout.config import Fleet, load_fleet
from tests.conftest import FIXTURES

# Which module serves each route, under which tags: moving a route to another router or
# retagging it regroups /docs and the clients generated from the document.
EXPECTED = [
    ("health", "GET", "/metrics", ()),
    ("health", "GET", "/healthz", ("health",)),
    ("health", "GET", "/readyz", ("health",)),
    ("releases", "POST", "/v1/releases", ("releases",)),
    ("releases", "POST", "/v1/releases/recall", ("releases",)),
    ("freezes", "POST", "/v1/freezes", ("freezes",)),
    ("freezes", "GET", "/v1/freezes", ("freezes",)),
    ("freezes", "DELETE", "/v1/freezes/{target}", ("freezes",)),
    ("rollouts", "GET", "/v1/rollouts", ("rollouts",)),
    ("rollouts", "GET", "/v1/rollouts/{rollout_id}", ("rollouts",)),
    ("rollouts", "POST", "/v1/rollouts/{rollout_id}/pause", ("steering",)),
    ("rollouts", "POST", "/v1/rollouts/{rollout_id}/resume", ("steering",)),
    ("rollouts", "POST", "/v1/rollouts/{rollout_id}/abort", ("steering",)),
    ("rollouts", "POST", "/v1/rollouts/{rollout_id}/retry", ("steering",)),
    ("rollouts", "POST", "/v1/rollouts/{rollout_id}/promote", ("steering",)),
    ("rollouts", "POST", "/v1/rollouts/{rollout_id}/skip", ("steering",)),
    ("status", "GET", "/v1/rollouts/{rollout_id}/status", ("rollouts",)),
    ("status", "GET", "/v1/releases/{service}/{version}/status", ("rollouts",)),
    ("status", "GET", "/v1/rollouts/{rollout_id}/events", ("rollouts",)),
    ("fleet", "GET", "/v1/environments", ("environments",)),
    ("fleet", "GET", "/v1/services", ("services",)),
    ("fleet", "GET", "/v1/services/{name}", ("services",)),
    ("fleet", "GET", "/v1/fleet", ("environments",)),
    ("oncall", "GET", "/v1/teams/{team}/oncall", ("on-call",)),
    ("oncall", "POST", "/v1/teams/{team}/overrides", ("on-call",)),
    ("pages", "GET", "/v1/pages", ("pages",)),
    ("pages", "POST", "/v1/pages/{page_id}/acknowledge", ("pages",)),
    ("pages", "POST", "/v1/pages/{page_id}/resolve", ("pages",)),
    ("pages", "POST", "/v1/pages/{page_id}/feedback", ("pages",)),
    ("hygiene", "GET", "/v1/hygiene", ("pages",)),
    ("config", "GET", "/v1/config", ("config",)),
    ("tokens", "GET", "/v1/tokens", ("tokens",)),
    ("tokens", "POST", "/v1/tokens", ("tokens",)),
    ("tokens", "POST", "/v1/tokens/{token_id}/revoke", ("tokens",)),
    ("agents", "GET", "/v1/agents/{environment}/desired", ("agents",)),
    ("agents", "POST", "/v1/agents/{environment}/reports", ("agents",)),
    ("agents", "POST", "/v1/agents/{environment}/health", ("agents",)),
    ("events", "GET", "/v1/events", ("history",)),
]


@pytest.fixture(scope="module")
def fleet() -> Fleet:
    return load_fleet(FIXTURES / "fleet.yaml")


@pytest.fixture(scope="module")
def app(fleet: Fleet, tmp_path_factory: pytest.TempPathFactory) -> FastAPI:
    # Building the app touches no database; the URL only has to be one.
    return create_app(f"sqlite:///{tmp_path_factory.mktemp('api')}/api.db", fleet)


def _api_routes(app: FastAPI) -> list[tuple[APIRoute, str, str, tuple[str, ...]]]:
    found = []
    for route in iter_route_contexts(app.routes):
        if isinstance(route.original_route, APIRoute):
            (method,) = route.methods or {""}
            found.append((route.original_route, method, route.path or "", tuple(route.tags)))
    return found


def test_each_route_is_served_by_its_resources_module_with_its_tags(app: FastAPI) -> None:
    served = [
        (r.endpoint.__module__.removeprefix("rollout.api.routes."), method, path, tags)
        for r, method, path, tags in _api_routes(app)
    ]
    assert served == EXPECTED


def test_create_app_includes_every_router_of_the_package_once(app: FastAPI) -> None:
    modules = [
        importlib.import_module(f"rollout.api.routes.{m.name}")
        for m in pkgutil.iter_modules(routes.__path__)
    ]
    assert {id(m.router) for m in modules} == {id(r) for r in ROUTERS}
    assert len(ROUTERS) == len(modules)
    in_app = [id(r) for r, *_ in _api_routes(app)]
    in_routers = [id(r) for router in ROUTERS for r in router.routes]
    assert in_app == in_routers


def test_the_document_lists_the_routes_in_order_with_their_function_names(app: FastAPI) -> None:
    document = app.openapi()
    schema_routes = [(r, m, p) for r, m, p, _ in _api_routes(app) if r.include_in_schema]
    assert list(document["paths"]) == list(dict.fromkeys(p for _, _, p in schema_routes))
    listed = {
        (method.upper(), path): operation["operationId"]
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
    }
    # FastAPI's default operation id (function name, path, method) is what generated
    # clients name their methods after: a renamed function would rename them.
    assert listed == {
        (method, path): re.sub(r"\W", "_", f"{r.name}{path}") + f"_{method.lower()}"
        for r, method, path in schema_routes
    }


def test_every_app_has_its_own_frozen_context(fleet: Fleet, tmp_path: Path) -> None:
    def clock() -> datetime:
        raise AssertionError("not called")

    first = create_app(f"sqlite:///{tmp_path}/a.db", fleet, broker_url="memory://")
    second = create_app(f"sqlite:///{tmp_path}/b.db", fleet, now=clock)
    one, other = first.state.context, second.state.context
    assert isinstance(one, ApiContext) and isinstance(other, ApiContext)
    assert (one.database_url, one.broker_url) == (f"sqlite:///{tmp_path}/a.db", "memory://")
    assert (other.database_url, other.broker_url, other.now) == (
        f"sqlite:///{tmp_path}/b.db",
        None,
        clock,
    )
    assert one.fleet is fleet and one.runtime is not other.runtime
    with pytest.raises(dataclasses.FrozenInstanceError):
        one.database_url = "sqlite://"  # type: ignore[misc]
    assert context(Request({"type": "http", "app": second})) is other


@pytest.mark.parametrize(
    ("path", "known"),
    [
        ("/v1/rollouts", "service=a&state=running&stage=a&team=a&limit=5"),
        ("/v1/pages", "team=a&state=open&service=a&rollout_id=1&limit=5"),
        ("/v1/services", "team=a"),
        ("/v1/teams/a/oncall", "at=2026-01-01T00:00:00Z"),
        ("/v1/tokens", ""),
        ("/v1/rollouts/1/status", "within=30m&wait=1s"),
        ("/v1/rollouts/1/events", "within=30m&wait=1s"),
    ],
)
def test_each_route_knows_its_query_parameters_and_refuses_others(
    app: FastAPI, path: str, known: str
) -> None:
    client = TestClient(app)
    # No token: a query the route knows gets as far as authentication.
    assert client.get(f"{path}?{known}").status_code == 401
    refused = client.get(f"{path}?{known}&bogus=1" if known else f"{path}?bogus=1")
    assert refused.status_code == 422
    assert refused.json() == {"detail": "unknown query parameter(s): bogus"}


def test_the_engine_and_the_domain_never_import_the_api_or_the_cli() -> None:
    package = Path(rollout.__file__).parent
    offenders = []
    for layer in ("engine", "domain"):
        for source in sorted((package / layer).rglob("*.py")):
            for node in ast.walk(ast.parse(source.read_text(), str(source))):
                names = []
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module is not None:
                    names = [node.module]
                for name in names:
                    if name.split(".")[:2] in (["rollout", "api"], ["rollout", "cli"]):
                        offenders.append(f"{source.relative_to(package)}: {name}")
    assert offenders == []
