"""Secret references: a routing key or webhook URL named by config, read only at delivery."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from rollout.observability import redaction


class SecretError(Exception):
    """A secret could not be read: the message names where it was looked for, never a value."""


@dataclass(frozen=True)
class SecretRef:
    """Where a secret lives: an environment variable or a file, exactly one of them.

    The repr shows the variable's name or the file's path, which are config, not secrets.
    """

    env: str | None = None
    file: str | None = None

    def __post_init__(self) -> None:
        if (self.env is None) == (self.file is None):
            raise ValueError("a secret reference names exactly one of `env` or `file`")
        if self.env is not None and not self.env:
            raise ValueError("a secret reference's `env` is an empty variable name")
        if self.file is not None and not self.file:
            raise ValueError("a secret reference's `file` is an empty path")

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
