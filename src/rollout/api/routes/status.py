"""Waiting on a rollout without polling: its status now or as soon as it settles (a long
poll), and a server-sent event stream of each change until it is final."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from typing import Annotated

import anyio
from fastapi import APIRouter, HTTPException, Path, Query, Request
from fastapi.responses import StreamingResponse

from rollout.api.auth import check_rollout_reader
from rollout.api.context import ApiContext
from rollout.api.deps import Context, Id, NamePath, RolloutReader
from rollout.api.schemas.status import RolloutStatus
from rollout.api.status import release_rollout, rollout_owner, rollout_status
from rollout.config import VERSION_PATTERN
from rollout.durations import parse_duration
from rollout.quoting import cut
from rollout.store.database import reading
from rollout.store.tokens import TokenInfo

router = APIRouter(tags=["rollouts"])

# A long poll answers by then at the latest: proxies and clients keep a request this long.
MAX_WAIT = timedelta(seconds=60)
# How often the API reads the rollout again while a caller waits (the caller never polls).
POLL_SECONDS = 0.5
# A comment line this often keeps an idle event stream open through proxies.
KEEPALIVE_SECONDS = 5.0

# What parse_duration reads, bounded so no sum overflows: the schema says exactly what the
# endpoints accept (units largest first, each at most once, or a bare number of seconds).
DURATION_PATTERN = (
    r"^(\d{1,6}(\.\d{1,6})?d)?(\d{1,7}(\.\d{1,6})?h)?(\d{1,8}(\.\d{1,6})?m)?"
    r"(\d{1,9}(\.\d{1,6})?s)?(\d{1,9}ms)?$|^\d{1,9}(\.\d{1,6})?$"
)
DurationQuery = Annotated[
    str | None,
    Query(min_length=1, max_length=32, pattern=DURATION_PATTERN, description="a duration: 30s, 5m"),
]
VersionPath = Annotated[str, Path(pattern=VERSION_PATTERN, max_length=64)]
STATUS_RESPONSES: dict[int | str, dict[str, str]] = {404: {"description": "no such rollout"}}


def _duration(name: str, value: str | None, default: timedelta) -> timedelta:
    if value is None:
        return default
    try:
        return parse_duration(value)
    except ValueError as error:
        raise HTTPException(422, f"{name}: {error}") from None


def _reader(
    ctx: ApiContext, token: TokenInfo, rollout_id: int, deadline: datetime
) -> Callable[[], RolloutStatus]:
    """Check the caller may read the rollout (404 or 403 now, before any waiting), and
    answer a function that reads its status again."""
    with reading(ctx.database_url) as session:
        owner = rollout_owner(session, rollout_id)
    if owner is None:
        raise HTTPException(404, f"no rollout {rollout_id}")
    check_rollout_reader(token, owner.team, owner.service, f"rollout {rollout_id}")

    def read() -> RolloutStatus:
        with reading(ctx.database_url) as session:
            found = rollout_status(session, rollout_id, ctx.now(), deadline)
        assert found is not None, "rollouts are never deleted"
        return found

    return read


async def _long_poll(read: Callable[[], RolloutStatus], wait: timedelta) -> RolloutStatus:
    until = time.monotonic() + min(wait, MAX_WAIT).total_seconds()
    status = await anyio.to_thread.run_sync(read)
    while not status.verdict.settled and time.monotonic() < until:
        await anyio.sleep(min(POLL_SECONDS, max(until - time.monotonic(), 0)))
        status = await anyio.to_thread.run_sync(read)
    return status


@router.get("/v1/rollouts/{rollout_id}/status", responses=STATUS_RESPONSES)
async def status_of_rollout(
    rollout_id: Id,
    token: RolloutReader,
    ctx: Context,
    wait: DurationQuery = None,
    within: DurationQuery = None,
) -> RolloutStatus:
    """Where the rollout is and why, with the verdict for a caller prepared to wait
    `within` (default 0s: now). With `wait` (at most 60s), answer as soon as the verdict
    is settled (final, or held past the deadline), or when the wait ends."""
    deadline = ctx.now() + _duration("within", within, timedelta(0))
    waiting = _duration("wait", wait, timedelta(0))
    read = await anyio.to_thread.run_sync(lambda: _reader(ctx, token, rollout_id, deadline))
    return await _long_poll(read, waiting)


@router.get("/v1/releases/{service}/{version}/status", responses=STATUS_RESPONSES)
async def status_of_release(
    service: NamePath,
    version: VersionPath,
    token: RolloutReader,
    ctx: Context,
    wait: DurationQuery = None,
    within: DurationQuery = None,
) -> RolloutStatus:
    """The status of the release's newest rollout, as `/v1/rollouts/{id}/status`."""
    deadline = ctx.now() + _duration("within", within, timedelta(0))
    waiting = _duration("wait", wait, timedelta(0))

    def find() -> Callable[[], RolloutStatus]:
        with reading(ctx.database_url) as session:
            rollout_id = release_rollout(session, service, version)
        if rollout_id is None:
            raise HTTPException(404, f"no rollout of {cut(service)} {cut(version)}")
        return _reader(ctx, token, rollout_id, deadline)

    read = await anyio.to_thread.run_sync(find)
    return await _long_poll(read, waiting)


@router.get(
    "/v1/rollouts/{rollout_id}/events",
    responses={
        **STATUS_RESPONSES,
        200: {
            "description": "one `data:` line (a RolloutStatus) per change, until it is final",
            "content": {"text/event-stream": {}},
        },
    },
    response_class=StreamingResponse,
)
async def rollout_events(
    rollout_id: Id,
    token: RolloutReader,
    ctx: Context,
    request: Request,
    within: DurationQuery = None,
    wait: DurationQuery = None,
) -> StreamingResponse:
    """A server-sent event stream: the rollout's status at once, then each time it changes
    (state, progress, holds); the stream ends after the final state (or once `wait` has
    passed, if given). A comment line every few seconds of quiet keeps it open."""
    deadline = ctx.now() + _duration("within", within, timedelta(0))
    end = (
        None
        if wait is None
        else time.monotonic() + _duration("wait", wait, MAX_WAIT).total_seconds()
    )
    read = await anyio.to_thread.run_sync(lambda: _reader(ctx, token, rollout_id, deadline))
    first = await anyio.to_thread.run_sync(read)

    async def stream() -> AsyncIterator[str]:
        status, sent, quiet_since = first, "", time.monotonic()
        while True:
            body = status.model_dump_json()
            if body != sent:
                yield f"event: status\ndata: {body}\n\n"
                sent, quiet_since = body, time.monotonic()
            elif time.monotonic() - quiet_since > KEEPALIVE_SECONDS:
                yield ": keep-alive\n\n"
                quiet_since = time.monotonic()
            if status.final or (end is not None and time.monotonic() >= end):
                return
            if await request.is_disconnected():
                return
            await anyio.sleep(POLL_SECONDS)
            status = await anyio.to_thread.run_sync(read)

    return StreamingResponse(
        stream(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
    )
