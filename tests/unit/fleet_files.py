"""Fleet config written to a file and loaded as `rollout` loads it, for the config tests."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from rollout.config import ConfigError, ConfigProblem, Fleet, load_fleet


def load_text(tmp_path: Path, text: str) -> Fleet:
    path = tmp_path / "fleet.yaml"
    path.write_text(textwrap.dedent(text))
    return load_fleet(path)


def problems_in(tmp_path: Path, text: str) -> list[ConfigProblem]:
    with pytest.raises(ConfigError) as caught:
        load_text(tmp_path, text)
    return caught.value.problems
