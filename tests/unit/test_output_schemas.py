"""The committed JSON Schemas of the reading commands' `-o json` are current and valid."""

from __future__ import annotations

import json

import pytest
from jsonschema import Draft202012Validator

from rollout.cli.schemas import DOCS, OUTPUTS, schema_text
from tests.conftest import ROOT

COMMITTED = ROOT / DOCS


@pytest.mark.parametrize("command", sorted(OUTPUTS))
def test_the_committed_schema_is_the_models(command: str) -> None:
    path = COMMITTED / f"{command}.json"
    assert path.exists(), f"run `python -m rollout.cli.schemas` to write {path}"
    assert path.read_text(encoding="utf-8") == schema_text(command), (
        f"{path} is stale: run `python -m rollout.cli.schemas`"
    )
    Draft202012Validator.check_schema(json.loads(path.read_text(encoding="utf-8")))


def test_no_schema_is_left_of_a_command_that_is_gone() -> None:
    assert {p.stem for p in COMMITTED.glob("*.json")} == set(OUTPUTS)
