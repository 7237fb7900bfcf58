"""Names, versions, labels and placeholders as the config spells them, and the base model
of every config model."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    WithJsonSchema,
)

NAME_PATTERN = r"^[a-z][a-z0-9-]{0,62}$"
VERSION_PATTERN = r"^[0-9A-Za-z][0-9A-Za-z._+-]{0,63}$"
LABEL_KEY_PATTERN = r"^[a-z][a-z0-9_.-]{0,62}$"
SEVERITIES: tuple[str, ...] = ("P0", "P1", "P2", "P3", "P4")
URL_PLACEHOLDERS: tuple[str, ...] = ("service", "version", "environment", "stage")
COMMAND_PLACEHOLDERS: tuple[str, ...] = ("service", "version", "environment", "key")
# A placeholder is exactly `{name}`; any other brace is text, as PromQL's `{job="x"}` and a
# command's `--set-json={"a":1}` need.
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
REQUIREMENT_OPERATORS: tuple[str, ...] = (">=", ">", "==", "<=", "<", "!=")

Severity = Literal["P0", "P1", "P2", "P3", "P4"]


def check_name(value: str) -> str:
    if not re.fullmatch(NAME_PATTERN, value):
        raise ValueError(
            f"invalid name {value!r}: use lowercase letters, digits and '-', "
            "starting with a letter, at most 63 characters"
        )
    return value


def check_version(value: object) -> object:
    # YAML reads `1.10` as the float 1.1: refuse numbers rather than guess the text.
    if isinstance(value, bool | int | float):
        raise ValueError(
            f"a version must be a quoted string: YAML read the number {value!r} here "
            '(write e.g. "1.10", in quotes)'
        )
    if isinstance(value, str) and not re.fullmatch(VERSION_PATTERN, value):
        raise ValueError(
            f"invalid version {value!r}: use letters, digits and . _ + - (at most 64), "
            "starting with a letter or digit"
        )
    return value


def _check_label_key(value: str) -> str:
    if not re.fullmatch(LABEL_KEY_PATTERN, value):
        raise ValueError(
            f"invalid label key {value!r}: use lowercase letters, digits and _ . -, "
            "starting with a letter, at most 63 characters"
        )
    return value


def _label_value(value: object) -> object:
    # `air_gapped: true` in YAML is a bool; labels compare as text, so store "true".
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value).lower()
    if not isinstance(value, str):
        raise ValueError(f"label value must be a string, got {type(value).__name__}")
    return value


Name = Annotated[
    str, AfterValidator(check_name), WithJsonSchema({"type": "string", "pattern": NAME_PATTERN})
]
Version = Annotated[
    str,
    BeforeValidator(check_version),
    WithJsonSchema({"type": "string", "pattern": VERSION_PATTERN}),
]
LabelKey = Annotated[
    str,
    AfterValidator(_check_label_key),
    WithJsonSchema({"type": "string", "pattern": LABEL_KEY_PATTERN}),
]
LabelValue = Annotated[str, BeforeValidator(_label_value)]
Labels = dict[LabelKey, LabelValue]


class ConfigModel(BaseModel):
    # Typos in a config must be errors, and a loaded config is never changed in place.
    model_config = ConfigDict(extra="forbid", frozen=True)


def fill_placeholders(
    template: str, values: Mapping[str, str], quote: Callable[[str], str] | None = None
) -> str:
    """`template` with each `{name}` of `values` replaced in one pass: a value is never read
    as a template itself, and `quote` (if given) escapes it for where it lands."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            return match.group(0)
        return values[name] if quote is None else quote(values[name])

    return _PLACEHOLDER.sub(replace, template)


def check_placeholders(value: str, allowed: tuple[str, ...], where: str) -> str:
    for match in _PLACEHOLDER.finditer(value):
        if match.group(1) not in allowed:
            names = ", ".join(f"{{{p}}}" for p in allowed)
            raise ValueError(
                f"unknown placeholder {match.group(0)!r} in {where} (allowed: {names})"
            )
    return value
