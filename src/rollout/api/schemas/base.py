"""What every wire model shares: refusing unknown fields and NUL characters, and the
constrained strings of names, versions, digests and notes."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints, field_validator

from rollout.config import NAME_PATTERN, VERSION_PATTERN
from rollout.store.tokens import NOTE_MAX

DIGEST_PATTERN = r"^sha256:[0-9a-f]{64}$"

Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN, max_length=63)]
Version = Annotated[str, StringConstraints(pattern=VERSION_PATTERN, max_length=64)]
Digest = Annotated[str, StringConstraints(pattern=DIGEST_PATTERN, max_length=71)]
Note = Annotated[str, StringConstraints(max_length=NOTE_MAX)]


class Strict(BaseModel):
    """Unknown fields are refused, in requests and in what a client reads back."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: object) -> object:
        # PostgreSQL refuses a NUL in text: the caller gets a 422 saying so, not a 500.
        texts = value if isinstance(value, list) else [value]
        if any(isinstance(text, str) and "\x00" in text for text in texts):
            raise ValueError("must not contain a NUL character")
        return value
