"""The audit trail's words: who acted (an API token or a local user) and what they did."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


@dataclass(frozen=True)
class Actor:
    """Who asks the engine for an action: an API token (its id and note, never its secret)
    or, in local mode, the user of the operating system."""

    name: str
    token_id: int | None = None

    @classmethod
    def token(cls, token_id: int, note: str | None) -> Actor:
        return cls(f"token {token_id} ({note})" if note else f"token {token_id}", token_id)

    @classmethod
    def local(cls, user: str) -> Actor:
        return cls(f"local:{user}")


class Act(StrEnum):
    """An action the audit trail records, written in the action's own transaction."""

    PAUSE = "pause"
    RESUME = "resume"
    ABORT = "abort"
    RETRY = "retry"
    PROMOTE = "promote"
    FORCE_PROMOTE = "force-promote"
    SKIP = "skip"
    RECALL = "recall"
    FREEZE = "freeze"
    UNFREEZE = "unfreeze"
    OVERRIDE = "override"
    TOKEN_CREATE = "token-create"
    TOKEN_REVOKE = "token-revoke"
    ACKNOWLEDGE = "acknowledge"
    RESOLVE = "resolve"
    MISROUTED = "misrouted"
    NOT_ACTIONABLE = "not-actionable"
