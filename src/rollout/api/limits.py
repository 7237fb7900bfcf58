"""What a request may carry: a bounded body, and only the query parameters its route knows."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute, iter_route_contexts

from rollout.quoting import cut

MAX_BODY = 64 * 1024

Scope_ = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


def query_check(known: dict[int, frozenset[str]]) -> Callable[[Request], None]:
    """A query parameter the endpoint does not know is a mistake: refuse it, as an unknown
    field of a body is refused, rather than answer as if it had not been asked. `known`
    is filled by `known_query_parameters` once every router is included."""

    def check(request: Request) -> None:
        allowed = known.get(id(request.scope.get("route")), frozenset())
        unknown = sorted(set(request.query_params) - allowed)
        if unknown:
            raise HTTPException(422, f"unknown query parameter(s): {cut(', '.join(unknown))}")

    return check


def known_query_parameters(app: FastAPI) -> dict[int, frozenset[str]]:
    """Each route's query parameters, its dependencies' included, by the route's id."""
    known = {}
    # An included router's routes sit under one node of app.routes; FastAPI puts the
    # router's own route object in the request's scope, so that is the one to key on.
    for found in iter_route_contexts(app.routes):
        route = found.original_route
        if isinstance(route, APIRoute):
            names: set[str] = set()
            stack = [route.dependant]
            while stack:
                dependant = stack.pop()
                names |= {p.alias for p in dependant.query_params}
                stack += dependant.dependencies
            known[id(route)] = frozenset(names)
    return known


class BodyLimit:
    """Refuse a request body over `limit` bytes with 413 before the application reads it,
    whether the client announced its length or streams it in chunks."""

    def __init__(self, app: Callable[[Scope_, Receive, Send], Awaitable[None]], limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope_, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None:
            if not length.isdigit():
                await _refuse(send, 400, "malformed Content-Length")
                return
            if int(length) > self.limit:
                await _refuse(send, 413, f"the request body is over {self.limit} bytes")
                return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break  # the client went away; let the application see it
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await _refuse(send, 413, f"the request body is over {self.limit} bytes")
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> MutableMapping[str, Any]:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


async def _refuse(send: Send, status: int, detail: str) -> None:
    response = JSONResponse({"detail": detail}, status)
    await response({"type": "http"}, _no_receive, send)


async def _no_receive() -> MutableMapping[str, Any]:
    return {"type": "http.disconnect"}
