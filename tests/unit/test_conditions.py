"""Tests for the gate condition language: parsing, evaluation, rendering and rejection."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rollout.domain.conditions import (
    OPERATORS,
    Comparison,
    Condition,
    ConditionError,
    LiteralValue,
    MissingValue,
    negate_text,
    parse_condition,
    render_literal,
    render_value,
)

# --- parsing -----------------------------------------------------------------------------------


def test_parses_a_simple_comparison() -> None:
    condition = parse_condition("error_rate < 0.05")
    assert condition.comparisons == (Comparison("error_rate", "<", 0.05),)
    assert condition.text == "error_rate < 0.05"


def test_normalises_whitespace_but_not_inside_strings() -> None:
    condition = parse_condition("  error_rate<0.05\n and\tstatus  ==  'all  good'  ")
    assert condition.text == "error_rate < 0.05 and status == 'all  good'"
    assert condition.comparisons[1].literal == "all  good"


@pytest.mark.parametrize(
    ("text", "literal"),
    [
        ("x == 200", 200),
        ("x == -3", -3),
        ("x == +3", 3),
        ("x == 1.5", 1.5),
        ("x == .5", 0.5),
        ("x == 5.", 5.0),
        ("x == 1e-5", 1e-5),
        ("x == -2.5E+3", -2500.0),
        ("x == 'ok'", "ok"),
        ('x == "ok"', "ok"),
        ("x == 'it\\'s'", "it's"),
        ('x == "a\\"b\\\\c\\n"', 'a"b\\c\n'),
        ("x == true", True),
        ("x == false", False),
        ("x == null", None),
    ],
)
def test_literals(text: str, literal: LiteralValue) -> None:
    parsed = parse_condition(text).comparisons[0].literal
    assert parsed == literal
    assert type(parsed) is type(literal)


def test_integer_literals_stay_integers() -> None:
    assert isinstance(parse_condition("status == 200").comparisons[0].literal, int)


@pytest.mark.parametrize("op", OPERATORS)
def test_every_operator_parses(op: str) -> None:
    assert parse_condition(f"x {op} 1").comparisons[0].op == op


@pytest.mark.parametrize(
    "path", ["error_rate", "checks.db.ok", "results[0].value", "a[1][2].b", "db-primary.ok"]
)
def test_paths(path: str) -> None:
    assert parse_condition(f"{path} == 1").comparisons[0].path == path


def test_several_comparisons_joined_by_and() -> None:
    condition = parse_condition("a < 1 and b >= 2 and c == 'x'")
    assert [c.path for c in condition.comparisons] == ["a", "b", "c"]


@pytest.mark.parametrize(
    ("text", "fragment", "column"),
    [
        ("", "empty condition", None),
        ("   ", "empty condition", None),
        ("error_rate", "expected an operator", 11),
        ("error_rate 0.05", "expected an operator", 12),
        ("error_rate <", "expected a value", 13),
        ("error_rate = 0.05", "use '=='", 12),
        ("error_rate < 'high'", "operator < needs a number, got 'high'", 14),
        ("error_rate >= true", "operator >= needs a number", 15),
        ("error_rate < null", "operator < needs a number", 14),
        ("a < 1 or b < 2", "expected 'and' or the end of the condition", 7),
        ("a < 1 and", "expected a field name", 10),
        ("a < 1and b < 2", "expected a space after the value", 6),
        ("a == 'open", "string is not closed", 6),
        ("a == 'bad \\q'", "unknown escape", 11),
        ("a == 1e999", "out of range", 6),
        ("a == 1" + "0" * 5000, "too long", 6),
        ("a == yes", "expected a value", 6),
        ("a == truex", "expected a value", 6),
        ("1 < a", "expected a field name", 1),
        ("a..b == 1", "expected an operator", 2),
        ("a[x] == 1", "expected an operator", 2),
        ("a < 1 b < 2", "expected 'and'", 7),
        ("ünïcode == 1", "expected a field name", 1),
        ("a == ١", "expected a value", 6),
    ],
)
def test_rejects_bad_text_saying_what_and_where(
    text: str, fragment: str, column: int | None
) -> None:
    with pytest.raises(ConditionError) as info:
        parse_condition(text)
    message = str(info.value)
    assert fragment in message
    if column is not None:
        assert f" at column {column} of condition " in message


def test_error_message_names_the_condition() -> None:
    with pytest.raises(ConditionError, match=r"of condition 'error_rate 0\.05'"):
        parse_condition("error_rate 0.05")


def test_condition_error_is_a_value_error() -> None:
    # Config validation catches ValueError to report a field; this keeps that working.
    with pytest.raises(ValueError):
        parse_condition("nonsense")


def test_comparison_validates_when_built_directly() -> None:
    with pytest.raises(ConditionError):
        Comparison("1bad", "<", 1)
    with pytest.raises(ConditionError):
        Comparison("x", "=~", 1)
    with pytest.raises(ConditionError):
        Comparison("x", "<", "a")
    with pytest.raises(ConditionError):
        Comparison("x", "==", math.nan)
    with pytest.raises(ConditionError):
        Condition("", ())


# --- evaluation --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("op", "value", "expected"),
    [
        ("<", 0.04, True),
        ("<", 0.05, False),
        ("<=", 0.05, True),
        ("<=", 0.06, False),
        (">", 0.06, True),
        (">", 0.05, False),
        (">=", 0.05, True),
        (">=", 0.04, False),
        ("==", 0.05, True),
        ("==", 0.04, False),
        ("!=", 0.04, True),
        ("!=", 0.05, False),
    ],
)
def test_numeric_operators_at_the_boundary(op: str, value: float, expected: bool) -> None:
    assert parse_condition(f"x {op} 0.05").evaluate({"x": value}) is expected


def test_int_and_float_compare_as_numbers() -> None:
    assert parse_condition("status == 200").evaluate({"status": 200.0})
    assert parse_condition("x < 1.5").evaluate({"x": 1})


@pytest.mark.parametrize("op", OPERATORS)
def test_nan_is_false_for_every_operator_but_not_equal(op: str) -> None:
    assert parse_condition(f"x {op} 1").evaluate({"x": math.nan}) is (op == "!=")


def test_infinity_compares_as_a_number() -> None:
    assert parse_condition("x > 1e308").evaluate({"x": math.inf})
    assert not parse_condition("x < 0").evaluate({"x": math.inf})


def test_nested_paths_and_indexes() -> None:
    document = {"checks": {"db": {"ok": True}}, "results": [{"value": 3}, {"value": 9}]}
    assert parse_condition("checks.db.ok == true").evaluate(document)
    assert parse_condition("results[1].value > 5").evaluate(document)
    assert not parse_condition("results[0].value > 5").evaluate(document)


def test_value_is_the_whole_scalar_document() -> None:
    assert parse_condition("value < 0.05").evaluate(0.01)
    assert parse_condition("value == 503").evaluate(503)
    assert parse_condition("value == 'up'").evaluate("up")
    assert parse_condition("value[1] == 2").evaluate([1, 2])


def test_value_is_a_key_when_the_document_is_a_mapping() -> None:
    assert parse_condition("value == 1").evaluate({"value": 1})
    with pytest.raises(MissingValue, match="value missing"):
        parse_condition("value == 1").evaluate({"other": 1})


def test_equality_is_type_strict() -> None:
    # Python says True == 1; a health check that says 1 has not said true.
    assert not parse_condition("ok == true").evaluate({"ok": 1})
    assert not parse_condition("x == 1").evaluate({"x": True})
    assert not parse_condition("x == 1").evaluate({"x": "1"})
    assert not parse_condition("x == '1'").evaluate({"x": 1})
    assert not parse_condition("x == null").evaluate({"x": 0})
    assert parse_condition("x == null").evaluate({"x": None})
    assert parse_condition("x != true").evaluate({"x": "true"})


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({}, "error_rate missing"),
        ({"error_rate": "abc"}, "error_rate is 'abc', not a number"),
        ({"error_rate": True}, "error_rate is true, not a number"),
        ({"error_rate": None}, "error_rate is null, not a number"),
        ({"error_rate": [1]}, r"error_rate is \[…\], not a number"),
        ({"error_rate": {"a": 1}}, "error_rate is {…}, not a number"),
        ([], "error_rate missing"),
        (None, "error_rate missing"),
        (0.01, "error_rate missing"),
    ],
)
def test_missing_or_mistyped_values_raise_missing_value(document: object, message: str) -> None:
    with pytest.raises(MissingValue, match=message):
        parse_condition("error_rate < 0.05").evaluate(document)


def test_none_document_is_no_data_even_for_value() -> None:
    with pytest.raises(MissingValue, match="value missing"):
        parse_condition("value == null").evaluate(None)


def test_index_out_of_range_and_index_into_non_list_are_missing() -> None:
    with pytest.raises(MissingValue, match=r"results\[2\].value missing"):
        parse_condition("results[2].value < 1").evaluate({"results": [{}, {}]})
    with pytest.raises(MissingValue):
        parse_condition("results[0] < 1").evaluate({"results": "abc"})
    with pytest.raises(MissingValue):
        parse_condition("a.b < 1").evaluate({"a": [1]})


def test_and_short_circuits_on_the_first_false() -> None:
    # An unhealthy service may omit its latency: that is a failure, not an unmeasurable result.
    condition = parse_condition("ok == true and latency_ms < 200")
    assert condition.evaluate({"ok": False}) is False
    with pytest.raises(MissingValue):
        condition.evaluate({"ok": True})
    assert condition.evaluate({"ok": True, "latency_ms": 120}) is True


# --- rendering ---------------------------------------------------------------------------------


def test_observed_shows_each_field_once() -> None:
    condition = parse_condition("error_rate > 0 and error_rate < 0.05 and latency_ms < 300")
    assert condition.observed({"error_rate": 0.071, "latency_ms": 240}) == (
        "error_rate 0.071, latency_ms 240"
    )


def test_observed_shows_missing_fields() -> None:
    condition = parse_condition("error_rate < 0.05 and latency_ms < 300")
    assert condition.observed({"error_rate": 0.071}) == "error_rate 0.071, latency_ms missing"
    assert condition.observed(None) == "error_rate missing, latency_ms missing"


def test_explain_is_observed_then_wanted() -> None:
    condition = parse_condition("error_rate<0.05")
    assert condition.explain({"error_rate": 0.071}) == "error_rate 0.071, wanted error_rate < 0.05"
    assert parse_condition("value == 200").explain(503) == "value 503, wanted value == 200"


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (0.071, "0.071"),
        (1e-05, "1e-05"),
        (240.0, "240"),
        (0.123456789, "0.123457"),
        (1234567.0, "1.23457e+06"),
        (12345678, "12345678"),
        (10**30, "1e+30"),
        (10**400, "a very large integer"),
        (math.nan, "nan"),
        (-math.inf, "-inf"),
        (True, "true"),
        (None, "null"),
        ("ok", "'ok'"),
        ("it's", "'it\\'s'"),
        ("x" * 100, "'" + "x" * 59 + "'…"),
        ([], "[]"),
        ({}, "{}"),
    ],
)
def test_render_value(value: object, shown: str) -> None:
    assert render_value(value) == shown


def test_negate_text() -> None:
    assert negate_text(Comparison("error_rate", "<", 0.05)) == "error_rate >= 0.05"
    assert negate_text(Comparison("ok", "==", True)) == "ok != true"
    assert negate_text(Comparison("x", "!=", None)) == "x == null"
    assert negate_text(Comparison("x", ">", 1)) == "x <= 1"


# --- properties --------------------------------------------------------------------------------

names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_-]{0,8}", fullmatch=True)
paths = st.builds(
    lambda head, tail: head + "".join(tail),
    names,
    st.lists(st.one_of(names.map(lambda n: "." + n), st.integers(0, 99).map(lambda i: f"[{i}]"))),
)
numbers = st.one_of(
    st.integers(-(10**20), 10**20), st.floats(allow_nan=False, allow_infinity=False)
)
literals: st.SearchStrategy[LiteralValue] = st.one_of(numbers, st.text(), st.booleans(), st.none())


@st.composite
def comparisons(draw: st.DrawFn) -> Comparison:
    op = draw(st.sampled_from(OPERATORS))
    literal = draw(numbers) if op in {"<", "<=", ">", ">="} else draw(literals)
    return Comparison(draw(paths), op, literal)


@given(st.lists(comparisons(), min_size=1, max_size=4))
def test_rendered_text_parses_back_to_the_same_comparisons(items: list[Comparison]) -> None:
    condition = parse_condition(" and ".join(c.text for c in items))
    assert condition.comparisons == tuple(items)


@given(st.lists(comparisons(), min_size=1, max_size=4))
def test_normalised_text_is_a_fixed_point(items: list[Comparison]) -> None:
    once = parse_condition("  and\n".join(c.text for c in items))
    assert parse_condition(once.text) == once


@given(st.text())
def test_render_literal_round_trips_strings(text: str) -> None:
    assert parse_condition(f"x == {render_literal(text)}").comparisons[0].literal == text


@given(st.text())
def test_garbage_raises_only_condition_error(text: str) -> None:
    try:
        condition = parse_condition(text)
    except ConditionError as error:
        assert "condition" in str(error)
    else:
        assert condition.comparisons


@given(
    st.lists(
        st.one_of(
            st.sampled_from(["a", "b.c", "x[0]", "and", "<", "<=", "==", "!", "=", "'", '"']),
            st.sampled_from(["1", "-1e5", ".", "true", "null", "\\", "[", "]", " ", "\n"]),
        )
    ).map("".join)
)
def test_near_miss_garbage_raises_only_condition_error(text: str) -> None:
    try:
        condition = parse_condition(text)
    except ConditionError as error:
        assert " of condition " in str(error) or str(error) == "empty condition"
    else:
        assert parse_condition(condition.text) == condition


json_values: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.sampled_from(["a", "b", "c", "value"]), children, max_size=3)
    ),
    max_leaves=10,
)


@given(st.lists(comparisons(), min_size=1, max_size=3), json_values)
def test_evaluate_returns_a_bool_or_raises_missing_value(
    items: list[Comparison], document: object
) -> None:
    condition = Condition(" and ".join(c.text for c in items), tuple(items))
    try:
        result = condition.evaluate(document)
    except MissingValue as error:
        assert str(error)
    else:
        assert isinstance(result, bool)
    assert isinstance(condition.observed(document), str)


@given(comparisons(), json_values)
def test_a_comparison_and_its_negation_disagree_unless_nan(
    comparison: Comparison, document: object
) -> None:
    negated = parse_condition(negate_text(comparison)).comparisons[0]
    try:
        actual = comparison.resolve(document)
        result = comparison.evaluate(document)
    except MissingValue:
        with pytest.raises(MissingValue):
            negated.evaluate(document)
        return
    if isinstance(actual, float) and math.isnan(actual) and comparison.op not in {"==", "!="}:
        assert not result and not negated.evaluate(document)
    else:
        assert negated.evaluate(document) is not result


@given(st.floats(allow_nan=False, allow_infinity=False), numbers)
def test_ordering_matches_python_for_numbers(value: float, literal: float) -> None:
    assert parse_condition(f"value < {render_literal(literal)}").evaluate(value) is (
        value < literal
    )
    assert parse_condition(f"value >= {render_literal(literal)}").evaluate(value) is (
        value >= literal
    )
