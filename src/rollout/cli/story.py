"""A rollout's story summed up, without I/O: per stage the counts by state, the gates that
fail, what holds it and the soak left; the environments worth a row; each message once
with the environments it concerns."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from rollout.api.schemas import RolloutDetailView, UpgradeView

# Nothing more to say about these: they ran, or never will.
DONE = frozenset({"succeeded", "cancelled", "superseded", "skipped"})
# Shown first when rows are cut: what needs a person.
ATTENTION = frozenset(
    {"awaiting_decision", "rolling_back", "rolled_back", "rollback_failed", "blocked"}
)
# What a default `show` prints at most, so a rollout over any fleet fits a screen.
MAX_ROWS = 8
MAX_MESSAGES = 4
NAMES_SHOWN = 4


@dataclass(frozen=True)
class StageSummary:
    index: int
    name: str
    status: str  # passed, current, halted here, not reached
    states: list[tuple[str, int]]  # by count, most first
    failing_gates: list[tuple[str, int]]  # gate, environments whose last measure failed
    holds: list[tuple[str, int]]  # hold kind, pending environments
    soak_s: float
    promote_share: float


@dataclass(frozen=True)
class Message:
    """One text and the environments it concerns, in rollout order."""

    kind: str  # "waits" (a pending upgrade's hold) or "why" (an upgrade's reason)
    text: str
    environments: list[str]


@dataclass
class Story:
    stages: list[StageSummary]
    rows: list[UpgradeView]  # the environments to draw, in stage order
    hidden_rows: int  # not drawn because of MAX_ROWS
    messages: list[Message]
    hidden_messages: int
    done: int = 0  # environments left out as done
    soak_ends_at: datetime | None = field(default=None)


def _ranked(counter: Counter[str]) -> list[tuple[str, int]]:
    return sorted(counter.items(), key=lambda item: (-item[1], item[0]))


def stage_status(detail: RolloutDetailView, index: int) -> str:
    current = min(detail.stage_index, len(detail.stages) - 1)
    if index < current or (index == current and detail.state == "succeeded"):
        return "passed"
    if index == current:
        return "halted here" if detail.state in ("failing", "failed") else "current"
    return "not reached"


def summarise(detail: RolloutDetailView, *, everything: bool = False) -> Story:
    """The story as `show` tells it; `everything`: every environment and message."""
    stages = []
    for index, stage in enumerate(detail.stages):
        members = [u for u in detail.upgrades if u.stage_index == index]
        failing: Counter[str] = Counter(
            g.name for u in members for g in u.gates if g.outcome == "failure"
        )
        holds: Counter[str] = Counter(
            u.hold_kind or "planning" for u in members if u.state == "pending"
        )
        stages.append(
            StageSummary(
                index=index,
                name=stage.name,
                status=stage_status(detail, index),
                states=_ranked(Counter(u.state for u in members)),
                failing_gates=_ranked(failing),
                holds=_ranked(holds),
                soak_s=stage.soak_s,
                promote_share=stage.promote_share,
            )
        )
    wanted = [u for u in detail.upgrades if everything or u.state not in DONE]
    # A pending upgrade says only why it waits: that is a message, not a row, unless asked.
    rows = [u for u in wanted if everything or u.state != "pending"]
    if everything:
        shown = rows
    else:
        first = {u.id for u in sorted(rows, key=lambda u: u.state not in ATTENTION)[:MAX_ROWS]}
        shown = [u for u in rows if u.id in first]
    messages = group_messages(wanted)
    kept = messages if everything else messages[:MAX_MESSAGES]
    return Story(
        stages=stages,
        rows=shown,
        hidden_rows=len(rows) - len(shown),
        messages=kept,
        hidden_messages=len(messages) - len(kept),
        done=len(detail.upgrades) - len(wanted),
        soak_ends_at=detail.soak_ends_at,
    )


def group_messages(upgrades: list[UpgradeView]) -> list[Message]:
    """Each distinct hold or reason once, with its environments; the most shared first."""
    grouped: dict[tuple[str, str], list[str]] = {}
    for u in upgrades:
        if u.state == "pending":
            key = ("waits", u.hold_reason or "not planned yet")
        elif u.reason:
            key = ("why", u.reason)
        else:
            continue
        grouped.setdefault(key, []).append(u.environment)
    ordered = sorted(grouped.items(), key=lambda item: -len(item[1]))
    return [Message(kind, text, names) for (kind, text), names in ordered]


def names(environments: list[str], everything: bool = False) -> str:
    """Environments as a short list: "prod-1, prod-2, prod-3, prod-4 and 96 more"."""
    if everything or len(environments) <= NAMES_SHOWN + 1:
        return ", ".join(environments)
    rest = len(environments) - NAMES_SHOWN
    return f"{', '.join(environments[:NAMES_SHOWN])} and {rest} more"


def counts(pairs: list[tuple[str, int]]) -> str:
    """ "48 succeeded, 2 verifying"."""
    return ", ".join(f"{n} {what}" for what, n in pairs)
