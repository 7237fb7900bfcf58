"""The fleet matrix drawn for people: services × environments grouped by stage when they fit
the terminal, else one column per stage summed up; held, failed and recalled cells'
reasons printed once below, with the environments they concern."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from rollout.api.schemas.fleet import FleetCell, FleetRow, FleetView
from rollout.cli.story import names
from rollout.domain.fleet import CellFact, Mark, stage_summary

MARK_STYLE = {
    Mark.IN_FLIGHT: "cyan",
    Mark.FAILED: "bold red",
    Mark.HELD: "yellow",
    Mark.QUEUED: "dim",
    Mark.RECALLED: "magenta",
}
MARK_LABEL = {
    Mark.IN_FLIGHT: "→",
    Mark.FAILED: "failed",
    Mark.HELD: "held",
    Mark.QUEUED: "queued",
    Mark.RECALLED: "recalled",
}
# The reasons a table prints at most; `-o wide` prints every one.
MAX_MESSAGES = 8
# A table's frame: two borders, and one space either side of each cell.
_EDGES, _PER_COLUMN = 1, 3


def cell_lines(cell: FleetCell) -> list[str]:
    """The installed version, then the mark and the version it is about, if any."""
    lines = [cell.version or "-"]
    if cell.mark is not None:
        label = MARK_LABEL[cell.mark]
        about = cell.to_version if cell.mark is not Mark.RECALLED else None
        lines.append(f"{label} {about}" if about else label)
    return lines


def _cell_text(cell: FleetCell | None) -> Text:
    if cell is None:
        return Text("")
    lines = cell_lines(cell)
    text = Text(lines[0])
    if cell.mark is not None:
        text.append("\n" + lines[1], style=MARK_STYLE[cell.mark])
    return text


def _column_widths(view: FleetView) -> dict[str, int]:
    widths = {e: len(e) for s in view.stages for e in s.environments}
    for s in view.stages:
        if s.environments:
            first = s.environments[0]
            widths[first] = max(widths[first], len(s.name))
    for row in view.services:
        for cell in row.cells:
            longest = max(len(line) for line in cell_lines(cell))
            widths[cell.environment] = max(widths[cell.environment], longest)
    return widths


def _service_width(view: FleetView) -> int:
    return max([len("service"), *(len(r.service) for r in view.services)])


def fits(view: FleetView, width: int) -> bool:
    """Whether every environment gets its own column, no cell cut, within `width`."""
    needed = _EDGES + _service_width(view) + _PER_COLUMN
    needed += sum(w + _PER_COLUMN for w in _column_widths(view).values())
    return needed <= width


def _bands(view: FleetView, width: int) -> list[list[str]]:
    """The environments in runs of columns that each fit `width` beside the service names."""
    widths = _column_widths(view)
    room = width - _EDGES - _service_width(view) - _PER_COLUMN
    bands: list[list[str]] = [[]]
    used = 0
    for stage in view.stages:
        for environment in stage.environments:
            need = widths[environment] + _PER_COLUMN
            if bands[-1] and used + need > room:
                bands.append([])
                used = 0
            bands[-1].append(environment)
            used += need
    return [band for band in bands if band]


def _detail_table(view: FleetView, environments: list[str], title: str) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("service", overflow="ellipsis", no_wrap=True, min_width=7)
    stage_of = {e: s.name for s in view.stages for e in s.environments}
    previous = None
    for environment in environments:
        stage = stage_of[environment]
        # The stage names the first of its columns: the columns are grouped by stage.
        header = f"{stage}\n{environment}" if stage != previous else f"\n{environment}"
        previous = stage
        table.add_column(header, no_wrap=True, overflow="ellipsis")
    for row in view.services:
        cells = {c.environment: c for c in row.cells}
        table.add_row(row.service, *(_cell_text(cells.get(e)) for e in environments))
    return table


def _summary_table(view: FleetView) -> Table:
    table = Table(title="Fleet, per stage (-o wide or a filter for every environment)")
    table.title_justify = "left"
    table.add_column("service", overflow="ellipsis", no_wrap=True, min_width=7)
    for stage in view.stages:
        table.add_column(f"{stage.name} ({len(stage.environments)})", ratio=1, min_width=8)
    for row in view.services:
        table.add_row(row.service, *(_stage_cell(row, s.name) for s in view.stages))
    return table


def _stage_cell(row: FleetRow, stage: str) -> str:
    return stage_summary(CellFact(c.version, c.mark) for c in row.cells if c.stage == stage)


def messages(view: FleetView) -> list[str]:
    """Each reason a cell is held, failed or recalled, once, with its environments."""
    grouped: dict[tuple[str, Mark, str | None, str], list[str]] = {}
    for row in view.services:
        for cell in row.cells:
            if cell.mark in (Mark.HELD, Mark.FAILED, Mark.RECALLED):
                key = (row.service, cell.mark, cell.to_version, cell.reason or "no reason kept")
                grouped.setdefault(key, []).append(cell.environment)
    lines = []
    for (service, mark, version, reason), environments in sorted(
        grouped.items(), key=lambda item: -len(item[1])
    ):
        lines.append(f"{service} {version} {mark.value}: {reason} — {names(environments)}")
    return lines


def fleet_matrix(view: FleetView, wide: bool, width: int) -> RenderableType:
    """Every environment as a column when they fit (`wide`: in as many bands as needed),
    else one column per stage summed up."""
    if not view.services or not view.stages:
        return Text("no services in these environments")
    parts: list[RenderableType] = []
    if fits(view, width):
        every = [e for s in view.stages for e in s.environments]
        parts.append(_detail_table(view, every, "Fleet"))
    elif wide:
        bands = _bands(view, width)
        for n, band in enumerate(bands, 1):
            parts.append(_detail_table(view, band, f"Fleet ({n} of {len(bands)})"))
    else:
        parts.append(_summary_table(view))
    lines = messages(view)
    shown = lines if wide else lines[:MAX_MESSAGES]
    parts += [Text(line) for line in shown]
    if len(shown) < len(lines):
        parts.append(Text(f"not shown: {len(lines) - len(shown)} more reasons (-o wide)"))
    return Group(*parts)
