"""`rollout demo`, as a new user runs it: one process, embedded database, simulated fleet."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from tests.conftest import ROLLOUT

pytestmark = pytest.mark.e2e


def test_the_demo_rolls_out_rolls_back_pages_and_summarises(tmp_path: object) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROLLOUT_")}
    result = subprocess.run(
        [ROLLOUT, "demo", "--json"], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["services"] >= 20 and summary["environments"] >= 30
    assert summary["stages"] == ["canary", "staging", "production"]
    assert summary["all_final"] is True
    assert summary["elapsed_s"] < 60
    assert summary["upgrades_done"] > 400
    assert summary["rollbacks"] >= 4  # every bad release rolled back where it failed
    assert summary["rollouts"]["failed"] == 4 and summary["rollouts"]["superseded"] == 1
    pages = summary["pages"]
    assert pages and all(p["recipient"] for p in pages)  # a person, by name, not a relay
    # Every page reached the teams' pager once, and so did its acknowledgement.
    assert summary["pager_received"] == {"trigger": len(pages), "acknowledge": len(pages)}
    teams = {t["team"]: t for t in summary["hygiene"]["teams"]}
    assert sum(t["pages"] for t in teams.values()) == len(pages)
