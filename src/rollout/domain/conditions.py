"""A small, safe condition language that gate results are held against."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Final, Never, TypeAlias, TypeGuard

__all__ = [
    "OPERATORS",
    "Comparison",
    "Condition",
    "ConditionError",
    "LiteralValue",
    "MissingValue",
    "negate_text",
    "parse_condition",
    "render_literal",
    "render_value",
]

LiteralValue: TypeAlias = float | str | bool | None

ORDERING: Final = frozenset({"<", "<=", ">", ">="})
OPERATORS: Final = ("<=", ">=", "==", "!=", "<", ">")  # two-char first: "<=" must win over "<"
_NEGATED: Final = {"<": ">=", "<=": ">", ">": "<=", ">=": "<", "==": "!=", "!=": "=="}

# ASCII classes on purpose: `\d` and `\w` accept other scripts' digits and letters.
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_INDEX = re.compile(r"\[([0-9]{1,9})\]")
_PATH = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*(?:\.[A-Za-z_][A-Za-z0-9_-]*|\[[0-9]{1,9}\])*")
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_KEYWORDS: Final[dict[str, LiteralValue]] = {"true": True, "false": False, "null": None}
_ESCAPES: Final = {"\\": "\\", "'": "'", '"': '"', "n": "\n", "t": "\t", "r": "\r"}
_QUOTED: Final = {"\\": "\\\\", "'": "\\'", "\n": "\\n", "\t": "\\t", "\r": "\\r"}
_MAX_SHOWN = 60  # observed strings are for one-line messages, not for dumping payloads

# The path `value` names the whole document when the document is a scalar
# (a Prometheus sample, an HTTP status), so one condition shape fits every gate.
_WHOLE_DOCUMENT = "value"


class ConditionError(ValueError):
    """The condition text is not valid; the message says what is wrong and where."""


class MissingValue(LookupError):
    """The document lacks the field a condition names, or holds the wrong type there."""


@dataclass(frozen=True)
class Comparison:
    path: str
    op: str
    literal: LiteralValue

    def __post_init__(self) -> None:
        if _PATH.fullmatch(self.path) is None:
            raise ConditionError(f"{self.path!r} is not a field path")
        if self.op not in OPERATORS:
            raise ConditionError(f"{self.op!r} is not an operator ({', '.join(OPERATORS)})")
        if self.op in ORDERING and not _is_number(self.literal):
            raise ConditionError(
                f"operator {self.op} needs a number, got {render_literal(self.literal)}"
            )
        if isinstance(self.literal, float) and not math.isfinite(self.literal):
            raise ConditionError(f"literal {self.literal!r} is not a finite number")

    @property
    def text(self) -> str:
        return f"{self.path} {self.op} {render_literal(self.literal)}"

    def resolve(self, document: object) -> object:
        """The value the path names in `document`; raises MissingValue."""
        steps = _steps(self.path)
        if document is None:
            # No document at all is "no data", even for the whole-document path.
            raise MissingValue(f"{self.path} missing")
        current = document
        if steps[0] == _WHOLE_DOCUMENT and not isinstance(document, Mapping):
            steps = steps[1:]
        for step in steps:
            if isinstance(step, int):
                if not _is_list(current) or step >= len(current):
                    raise MissingValue(f"{self.path} missing")
                current = current[step]
            else:
                if not isinstance(current, Mapping) or step not in current:
                    raise MissingValue(f"{self.path} missing")
                current = current[step]
        return current

    def evaluate(self, document: object) -> bool:
        actual = self.resolve(document)
        if self.op in ORDERING:
            if not _is_number(actual):
                raise MissingValue(f"{self.path} is {render_value(actual)}, not a number")
            assert isinstance(actual, int | float) and isinstance(self.literal, int | float)
            if math.isnan(actual):
                return False
            if self.op == "<":
                return actual < self.literal
            if self.op == "<=":
                return actual <= self.literal
            if self.op == ">":
                return actual > self.literal
            return actual >= self.literal
        equal = _equal(actual, self.literal)
        return equal if self.op == "==" else not equal


@dataclass(frozen=True)
class Condition:
    text: str
    comparisons: tuple[Comparison, ...]

    def __post_init__(self) -> None:
        if not self.comparisons:
            raise ConditionError("a condition needs at least one comparison")

    def evaluate(self, document: object) -> bool:
        """True when every comparison holds; raises MissingValue.

        Short-circuits like any `and`: `ok == true and latency_ms < 200` on an
        unhealthy `{"ok": false}` is a failure, not an unmeasurable result.
        """
        return all(comparison.evaluate(document) for comparison in self.comparisons)

    def observed(self, document: object) -> str:
        parts: list[str] = []
        seen: set[str] = set()
        for comparison in self.comparisons:
            if comparison.path in seen:
                continue
            seen.add(comparison.path)
            try:
                value = comparison.resolve(document)
            except MissingValue:
                parts.append(f"{comparison.path} missing")
            else:
                parts.append(f"{comparison.path} {render_value(value)}")
        return ", ".join(parts)

    def explain(self, document: object) -> str:
        """One line for a failure message: what was seen, and what was wanted."""
        return f"{self.observed(document)}, wanted {self.text}"


def negate_text(comparison: Comparison) -> str:
    """The comparison turned around, e.g. `error_rate >= 0.05` for `error_rate < 0.05`."""
    return f"{comparison.path} {_NEGATED[comparison.op]} {render_literal(comparison.literal)}"


def parse_condition(text: str) -> Condition:
    return _Parser(text).parse()


def render_literal(literal: LiteralValue) -> str:
    """A literal as the language spells it; parsing the result gives the literal back."""
    if literal is None:
        return "null"
    if isinstance(literal, bool):
        return "true" if literal else "false"
    if isinstance(literal, str):
        return _quote(literal)
    if isinstance(literal, int):
        return str(literal)
    return repr(literal)  # shortest text that reads back as the same float


def render_value(value: object) -> str:
    """A measured value, compactly, for one-line messages."""
    if value is None or isinstance(value, bool | str):
        if isinstance(value, str) and len(value) > _MAX_SHOWN:
            return _quote(value[: _MAX_SHOWN - 1]) + "…"
        return render_literal(value)
    if isinstance(value, int):
        if value.bit_length() <= 64:
            return str(value)
        try:
            return format(float(value), ".6g")
        except OverflowError:
            return "a very large integer"
    if isinstance(value, float):
        return format(value, ".6g")
    if isinstance(value, Mapping):
        return "{…}" if value else "{}"
    if _is_list(value):
        return "[…]" if value else "[]"
    shown = str(value)
    return shown if len(shown) <= _MAX_SHOWN else shown[: _MAX_SHOWN - 1] + "…"


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_list(value: object) -> TypeGuard[Sequence[object]]:
    return isinstance(value, Sequence) and not isinstance(value, str | bytes | bytearray)


def _equal(actual: object, literal: LiteralValue) -> bool:
    # Types must match: in Python `True == 1`, but a health check saying `1` is not `true`.
    if literal is None:
        return actual is None
    if isinstance(literal, bool):
        return isinstance(actual, bool) and actual is literal
    if isinstance(literal, str):
        return isinstance(actual, str) and actual == literal
    return _is_number(actual) and actual == literal


def _quote(text: str) -> str:
    return "'" + "".join(_QUOTED.get(char, char) for char in text) + "'"


@lru_cache(maxsize=1024)
def _steps(path: str) -> tuple[str | int, ...]:
    steps: list[str | int] = []
    position = 0
    while position < len(path):
        if path[position] == ".":
            position += 1
        index = _INDEX.match(path, position)
        if index is not None:
            steps.append(int(index.group(1)))
            position = index.end()
            continue
        name = _NAME.match(path, position)
        if name is None:  # Comparison validates paths, so only a bug lands here
            raise ConditionError(f"{path!r} is not a field path")
        steps.append(name.group())
        position = name.end()
    return tuple(steps)


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.position = 0
        self.lexemes: list[str] = []

    def parse(self) -> Condition:
        if not self.text.strip():
            raise ConditionError("empty condition")
        comparisons: list[Comparison] = []
        while True:
            comparisons.append(self._comparison())
            self._skip_space()
            if self.position == len(self.text):
                break
            word = _WORD.match(self.text, self.position)
            if word is None or word.group() != "and":
                self._fail("expected 'and' or the end of the condition")
            self.lexemes.append("and")
            self.position = word.end()
        return Condition(" ".join(self.lexemes), tuple(comparisons))

    def _comparison(self) -> Comparison:
        self._skip_space()
        path = _PATH.match(self.text, self.position)
        if path is None:
            self._fail("expected a field name such as error_rate or checks.db.ok")
        self.position = path.end()
        self.lexemes.append(path.group())
        self._skip_space()
        op = self._operator()
        self._skip_space()
        start = self.position
        literal = self._literal()
        if op in ORDERING and not _is_number(literal):
            self._fail(f"operator {op} needs a number, got {render_literal(literal)}", start)
        if self.position < len(self.text) and not self.text[self.position].isspace():
            self._fail("expected a space after the value")
        return Comparison(path.group(), op, literal)

    def _operator(self) -> str:
        for op in OPERATORS:
            if self.text.startswith(op, self.position):
                self.position += len(op)
                self.lexemes.append(op)
                return op
        if self.text.startswith("=", self.position):
            self._fail("'=' is not an operator, use '=='")
        self._fail(f"expected an operator ({', '.join(OPERATORS)})")

    def _literal(self) -> LiteralValue:
        start = self.position
        if start < len(self.text) and self.text[start] in "'\"":
            value = self._string()
            self.lexemes.append(self.text[start : self.position])
            return value
        number = _NUMBER.match(self.text, start)
        if number is not None:
            lexeme = number.group()
            self.position = number.end()
            self.lexemes.append(lexeme)
            if any(char in lexeme for char in ".eE"):
                result = float(lexeme)
                if not math.isfinite(result):
                    self._fail(f"number {lexeme} is out of range", start)
                return result
            try:
                return int(lexeme)
            except ValueError:  # more digits than Python converts
                self._fail(f"number {lexeme[:20]}… is too long", start)
        word = _WORD.match(self.text, start)
        if word is not None and word.group() in _KEYWORDS:
            self.position = word.end()
            self.lexemes.append(word.group())
            return _KEYWORDS[word.group()]
        self._fail("expected a value: a number, a quoted string, true, false or null")

    def _string(self) -> str:
        start = self.position
        quote = self.text[start]
        chars: list[str] = []
        position = start + 1
        while position < len(self.text):
            char = self.text[position]
            if char == quote:
                self.position = position + 1
                return "".join(chars)
            if char == "\\":
                escaped = self.text[position + 1 : position + 2]
                if escaped not in _ESCAPES:
                    self._fail(f"unknown escape \\{escaped} in string", position)
                chars.append(_ESCAPES[escaped])
                position += 2
                continue
            chars.append(char)
            position += 1
        self._fail("string is not closed", start)

    def _skip_space(self) -> None:
        while self.position < len(self.text) and self.text[self.position].isspace():
            self.position += 1

    def _fail(self, what: str, position: int | None = None) -> Never:
        column = (self.position if position is None else position) + 1
        raise ConditionError(f"{what} at column {column} of condition {self.text!r}")
