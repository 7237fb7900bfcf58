"""The JSON Schema of each reading command's `-o json`, from the read model it prints;
`python -m rollout.cli.schemas [DIR]` writes them to docs/schemas/ (a test keeps them current)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from pydantic import BaseModel

from rollout.api.schemas import (
    FreezeList,
    HygieneOut,
    OnCallOut,
    PageList,
    RolloutDetailView,
    RolloutList,
    TokenList,
)
from rollout.api.schemas.fleet import FleetView
from rollout.api.schemas.history import EventList
from rollout.api.schemas.status import RolloutStatus

# One line per reading command: its name (a sub-command joined by "-") and the model its
# `-o json` prints, the same as the API's body for it.
OUTPUTS: dict[str, type[BaseModel]] = {
    "list": RolloutList,
    "show": RolloutDetailView,
    "pages": PageList,
    "oncall": OnCallOut,
    "freezes": FreezeList,
    "token-list": TokenList,
    "hygiene": HygieneOut,
    "status": RolloutStatus,
    "fleet": FleetView,
    "history": EventList,
}

DOCS = Path("docs/schemas")


def schema_text(command: str) -> str:
    """The schema of `rollout COMMAND -o json`, as committed: stable, indented, one file."""
    model = OUTPUTS[command]
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"rollout/{command}.json",
        "$comment": f"the output of `rollout {command.replace('-', ' ')} -o json`",
        **model.model_json_schema(mode="serialization"),
    }
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def write_schemas(directory: Path) -> list[Path]:
    """Write every command's schema to `directory`; the files written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for command in OUTPUTS:
        path = directory / f"{command}.json"
        path.write_text(schema_text(command), encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":
    for path in write_schemas(Path(sys.argv[1]) if len(sys.argv) > 1 else DOCS):
        print(path)
