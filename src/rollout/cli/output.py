"""How a reading command prints: a table for people (`wide`: more columns), or the API's
response model for the same thing as JSON or YAML, so a script reads what the API serves."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from enum import StrEnum
from typing import Annotated

import typer
import yaml
from pydantic import BaseModel
from rich.console import RenderableType

from rollout.cli.entry import out


class Format(StrEnum):
    TABLE = "table"
    WIDE = "wide"
    JSON = "json"
    YAML = "yaml"


OutputOption = Annotated[
    Format,
    typer.Option(
        "--output",
        "-o",
        case_sensitive=False,
        help="table, wide (more columns), json or yaml (the API's response model)",
    ),
]


def emit(model: BaseModel, fmt: Format, table: Callable[[bool], RenderableType]) -> None:
    """Print `model` as asked; `table(wide)` draws it for people, only when asked for."""
    if fmt is Format.JSON:
        sys.stdout.write(model.model_dump_json(indent=2) + "\n")
    elif fmt is Format.YAML:
        sys.stdout.write(
            yaml.safe_dump(model.model_dump(mode="json"), sort_keys=False, allow_unicode=True)
        )
    else:
        out.print(table(fmt is Format.WIDE))


def snug(header: str, cells: Iterable[str]) -> int:
    """The width of a column of short values (counts, times): its widest value, or its
    header's widest word, so the header wraps between words and no value is ever cut; the
    name columns beside it give way instead (an ellipsis, never a fold mid-word)."""
    return max([len(word) for word in header.split()] + [len(cell) for cell in cells])
