"""Rich output for operators: tables of rollouts, tokens and pages, and the story of one
rollout (summed up by `rollout.cli.story`)."""

from __future__ import annotations

from datetime import UTC, datetime

from rich import box
from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from rollout.api.schemas import (
    GateView,
    PageView,
    RolloutDetailView,
    RolloutGate,
    RolloutSummary,
    TokenView,
    UpgradeView,
)
from rollout.cli.history import action_lines
from rollout.cli.story import Story, counts, names, summarise

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
    "skipped": "dim",
    "superseding": "dim",
}
OUTCOME_MARK = {"success": "ok", "failure": "failed", "inconclusive": "inconclusive"}
# Pages a default `show` prints; `--all` prints every one.
MAX_PAGES = 2
MAX_ACTIONS = 3


def state_text(state: str) -> Text:
    return Text(state, style=STATE_STYLE.get(state, ""))


def at(moment: datetime) -> str:
    """A time as output prints it: always with its zone."""
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"


def _short(moment: datetime) -> str:
    # Lists print times in UTC and say so in their caption.
    return f"{moment.astimezone(UTC):%m-%d %H:%M}"


def _name_column(table: Table, header: str, min_width: int = 6) -> None:
    """A name stays whole, or gives way with an ellipsis: never folded mid-word."""
    table.add_column(header, overflow="ellipsis", no_wrap=True, min_width=min_width)


def rollouts_table(rows: list[RolloutSummary], wide: bool = False) -> Table:
    # Borderless, as kubectl lists: at 80 columns every column but the reason stays whole.
    table = _borderless("Rollouts")
    table.add_column("id", no_wrap=True, justify="right")
    _name_column(table, "service")
    _name_column(table, "version", 5)
    if wide:
        _name_column(table, "team", 4)
    table.add_column("state", no_wrap=True)
    _name_column(table, "stage", 5)
    table.add_column("done", no_wrap=True, justify="right")
    if wide:
        table.add_column("submitted", no_wrap=True)
    table.add_column("updated", no_wrap=True)
    # The reason is prose: it wraps at word boundaries.
    table.add_column("reason", ratio=1, min_width=12)
    for r in rows:
        cells: list[str | Text] = [str(r.id), r.service, r.version]
        if wide:
            cells.append(r.team)
        cells += [state_text(r.state), r.stage, f"{r.done}/{r.total}"]
        if wide:
            cells.append(_short(r.created_at))
        cells += [_short(r.updated_at), r.reason or ""]
        table.add_row(*cells)
    return table


def _gate_values(gates: list[GateView], counted: bool) -> str:
    """Each gate's last value and outcome, a line each; its condition is printed once,
    under the stages. `counted`: how many were taken, failed and erred too."""
    lines = []
    for gate in gates:
        value = f"{gate.value:g}" if gate.value is not None else gate.observed or "-"
        line = f"{gate.name} {value} {OUTCOME_MARK.get(gate.outcome, gate.outcome)}"
        if counted:
            line += f" ({gate.taken} taken, {gate.failures} failed, {gate.errors} errors)"
        lines.append(line)
    return "\n".join(lines)


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def _stages_table(detail: RolloutDetailView, story: Story) -> Table:
    table = Table(title="Stages", title_justify="left")
    _name_column(table, "stage")
    table.add_column("status", no_wrap=True)
    table.add_column("environments", ratio=3, min_width=12)
    table.add_column("gates failing, holds", ratio=2, min_width=10)
    table.add_column("soak", min_width=4)
    now = datetime.now(UTC)
    for stage in story.stages:
        soak = _duration(stage.soak_s)
        if stage.promote_share < 1:
            soak += f", at {stage.promote_share:.0%}"
        if story.soak_ends_at is not None and stage.index == detail.stage_index:
            soak = f"{_duration((story.soak_ends_at - now).total_seconds())} left"
        notes = [f"{g} failing ×{n}" for g, n in stage.failing_gates]
        notes += [f"{k} ×{n}" for k, n in stage.holds]
        table.add_row(
            f"{stage.index + 1} {stage.name}",
            stage.status,
            counts(stage.states) or "none",
            ", ".join(notes) or "-",
            soak,
        )
    return table


def _gate_line(gate: RolloutGate, seen: set[str]) -> Text:
    """A gate once: what it measures and the conditions it holds."""
    parts = [f"{gate.name} ({gate.type})"]
    if gate.query:
        parts.append(gate.query)
    if gate.success_condition:
        parts.append(f"passes when {gate.success_condition}")
    if gate.failure_condition:
        parts.append(f"fails when {gate.failure_condition}")
    if not gate.success_condition and not gate.failure_condition and seen:
        parts.append("held against " + ", ".join(sorted(seen)))
    return Text("gate " + " · ".join(parts))


def _environments_table(rows: list[UpgradeView], title: str, counted: bool) -> Table:
    table = Table(title=title, title_justify="left")
    _name_column(table, "environment", 8)
    table.add_column("state", no_wrap=True)
    _name_column(table, "stage", 5)
    table.add_column("version", overflow="ellipsis", min_width=7)
    table.add_column("gates (last value)", ratio=1, min_width=12)
    for u in rows:
        table.add_row(
            u.environment,
            state_text(u.state),
            u.stage,
            f"{u.from_version or '-'} → {u.to_version}",
            _gate_values(u.gates, counted),
        )
    return table


def rollout_story(detail: RolloutDetailView, everything: bool = False) -> Group:
    """The header, a summary per stage, the gates once, then only the environments not
    simply done (every one with `everything`), each message once with its environments."""
    r = detail
    story = summarise(detail, everything=everything)
    header = Text.assemble(
        (f"Rollout {r.id}", "bold"),
        f" · {r.service} {r.version} · team {r.team} · ",
        state_text(r.state),
    )
    parts: list[RenderableType] = [header]
    if detail.release.digest:
        parts.append(Text(f"digest: {detail.release.digest}"))
    parts.append(Text(f"release {detail.release.state}: {detail.release.reason or 'ok'}"))
    if r.reason:
        parts.append(Text(f"why: {r.reason}"))
    times = f"created {at(r.created_at)} · updated {at(r.updated_at)}"
    if r.finished_at:
        times += f" · finished {at(r.finished_at)}"
    parts.append(Text(times))
    parts.append(_stages_table(detail, story))
    conditions: dict[str, set[str]] = {}
    for u in detail.upgrades:
        for g in u.gates:
            conditions.setdefault(g.name, set()).add(g.condition)
    for gate in detail.gates:
        parts.append(_gate_line(gate, conditions.get(gate.name, set())))
    if story.rows:
        shown = "every environment" if everything else "environments not done"
        title = f"{shown.capitalize()} ({len(story.rows)})"
        parts.append(_environments_table(story.rows, title, everything))
    left_out = []
    if story.hidden_rows:
        left_out.append(f"{story.hidden_rows} more environments not done")
    if story.done:
        left_out.append(f"{story.done} done")
    for message in story.messages:
        where = names(message.environments, everything)
        parts.append(Text(f"{message.kind}: {message.text} — {where}"))
    if story.hidden_messages:
        left_out.append(f"{story.hidden_messages} more messages")
    pages = detail.pages if everything else detail.pages[:MAX_PAGES]
    for page in pages:
        parts.append(
            Text(
                f"page {page.severity} to {page.team} on-call [{page.state}]: {page.summary}",
                style="red" if page.kind != "decision" else "yellow",
            )
        )
    if len(pages) < len(detail.pages):
        left_out.append(f"{len(detail.pages) - len(pages)} more pages")
    # Who paused, aborted or skipped is what an operator asks first: the latest few actions.
    actions = action_lines(detail)
    shown_actions = actions if everything else actions[-MAX_ACTIONS:]
    parts.extend(Text(line) for line in shown_actions)
    if len(shown_actions) < len(actions):
        left_out.append(f"{len(actions) - len(shown_actions)} earlier actions")
    if left_out:
        parts.append(Text(f"not shown: {', '.join(left_out)} (rollout show {r.id} --all)"))
    return Group(*parts)


def print_story(console: Console, detail: RolloutDetailView) -> None:
    console.print(rollout_story(detail))


def _borderless(title: str) -> Table:
    """A list as kubectl prints one: no borders, so 80 columns hold the columns that matter."""
    table = Table(
        title=title,
        title_justify="left",
        box=box.SIMPLE_HEAD,
        collapse_padding=True,
        caption="times in UTC",
        caption_justify="left",
    )
    return table


def tokens_table(tokens: list[TokenView]) -> Table:
    table = _borderless("Tokens")
    table.add_column("id", no_wrap=True, justify="right")
    table.add_column("scope", no_wrap=True)
    # What the token is granted: its services, its team or its environments.
    table.add_column("grant", ratio=1, min_width=10, overflow="ellipsis")
    table.add_column("created", no_wrap=True)
    table.add_column("state", no_wrap=True)
    table.add_column("note", ratio=1, min_width=8, overflow="ellipsis")
    for t in tokens:
        grant = ", ".join(t.services or t.environments) or (f"team {t.team}" if t.team else "")
        state = Text("active")
        if t.revoked_at:
            state = Text(f"revoked {_short(t.revoked_at)}", style="red")
        table.add_row(
            str(t.id),
            t.scope,
            grant,
            f"{t.created_at.astimezone(UTC):%Y-%m-%d %H:%M}",
            state,
            t.note or "",
        )
    return table


def pages_table(pages: list[PageView]) -> Table:
    table = _borderless("Pages")
    table.add_column("id", no_wrap=True, justify="right")
    table.add_column("at", no_wrap=True)
    table.add_column("sev", no_wrap=True)
    table.add_column("state", no_wrap=True)
    # Each cell a few lines, broken only between words; a name too long ends in an ellipsis.
    table.add_column("release, where", min_width=12, overflow="ellipsis")
    table.add_column("what", ratio=1, min_width=10, overflow="ellipsis")
    table.add_column("to, delivery", ratio=1, min_width=10, overflow="ellipsis")
    for page in pages:
        sent = ", ".join(
            f"{d.channel.split(':', 1)[1]} {d.state}"
            + (f" ({d.attempts} tries)" if d.attempts > 1 else "")
            for d in page.deliveries
        )
        to = f"{page.recipient} ({page.role})" if page.recipient else "the team"
        table.add_row(
            str(page.id),
            f"{page.created_at.astimezone(UTC):%m-%d %H:%M}",
            page.severity,
            page.state,
            f"{page.service} {page.version}\n{page.environment} ({page.stage})",
            f"{page.gate or 'deploy'}: {page.detail.split(' (http')[0]}",
            f"{page.team}: {to}\n{sent or 'no channel'}",
        )
    return table
