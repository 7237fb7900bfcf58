"""The page lifecycle: a page's states and what a person may do with it in each (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class PageState(StrEnum):
    # Whatever its deliveries say (sent, retrying, escalated), a page is open until a person
    # acknowledges or resolves it.
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class PageAction(StrEnum):
    ACKNOWLEDGE = "acknowledge"
    RESOLVE = "resolve"


class PageActionRefused(ValueError):
    """The action does not fit the page's state; the message says why."""


@dataclass(frozen=True)
class Move:
    state: PageState
    changed: bool  # False: the page was already there; asking twice is the same answer


def page_move(page_id: int, current: PageState, action: PageAction) -> Move:
    """The state a page moves to: an open page may be acknowledged or resolved, an
    acknowledged one resolved; a resolved page stays resolved."""
    if action is PageAction.ACKNOWLEDGE:
        if current is PageState.RESOLVED:
            raise PageActionRefused(f"page {page_id} is already resolved")
        return Move(PageState.ACKNOWLEDGED, current is not PageState.ACKNOWLEDGED)
    return Move(PageState.RESOLVED, current is not PageState.RESOLVED)
