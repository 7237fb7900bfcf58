"""The parameters and dependencies routes share: the context, the caller, ids and names."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import Depends, HTTPException, Path, Query

from rollout.api.auth import READERS, STEERERS, allow
from rollout.api.context import ApiContext, context
from rollout.config import NAME_PATTERN
from rollout.durations import parse_window
from rollout.store import MAX_ID as MAX_ID  # the routes take it from here
from rollout.store.tokens import Scope, TokenInfo

# Module-level: FastAPI resolves a route's (string) annotations in its module's namespace,
# so the route modules import these names rather than build them in a function.
Context = Annotated[ApiContext, Depends(context)]
Reader = Annotated[TokenInfo, Depends(allow(*READERS))]
Steerer = Annotated[TokenInfo, Depends(allow(*STEERERS))]
Admin = Annotated[TokenInfo, Depends(allow(Scope.ADMIN))]
Pipeline = Annotated[TokenInfo, Depends(allow(Scope.PIPELINE))]
Agent = Annotated[TokenInfo, Depends(allow(Scope.AGENT))]

Id = Annotated[int, Path(ge=1, le=MAX_ID)]
NamePath = Annotated[str, Path(pattern=NAME_PATTERN, max_length=63)]
NameQuery = Annotated[str | None, Query(pattern=NAME_PATTERN, max_length=63)]
Limit = Annotated[int, Query(ge=1, le=1000)]
# A rollout's own reads: a pipeline token too, for its own services' rollouts.
RolloutReader = Annotated[TokenInfo, Depends(allow(*READERS, Scope.PIPELINE))]

# What parse_window takes, every part above zero and bounded: the schema says exactly what
# an endpoint's `since` accepts (a window of 600 years still ends after year 1).
WINDOW_PATTERN = (
    r"^([1-9]\d{0,3}w)?([1-9]\d{0,4}d)?([1-9]\d{0,5}h)?([1-9]\d{0,6}m)?([1-9]\d{0,7}s)?$"
)
Window = Annotated[
    str,
    Query(
        min_length=2,
        max_length=32,
        pattern=WINDOW_PATTERN,
        description="how far back to look: 7d, 12h, 2w, 2w3d",
    ),
]


def window_of(since: str) -> timedelta:
    """A `since` as a length of time, or the request's 422 saying why not."""
    try:
        return parse_window(since)
    except ValueError as error:
        raise HTTPException(422, f"since: {error}") from None
