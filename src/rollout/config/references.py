"""Reference checks on the raw config, before models are built: duplicates and unknown
names, each with its path."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from rollout.config.services import REQUIREMENT

# Where in the raw config: keys and list indexes, outermost first.
Loc = tuple[str | int, ...]


def value_at(data: object, *keys: str | int) -> object:
    """data[k1][k2]… or None, for input whose shape is not checked yet."""
    for key in keys:
        if isinstance(key, int) and isinstance(data, list) and 0 <= key < len(data):
            data = data[key]
        elif isinstance(key, str) and isinstance(data, Mapping):
            data = data.get(key)
        else:
            return None
    return data


def _items(data: object, key: str) -> Iterator[tuple[int, Mapping[str, Any]]]:
    items = value_at(data, key)
    if isinstance(items, list):
        for index, item in enumerate(items):
            if isinstance(item, Mapping):
                yield index, item


def _names(data: object, key: str) -> list[str]:
    return [item["name"] for _, item in _items(data, key) if isinstance(item.get("name"), str)]


def _duplicates(data: object, key: str, what: str, prefix: Loc = ()) -> Iterator[tuple[Loc, str]]:
    first: dict[str, int] = {}
    for index, item in _items(data, key):
        name = item.get("name")
        if not isinstance(name, str):
            continue
        if name in first:
            where = dotted((*prefix, key, first[name]))
            yield (
                (*prefix, key, index, "name"),
                f"duplicate {what} name {name!r} (first at {where})",
            )
        else:
            first[name] = index


def dotted(loc: Loc) -> str:
    """A location as config paths are shown: services[3].gates[0].interval."""
    out = ""
    for step in loc:
        out += f"[{step}]" if isinstance(step, int) else (f".{step}" if out else str(step))
    return out


def _one_of(names: list[str]) -> str:
    return ", ".join(names) if names else "none defined"


def reference_problems(data: Mapping[str, Any]) -> list[tuple[Loc, str]]:
    """Cross-field problems of a raw fleet document: duplicate names, unknown references,
    empty stages. Tolerates malformed parts; the field validation reports those."""
    problems: list[tuple[Loc, str]] = []
    for key, what in (
        ("teams", "team"),
        ("stages", "stage"),
        ("environments", "environment"),
        ("services", "service"),
    ):
        problems += _duplicates(data, key, what)
    teams = _names(data, "teams")
    stages = _names(data, "stages")
    services = _names(data, "services")

    used_stages: set[str] = set()
    for index, environment in _items(data, "environments"):
        stage = environment.get("stage")
        if isinstance(stage, str):
            used_stages.add(stage)
            if stage not in stages:
                problems.append(
                    (
                        ("environments", index, "stage"),
                        f"unknown stage {stage!r} (stages: {_one_of(stages)})",
                    )
                )
    for index, stage in _items(data, "stages"):
        name = stage.get("name")
        if isinstance(name, str) and name not in used_stages:
            problems.append((("stages", index), f"stage {name!r} has no environment"))

    operations = data.get("operations")
    if isinstance(operations, Mapping):
        noc = operations.get("team")
        if isinstance(noc, str) and noc not in teams:
            problems.append(
                (("operations", "team"), f"unknown team {noc!r} (teams: {_one_of(teams)})")
            )

    for index, service in _items(data, "services"):
        name = service.get("name")
        team = service.get("team")
        if isinstance(team, str) and team not in teams:
            problems.append(
                (("services", index, "team"), f"unknown team {team!r} (teams: {_one_of(teams)})")
            )
        problems += _duplicates(service, "gates", "gate", ("services", index))
        requires = service.get("requires")
        if isinstance(requires, list):
            for position, requirement in enumerate(requires):
                other = _required_service(requirement)
                loc: Loc = ("services", index, "requires", position)
                if other is None:
                    continue
                if other == name:
                    problems.append((loc, f"service {name!r} cannot require itself"))
                elif other not in services:
                    problems.append(
                        (loc, f"unknown service {other!r} (services: {_one_of(services)})")
                    )

    for index, fault in _items(value_at(data, "simulation"), "faults"):
        target = fault.get("service")
        if isinstance(target, str) and target != "*" and target not in services:
            problems.append(
                (
                    ("simulation", "faults", index, "service"),
                    f'unknown service {target!r} (use a service name or "*")',
                )
            )
    return problems


def _required_service(requirement: object) -> str | None:
    if isinstance(requirement, str):
        match = REQUIREMENT.fullmatch(requirement)
        return match.group(1) if match else None
    service = value_at(requirement, "service")
    return service if isinstance(service, str) else None
