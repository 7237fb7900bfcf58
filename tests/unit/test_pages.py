"""The page lifecycle: which moves a person's answer makes, and which it may not."""

from __future__ import annotations

import pytest

from rollout.domain.pages import Move, PageAction, PageActionRefused, PageState, page_move

OPEN, ACKED, RESOLVED = PageState.OPEN, PageState.ACKNOWLEDGED, PageState.RESOLVED


@pytest.mark.parametrize(
    ("state", "action", "move"),
    [
        (OPEN, PageAction.ACKNOWLEDGE, Move(ACKED, True)),
        (ACKED, PageAction.ACKNOWLEDGE, Move(ACKED, False)),
        (OPEN, PageAction.RESOLVE, Move(RESOLVED, True)),
        (ACKED, PageAction.RESOLVE, Move(RESOLVED, True)),
        (RESOLVED, PageAction.RESOLVE, Move(RESOLVED, False)),
    ],
)
def test_page_moves(state: PageState, action: PageAction, move: Move) -> None:
    assert page_move(7, state, action) == move


def test_a_resolved_page_is_not_acknowledged() -> None:
    with pytest.raises(PageActionRefused, match="page 7 is already resolved"):
        page_move(7, RESOLVED, PageAction.ACKNOWLEDGE)
