"""Rich output for operators: tables of rollouts, and the story of one rollout."""

from __future__ import annotations

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from rollout.api.schemas import (
    GateView,
    PageView,
    RolloutDetailView,
    RolloutSummary,
    TokenView,
    UpgradeView,
)

STATE_STYLE = {
    "succeeded": "green",
    "running": "cyan",
    "verifying": "cyan",
    "deploying": "cyan",
    "ready": "cyan",
    "pending": "dim",
    "paused": "yellow",
    "awaiting_decision": "yellow",
    "failing": "red",
    "failed": "bold red",
    "rolling_back": "red",
    "rolled_back": "red",
    "rollback_failed": "bold red",
    "blocked": "bold red",
    "cancelled": "dim",
    "superseded": "dim",
    "superseding": "dim",
}


def state_text(state: str) -> Text:
    return Text(state, style=STATE_STYLE.get(state, ""))


def rollouts_table(rows: list[RolloutSummary]) -> Table:
    table = Table(title="Rollouts", title_justify="left")
    for column in ("id", "service", "version", "team", "state", "stage", "upgraded", "reason"):
        table.add_column(column, overflow="fold")
    for r in rows:
        table.add_row(
            str(r.id),
            r.service,
            r.version,
            r.team,
            state_text(r.state),
            r.stage,
            f"{r.done}/{r.total}",
            r.reason or "",
        )
    return table


def _gates(gates: list[GateView]) -> str:
    lines = []
    for gate in gates:
        counts = f"{gate.taken} taken"
        if gate.failures:
            counts += f", {gate.failures} failed"
        if gate.errors:
            counts += f", {gate.errors} errors"
        lines.append(f"{gate.name}: {gate.value or '-'} against {gate.condition} ({counts})")
    return "\n".join(lines)


def _why(upgrade: UpgradeView) -> str:
    if upgrade.state == "pending":
        return f"waits: {upgrade.hold_reason or 'not planned yet'}"
    return upgrade.reason or ""


def rollout_story(detail: RolloutDetailView) -> Group:
    r = detail
    stages = r.stages
    header = Text.assemble(
        (f"Rollout {r.id}", "bold"),
        f" · {r.service} {r.version} · team {r.team} · ",
        state_text(r.state),
    )
    parts: list[Table | Text] = [header]
    if detail.release.digest:
        parts.append(Text(f"digest: {detail.release.digest}"))
    parts.append(Text(f"release {detail.release.state}: {detail.release.reason or 'ok'}"))
    if r.reason:
        parts.append(Text(f"why: {r.reason}"))
    current = min(r.stage_index, len(stages) - 1)
    for index, stage in enumerate(stages):
        members = [u for u in detail.upgrades if u.stage_index == index]
        if index < current or (index == current and r.state == "succeeded"):
            status = "passed"
        elif index == current:
            status = "halted here" if r.state in ("failing", "failed") else "current"
        else:
            status = "not reached"
        title = (
            f"Stage {index + 1} {stage.name} ({status}; soak {stage.soak_s:g}s, "
            f"promote at {stage.promote_share:.0%})"
        )
        untouched = {u.state for u in members} <= {"cancelled", "superseded"}
        if members and untouched:
            # Nothing happened here: one line says so instead of a table of the same row.
            states = ", ".join(sorted({u.state for u in members}))
            parts.append(
                Text(f"{title}: {len(members)} environments {states}; {members[0].reason or ''}")
            )
            continue
        table = Table(title=title, title_justify="left", show_lines=False)
        for column in (
            "environment",
            "state",
            "version",
            "gates (last value against condition)",
            "why",
        ):
            table.add_column(column, overflow="fold")
        for u in members:
            table.add_row(
                u.environment,
                state_text(u.state),
                f"{u.from_version or '-'} → {u.to_version}",
                _gates(u.gates),
                _why(u),
            )
        parts.append(table)
    for page in detail.pages:
        parts.append(
            Text(
                f"page {page.severity} to {page.team} on-call [{page.state}]: {page.summary}",
                style="red" if page.kind != "decision" else "yellow",
            )
        )
    return Group(*parts)


def print_story(console: Console, detail: RolloutDetailView) -> None:
    console.print(rollout_story(detail))


def tokens_table(tokens: list[TokenView]) -> Table:
    table = Table(title="Tokens", title_justify="left")
    for column in ("id", "scope", "services", "team", "note", "created", "revoked"):
        table.add_column(column, overflow="fold")
    for t in tokens:
        table.add_row(
            str(t.id),
            t.scope,
            ", ".join(t.services or t.environments),
            t.team or "",
            t.note or "",
            f"{t.created_at:%Y-%m-%d %H:%M} UTC",
            Text(f"{t.revoked_at:%Y-%m-%d %H:%M} UTC", style="red") if t.revoked_at else "",
        )
    return table


def pages_table(pages: list[PageView]) -> Table:
    table = Table(title="Pages", title_justify="left")
    for column in (
        "id",
        "at (UTC)",
        "team",
        "sev",
        "to",
        "release",
        "where",
        "what",
        "state",
        "delivery",
    ):
        table.add_column(column, overflow="fold")
    for page in pages:
        sent = ", ".join(
            f"{d.channel.split(':', 1)[1]} {d.state}"
            + (f" ({d.attempts} tries)" if d.attempts > 1 else "")
            for d in page.deliveries
        )
        table.add_row(
            str(page.id),
            f"{page.created_at:%m-%d %H:%M:%S}",
            page.team,
            page.severity,
            f"{page.recipient} ({page.role})" if page.recipient else "team",
            f"{page.service} {page.version}",
            f"{page.environment} ({page.stage})",
            f"{page.gate or 'deploy'}: {page.detail.split(' (http')[0]}",
            page.state,
            sent or "no channel",
        )
    return table
