"""Secrets by reference: where a routing key, webhook URL, token or password lives (an
environment variable or a file), read only when it is used. The one secret type of config,
plan, channels, drivers and agents."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from rollout.observability import redaction


class SecretError(Exception):
    """A secret could not be read: the message names where it was looked for, never a value."""


class SecretRef(BaseModel):
    """Where a secret lives, never the secret: `{env: NAME}` or `{file: PATH}`, exactly one.

    The repr shows the variable's name or the file's path, which are config, not secrets.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    env: Annotated[str, Field(min_length=1)] | None = None
    file: Annotated[str, Field(min_length=1)] | None = None

    @model_validator(mode="before")
    @classmethod
    def _a_reference(cls, data: Any) -> Any:
        # Never echo an inline value: it may be the very secret that should not be there.
        if not isinstance(data, Mapping):
            raise ValueError("a secret is given by reference: {env: NAME} or {file: PATH}")
        return data

    @model_validator(mode="after")
    def _exactly_one(self) -> SecretRef:
        if (self.env is None) == (self.file is None):
            raise ValueError("a secret reference names exactly one of `env` or `file`")
        return self

    @property
    def where(self) -> str:
        return f"environment variable {self.env}" if self.env is not None else f"file {self.file}"

    def resolve(self) -> str:
        """Read the secret now: a rotated key or remounted file is picked up on the next page."""
        if self.env is not None:
            value = os.environ.get(self.env)
            if value is None:
                raise SecretError(f"secret not set: {self.where}")
        else:
            assert self.file is not None
            try:
                value = Path(self.file).read_text(encoding="utf-8")
            except OSError as error:
                # The OS error says only why (not found, permission), never the content.
                raise SecretError(
                    f"secret not readable: {self.where}: {error.strerror or type(error).__name__}"
                ) from None
        # Files written by `echo` or by Kubernetes end with a newline that is not the secret.
        value = value.strip()
        if not value:
            raise SecretError(f"secret is empty: {self.where}")
        # Whatever library writes down the URL or header this goes into (an httpx span, an
        # error's message) is scrubbed of it from now on.
        redaction.remember(value)
        return value


def scrub(text: str, secrets: Iterable[str]) -> str:
    """The text with every secret value in it replaced by `***`."""
    # Longest first, so a secret that contains another is hidden whole.
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text
