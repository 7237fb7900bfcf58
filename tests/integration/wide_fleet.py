"""A fleet config with as many environments as a test asks for, and a check that output
folds no name mid-word: for the output tests of `show`, `list` and `fleet`."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

STAGES = ("canary", "production-eu")


def wide_fleet(path: Path, environments: int) -> list[str]:
    """Write a fleet of two canaries and `environments` production ones; their names."""
    names = ["canary-1", "canary-2"] + [f"production-eu-{n:03d}" for n in range(environments)]
    simulated = {"type": "simulated", "poll_interval": "0.1s"}
    config = {
        "teams": [
            {"name": "payments", "members": [{"name": "Ada Park", "timezone": "Europe/Berlin"}]},
            {"name": "search", "members": [{"name": "Dana Cruz", "timezone": "UTC"}]},
        ],
        "stages": [{"name": "canary", "soak": "1s"}, {"name": "production-eu"}],
        "environments": [
            {
                "name": n,
                "stage": "canary" if n.startswith("canary") else "production-eu",
                "driver": simulated,
            }
            for n in names
        ],
        "services": [
            {
                "name": "checkout",
                "team": "payments",
                "gates": [
                    {
                        "name": "health",
                        "type": "http",
                        "url": "http://{environment}.sim/{service}/health",
                        "success_condition": "error_rate < 0.05",
                        "interval": "0.1s",
                        "count": 2,
                    }
                ],
            },
            {"name": "search-api", "team": "search"},
        ],
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return names


def folded_names(output: str, names: list[str]) -> list[str]:
    """The words of `output` that are a piece of a name but not the name: a name folded
    mid-word. A name cut short with an ellipsis is not folded."""
    known = set(names) | set(STAGES) | {"checkout", "search-api", "payments", "search"}
    folded = []
    for word in re.findall(r"[A-Za-z0-9_.-]+…?", output):
        # A bare number is a count, not a piece of a name.
        if len(word) < 3 or word in known or word.endswith("…") or word.isdigit():
            continue
        if any(n != word and (n.startswith(word) or n.endswith(word)) for n in known):
            folded.append(word)
    return folded
