"""The page lifecycle: which moves a person's answer makes, and which it may not."""

from __future__ import annotations

import pytest

from rollout.domain.pages import Move, PageAction, PageActionRefused, PageState, page_move
from rollout.domain.paging import PageKind, page_key, page_severity

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


def test_one_page_per_cause_and_a_failed_rollback_is_a_cause_of_its_own() -> None:
    assert page_key(PageKind.FAILURE, 7, "health", "prod-1") == "rollout-7/health/prod-1"
    assert page_key(PageKind.DECISION, 7, "health", "prod-1") == "rollout-7/health/prod-1"
    assert page_key(PageKind.FAILURE, 7, None, "prod-1") == "rollout-7/deploy/prod-1"
    assert page_key(PageKind.BLOCKED, 7, None, "vault-1") == "rollout-7/entry/vault-1"
    assert page_key(PageKind.ROLLBACK_FAILED, 7, "health", "prod-1") == (
        "rollout-7/health/prod-1/rollback"
    )


@pytest.mark.parametrize(
    ("kind", "stage", "severity"),
    [
        (PageKind.FAILURE, "P0", "P0"),
        (PageKind.FAILURE, "P3", "P3"),
        (PageKind.BLOCKED, "P2", "P2"),
        (PageKind.DECISION, "P0", "P4"),  # a question never wakes anyone
        (PageKind.ROLLBACK_FAILED, "P3", "P0"),  # hands needed, whatever the stage
    ],
)
def test_severity_follows_the_stage_but_for_questions_and_failed_rollbacks(
    kind: PageKind, stage: str, severity: str
) -> None:
    assert page_severity(kind, stage) == severity
