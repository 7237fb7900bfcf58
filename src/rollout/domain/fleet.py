"""What one cell of the fleet matrix says: an upgrade in flight, failed, held or queued, a
recalled version; and a stage's cells summed up in a few words when they do not fit."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from rollout.domain.holds import HoldKind
from rollout.domain.states import ReleaseState, RolloutState, UpgradeState


class Mark(StrEnum):
    IN_FLIGHT = "in_flight"  # deploying, verifying, awaiting a decision: to `to_version`
    FAILED = "failed"  # the last upgrade here failed, rolls or rolled back, or was blocked
    HELD = "held"  # waits on a constraint: a window, a freeze, a dependency, a pause
    QUEUED = "queued"  # waits its turn: an earlier stage, the stage's parallelism
    RECALLED = "recalled"  # the installed version is recalled


# Waiting for these is a rollout's ordinary progress, not something holding it back.
_TURN = frozenset({HoldKind.STAGE, HoldKind.PARALLELISM})
_FAILED = frozenset(
    {
        UpgradeState.ROLLING_BACK,
        UpgradeState.ROLLED_BACK,
        UpgradeState.ROLLBACK_FAILED,
        UpgradeState.BLOCKED,
    }
)


@dataclass(frozen=True)
class LastUpgrade:
    """The newest upgrade of a service in an environment, with its rollout's state."""

    state: UpgradeState
    rollout_state: RolloutState
    to_version: str
    hold_kind: str | None


def mark_of(
    last: LastUpgrade | None, installed_release: ReleaseState | None
) -> tuple[Mark | None, bool]:
    """The cell's mark, and whether it is about the last upgrade (else the installed
    version): what is moving wins over what is recalled, which wins over a past failure."""
    if last is not None and last.state.in_flight and last.state not in _FAILED:
        return Mark.IN_FLIGHT, True
    if installed_release is ReleaseState.RECALLED:
        return Mark.RECALLED, False
    if last is None:
        return None, False
    if last.state in _FAILED:
        return Mark.FAILED, True
    if last.state is UpgradeState.PENDING and not last.rollout_state.halted:
        if last.hold_kind is not None and HoldKind(last.hold_kind) in _TURN:
            return Mark.QUEUED, True
        return Mark.HELD, True
    return None, False


@dataclass(frozen=True)
class CellFact:
    """What a stage summary counts of one cell."""

    version: str | None
    mark: Mark | None


# A mark as a stage summary counts it: "1 failing", "2 upgrading".
MARK_WORDS = {
    Mark.IN_FLIGHT: "upgrading",
    Mark.FAILED: "failed",
    Mark.HELD: "held",
    Mark.QUEUED: "queued",
    Mark.RECALLED: "recalled",
}


def stage_summary(cells: Iterable[CellFact]) -> str:
    """A stage's cells of one service in a few words: "4.0.18 ×48, 4.0.17 ×2, 1 failed";
    versions by how many run them (most first), then every mark that is not nothing."""
    facts = list(cells)
    if not facts:
        return ""
    versions = Counter(f.version or "not installed" for f in facts)
    marks = Counter(f.mark for f in facts if f.mark is not None)
    ranked = sorted(versions.items(), key=lambda item: (-item[1], item[0]))
    parts = [name if n == 1 and len(facts) == 1 else f"{name} ×{n}" for name, n in ranked]
    parts += [f"{marks[m]} {MARK_WORDS[m]}" for m in Mark if marks[m]]
    return ", ".join(parts)
