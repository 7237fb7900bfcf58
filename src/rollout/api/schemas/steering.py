"""The escape hatches' request bodies: a forced promotion, an environment skipped."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Discriminator, Field, StringConstraints, Tag

from rollout.api.schemas.base import Name, Strict
from rollout.store.tokens import NOTE_MAX

Reason = Annotated[str, StringConstraints(min_length=1, max_length=NOTE_MAX, pattern=r"\S")]


class PromoteIn(Strict):
    force: Literal[False] = Field(default=False, description="false: only once the stage passed")
    reason: Reason | None = Field(default=None, description="why: recorded in the audit trail")


class ForcedPromoteIn(Strict):
    """Two bodies, not one with a rule beside it: the schema itself says a forced promotion
    needs a reason, so a client (or a fuzzer) reading it knows."""

    force: Literal[True] = Field(
        description="move on even if the stage has not passed: skip the rest of its gates and soak"
    )
    reason: Reason = Field(description="why: recorded in the audit trail")


def _promotion(body: object) -> str:
    forced = isinstance(body, dict) and body.get("force") is True
    return "forced" if forced or isinstance(body, ForcedPromoteIn) else "plain"


# Told apart by `force`, so a forced body without a reason is refused as such
# ("body.forced.reason: Field required"), not as a mismatch of both shapes.
PromoteBody = Annotated[
    Annotated[ForcedPromoteIn, Tag("forced")] | Annotated[PromoteIn, Tag("plain")],
    Discriminator(_promotion),
]


class SkipIn(Strict):
    environment: Name = Field(description="the environment whose upgrade is left out")
    reason: Reason = Field(description="why: recorded on the upgrade and in the audit trail")
