"""The escape hatches' request bodies: a forced promotion, an environment skipped."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints, model_validator

from rollout.api.schemas.base import Name, Strict
from rollout.store.tokens import NOTE_MAX

Reason = Annotated[str, StringConstraints(min_length=1, max_length=NOTE_MAX, pattern=r"\S")]


class PromoteIn(Strict):
    force: bool = Field(
        default=False,
        description="move on even if the stage has not passed: skip the rest of its gates "
        "and soak (needs a reason)",
    )
    reason: Reason | None = Field(default=None, description="why: recorded in the audit trail")

    @model_validator(mode="after")
    def _forced_with_a_reason(self) -> PromoteIn:
        if self.force and self.reason is None:
            raise ValueError("a forced promotion needs a reason")
        return self


class SkipIn(Strict):
    environment: Name = Field(description="the environment whose upgrade is left out")
    reason: Reason = Field(description="why: recorded on the upgrade and in the audit trail")
