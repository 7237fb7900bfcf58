"""The parameters and dependencies routes share: the context, the caller, ids and names."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Query

from rollout.api.auth import READERS, STEERERS, allow
from rollout.api.context import ApiContext, context
from rollout.config import NAME_PATTERN
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
