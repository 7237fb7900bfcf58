"""Load the fleet config from YAML; every problem names its file, line, path and field."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from rollout.config.base import ConfigModel
from rollout.config.fleet import Fleet
from rollout.config.references import dotted
from rollout.plan.channels import CHANNEL_SPECS

__all__ = ["ConfigError", "ConfigProblem", "load_fleet"]

_LIST_KEYS = ("teams", "stages", "environments", "services")
# Top-level mappings (not lists): one file defines each.
_MAPPING_KEYS = ("simulation", "operations", "artifacts")
_TOP_KEYS = (*_LIST_KEYS, *_MAPPING_KEYS)


@dataclass(frozen=True)
class ConfigProblem:
    file: str
    line: int | None
    path: str  # e.g. services[3].gates[0].interval; "" for the file as a whole
    message: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class ConfigError(Exception):
    """The config could not be loaded; `problems` lists every reason found."""

    def __init__(self, problems: list[ConfigProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))

    def __str__(self) -> str:
        return "\n".join(str(p) for p in self.problems)


@dataclass
class _Document:
    file: str
    root: yaml.Node
    data: Any


@dataclass(frozen=True)
class _Origin:
    """Where an item of the merged fleet came from."""

    file: str
    node: yaml.Node | None
    loc: tuple[str | int, ...]  # its location within its own file


@dataclass
class _Merged:
    data: dict[str, Any] = field(default_factory=dict)
    # For each top-level key: where each list item (or the simulation mapping) came from.
    items: dict[str, list[_Origin]] = field(default_factory=dict)
    keys: dict[str, _Origin] = field(default_factory=dict)


def load_fleet(path: str | Path) -> Fleet:
    """Read a YAML file, or merge a directory's *.yaml / *.yml files (sorted by name)."""
    source = Path(path)
    problems: list[ConfigProblem] = []
    if source.is_dir():
        files = sorted(p for p in source.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
        if not files:
            raise ConfigError([ConfigProblem(str(source), None, "", "no *.yaml or *.yml files")])
    else:
        files = [source]
    documents = []
    for file in files:
        document = _read(file, problems)
        if document is not None:
            documents.append(document)
    if problems:
        raise ConfigError(problems)
    merged = _merge(documents, problems)
    try:
        fleet = Fleet.model_validate(merged.data)
    except ValidationError as exc:
        problems += [_problem(error, merged, str(source)) for error in exc.errors()]
    if problems:
        raise ConfigError(_ordered(problems))
    return fleet


def _read(file: Path, problems: list[ConfigProblem]) -> _Document | None:
    name = str(file)
    try:
        text = file.read_bytes().decode("utf-8")
    except FileNotFoundError:
        problems.append(ConfigProblem(name, None, "", "no such file"))
        return None
    except UnicodeDecodeError as exc:
        problems.append(ConfigProblem(name, None, "", f"not UTF-8 text ({exc.reason})"))
        return None
    except OSError as exc:
        problems.append(ConfigProblem(name, None, "", f"cannot read: {exc.strerror or exc}"))
        return None
    loader: yaml.SafeLoader | None = None
    try:
        loader = yaml.SafeLoader(text)
        # One parse gives both the node tree (for line numbers) and the data.
        root = loader.get_single_node()
        data = loader.construct_document(root) if root is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        reason = exc.problem or "syntax error"
        # PyYAML splits its sentence: "while scanning …" is background, "expected …" a lead-in.
        if exc.context and exc.context.startswith("while"):
            reason = f"{reason} ({exc.context})"
        elif exc.context:
            reason = f"{exc.context} {reason}"
        problems.append(ConfigProblem(name, line, "", f"invalid YAML: {reason}"))
        return None
    except yaml.YAMLError as exc:
        problems.append(ConfigProblem(name, None, "", f"invalid YAML: {_one_line(exc)}"))
        return None
    except RecursionError:
        problems.append(ConfigProblem(name, None, "", "invalid YAML: nested too deeply"))
        return None
    finally:
        if loader is not None:
            loader.dispose()
    if root is None or data is None:
        problems.append(ConfigProblem(name, None, "", "the file is empty"))
        return None
    if not isinstance(data, dict):
        problems.append(
            ConfigProblem(
                name,
                root.start_mark.line + 1,
                "",
                f"expected a mapping with keys {', '.join(_TOP_KEYS)}, got {_kind(data)}",
            )
        )
        return None
    return _Document(name, root, data)


def _merge(documents: list[_Document], problems: list[ConfigProblem]) -> _Merged:
    merged = _Merged()
    for document in documents:
        for key, value in document.data.items():
            key_node, value_node = _child(document.root, key)
            line = _line(key_node)
            if key not in _TOP_KEYS:
                problems.append(
                    ConfigProblem(document.file, line, str(key), _unknown_field(key, _TOP_KEYS))
                )
                continue
            merged.keys.setdefault(key, _Origin(document.file, key_node, (key,)))
            if key in _MAPPING_KEYS:
                if key in merged.data:
                    first = merged.keys[key].file
                    problems.append(
                        ConfigProblem(
                            document.file, line, key, f"{key} is already defined in {first}"
                        )
                    )
                    continue
                merged.data[key] = value
                merged.items[key] = [_Origin(document.file, value_node, (key,))]
                continue
            # An empty `services:` is an empty list, not a mistake worth stopping for.
            if value is None:
                value = []
            if not isinstance(value, list):
                problems.append(
                    ConfigProblem(document.file, line, key, f"expected a list, got {_kind(value)}")
                )
                continue
            target = merged.data.setdefault(key, [])
            origins = merged.items.setdefault(key, [])
            for index, item in enumerate(value):
                target.append(item)
                item_node = _child(value_node, index)[1] if value_node is not None else None
                origins.append(_Origin(document.file, item_node, (key, index)))
    return merged


# --- pydantic errors to problems -------------------------------------------------------------


def _problem(error: Any, merged: _Merged, source: str) -> ConfigProblem:
    loc: tuple[str | int, ...] = tuple(error["loc"])
    ctx = error.get("ctx") or {}
    if error["type"] == "union_tag_not_found":
        loc = (*loc, "type")
    if not loc or loc[0] not in merged.keys:
        # A top-level key missing from every file.
        first = next(iter(merged.keys.values()), None)
        file = first.file if first is not None else source
        return ConfigProblem(file, None, ".".join(map(str, loc)), _message(error, loc, ctx))
    top = str(loc[0])
    origin = merged.keys[top]
    rest: tuple[str | int, ...] = loc[1:]
    origins = merged.items.get(top, [])
    if top in _MAPPING_KEYS and origins:
        origin = origins[0]
    elif rest and isinstance(rest[0], int) and 0 <= rest[0] < len(origins):
        origin = origins[rest[0]]
        rest = rest[1:]
    path, line = _walk(origin, rest)
    return ConfigProblem(origin.file, line, path, _message(error, loc, ctx))


def _walk(origin: _Origin, rest: Iterable[str | int]) -> tuple[str, int | None]:
    """The printable path of `rest` below `origin`, and the line of the deepest node found."""
    path = dotted(origin.loc)
    node = origin.node
    line = _line(node)
    for step in rest:
        if step == "[key]":
            # pydantic's marker for "the key of this dict entry was invalid".
            continue
        if isinstance(node, yaml.MappingNode) and _key_node(node, step) is None:
            tag = _key_node(node, "type")
            if tag is not None and _scalar(_child(node, "type")[1]) == step:
                # The tag pydantic adds to a discriminated union's location: not a field.
                continue
        in_list = isinstance(node, yaml.SequenceNode) or (node is None and isinstance(step, int))
        path += f"[{step}]" if in_list else f".{step}"
        key_node, child = _child(node, step) if node is not None else (None, None)
        if child is None:
            node = None
            continue
        line = _line(key_node if isinstance(node, yaml.MappingNode) else child) or line
        node = child
    return path, line


def _message(error: Any, loc: tuple[str | int, ...], ctx: Mapping[str, object]) -> str:
    kind = error["type"]
    value = error.get("input")
    if kind == "missing":
        return "missing required field"
    if kind == "extra_forbidden":
        return _unknown_field(loc[-1], _field_names())
    if kind in ("value_error", "assertion_error") and "error" in ctx:
        return str(ctx["error"])
    if kind == "union_tag_invalid":
        what = "driver" if loc and loc[-1] == "driver" else "gate"
        if "channels" in loc:
            what = "channel"
        return f"unknown {what} type {ctx.get('tag')!r} (expected: {ctx.get('expected_tags')})"
    if kind == "union_tag_not_found":
        return "missing required field"
    if kind == "literal_error":
        return f"invalid value {value!r}: expected {ctx.get('expected')}"
    if kind == "string_type":
        return f"expected a string, got {_kind(value)}"
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return f"expected a whole number, got {value!r}"
    if kind in ("float_type", "float_parsing"):
        return f"expected a number, got {value!r}"
    if kind in ("bool_type", "bool_parsing"):
        return f"expected true or false, got {value!r}"
    if kind == "list_type":
        return f"expected a list, got {_kind(value)}"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return f"expected a mapping, got {_kind(value)}"
    if kind == "too_short":
        return f"needs at least {ctx.get('min_length')} item"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        return f"{value!r}: {_lower_first(error['msg'])}"
    return _lower_first(str(error["msg"]))


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())


def _lower_first(text: str) -> str:
    text = text.removeprefix("Value error, ")
    text = text.replace("Input should be", "must be")
    return text[:1].lower() + text[1:]


def _unknown_field(name: object, known: Iterable[str]) -> str:
    message = f"unknown field {name!r}"
    if isinstance(name, str):
        close = difflib.get_close_matches(name, list(known), n=1)
        if close:
            message += f" (did you mean {close[0]!r}?)"
    return message


def _field_names() -> set[str]:
    """Every field of every config model: what an unknown field may be a typo of."""
    # A team's channels are the plan's specs, not config models; the config spells them too.
    names = {f.alias or n for spec in CHANNEL_SPECS for n, f in spec.model_fields.items()}
    models: list[type[ConfigModel]] = [ConfigModel]
    while models:
        model = models.pop()
        names.update(model.model_fields)
        models.extend(model.__subclasses__())
    return names


def _kind(value: object) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f"text {value!r}"
    return f"{type(value).__name__} {value!r}"


# --- YAML nodes ------------------------------------------------------------------------------


def _key_node(node: yaml.MappingNode, key: str | int) -> yaml.Node | None:
    for key_node, _ in node.value:
        if isinstance(key_node, yaml.ScalarNode) and key_node.value == str(key):
            return key_node
    return None


def _child(node: yaml.Node | None, key: str | int) -> tuple[yaml.Node | None, yaml.Node | None]:
    """(key node, value node) of a mapping entry, or (None, item node) of a sequence item."""
    if isinstance(node, yaml.MappingNode):
        # The last one wins, as in the data PyYAML builds from duplicate keys.
        found: tuple[yaml.Node | None, yaml.Node | None] = (None, None)
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.value == str(key):
                found = (key_node, value_node)
        return found
    if isinstance(node, yaml.SequenceNode) and isinstance(key, int) and 0 <= key < len(node.value):
        return None, node.value[key]
    return None, None


def _scalar(node: yaml.Node | None) -> str | None:
    return node.value if isinstance(node, yaml.ScalarNode) else None


def _line(node: yaml.Node | None) -> int | None:
    return node.start_mark.line + 1 if node is not None else None


def _ordered(problems: list[ConfigProblem]) -> list[ConfigProblem]:
    return sorted(problems, key=lambda p: (p.file, p.line or 0, p.path))
