"""What a person may do with a page in each state (pure: no I/O)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

ACKNOWLEDGED = "acknowledged"
RESOLVED = "resolved"


class PageAction(StrEnum):
    ACKNOWLEDGE = "acknowledge"
    RESOLVE = "resolve"


class PageActionRefused(ValueError):
    """The action does not fit the page's state; the message says why."""


@dataclass(frozen=True)
class Move:
    state: str
    changed: bool  # False: the page was already there; asking twice is the same answer


def page_move(page_id: int, current: str, action: PageAction) -> Move:
    """The state a page moves to. Any state but these two is still open, whatever delivery
    calls it (open, sent, escalated): a person may acknowledge or resolve it."""
    if action is PageAction.ACKNOWLEDGE:
        if current == RESOLVED:
            raise PageActionRefused(f"page {page_id} is already resolved")
        return Move(ACKNOWLEDGED, current != ACKNOWLEDGED)
    return Move(RESOLVED, current != RESOLVED)
