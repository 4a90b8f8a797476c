"""Step conditions (`when:`): what parses and what not (with the column of the mistake), how
each operator decides on real data, absent and skipped values, precedence, the errors data can
cause, and a property: a random tree printed as text evaluates as Python evaluates the tree."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.domain.conditions import (
    MAX_CONDITION_LENGTH,
    Comparison,
    Condition,
    ConditionError,
    ConditionEvaluationError,
    Evaluation,
    Exists,
    Expression,
    Literal,
    Logical,
    Not,
    Ref,
    evaluate,
    parse_condition,
)
from chalicelib.domain.mapping import MappingError, Scope, parse_reference

SCOPE = Scope(
    execution_id="exec-1",
    input={
        "amount": 150, "price": 9.5, "zero": 0, "currency": "EUR", "name": "Ann Lee",
        "vip": True, "blocked": False, "note": None, "tags": ["vip", 1, None], "empty": [],
        "address": {"city": "Oslo", "zip": "0150"}, "items": [{"sku": "a1", "qty": 2}],
    },
    results={"car": {"booked": True, "price": 120}, "hotel": {"rooms": 2}, "noop": None},
)


def _holds(text: str, *, skipped: frozenset[str] = frozenset()) -> bool:
    return evaluate(parse_condition(text), SCOPE, skipped=skipped).value


def _parse_error(text: str) -> str:
    with pytest.raises(ConditionError) as caught:
        parse_condition(text)
    return str(caught.value)


def _evaluation_error(text: str) -> str:
    condition = parse_condition(text)
    with pytest.raises(ConditionEvaluationError) as caught:
        evaluate(condition, SCOPE)
    return str(caught.value)


# -- parsing ---------------------------------------------------------------------------------

PARSES = [
    ("true", ()),
    ("false", ()),
    ("$.input.vip", ("$.input.vip",)),
    ("$.input.amount>100", ("$.input.amount",)),
    ('  $.input.currency  ==  "EUR"  ', ("$.input.currency",)),
    ('$.input.items[0].sku == "a1"', ("$.input.items[0].sku",)),
    ("$.results.car-rental.price >= -12.5e-1", ("$.results.car-rental.price",)),
    ('$.execution.id != ""', ("$.execution.id",)),
    (r'"\u00e9\n\"\\" == $.input.s', ("$.input.s",)),
    ("$.input.a in []", ("$.input.a",)),
    ('$.input.a in [[1, 2], "x", null, true, -0.5, []]', ("$.input.a",)),
    ("$.input.a not in [1]", ("$.input.a",)),
    ("$.input.a in $.input.b", ("$.input.a", "$.input.b")),
    ("not not $.input.a", ("$.input.a",)),
    ("exists $.results.car", ("$.results.car",)),
    ("(((($.input.a))))", ("$.input.a",)),
    ("$.input.a == 1 and ($.input.b or not exists $.input.c)",
     ("$.input.a", "$.input.b", "$.input.c")),
    ("1 < 2", ()),
    ('"a" <= "b"', ()),
    ("$.input.a < $.input.b", ("$.input.a", "$.input.b")),
    ("($.input.a == 1) == ($.input.b == 2)", ("$.input.a", "$.input.b")),
    ("$.input.and == 1 or $.input.in", ("$.input.and", "$.input.in")),
    ("true==$.input.a", ("$.input.a",)),
    ("[1,2]==$.input.a", ("$.input.a",)),
]


@pytest.mark.parametrize(("text", "references"), PARSES, ids=[text for text, _ in PARSES])
def test_parses(text: str, references: tuple[str, ...]) -> None:
    condition = parse_condition(text)
    assert condition.text == text
    assert str(condition) == text
    assert condition.references() == references
    assert parse_condition(text) == condition
    hash(condition)  # frozen all the way down: usable as a key


PARSE_FAILURES = [
    # (text, column, a fragment of the message)
    ("$.inputs.x == 1", 1, "a reference starts with $.input"),
    ("$.results == 1", 1, "name a step"),
    ("true and $.execution.name", 10, "only $.execution.id"),
    ("$.input.a[x] == 1", 1, "'a[x]' is not a field name"),
    ("$.input..a", 1, "'' is not a field name"),
    ("$input.a", 1, "it must start with '$.'"),
    ("x == 1", 1, "unknown word 'x'"),
    ("TRUE", 1, "unknown word 'TRUE'"),
    ("$.input.a == 1 AND $.input.b", 16, "unknown word 'AND'"),
    ("$.input.a = 1", 11, "compare with '=='"),
    ("!$.input.a", 1, "negate with 'not'"),
    ("$.input.a & $.input.b", 11, "'and'"),
    ("$.input.a == 'x'", 14, "double-quoted"),
    ('$.input.a == "abc', 14, "unterminated string"),
    (r'"a\q" == $.input.a', 3, r"invalid escape '\\q'"),
    ('"a\tb" == $.input.a', 3, "control character"),
    ("$.input.a == 01", 14, "malformed number '01'"),
    ("$.input.a == 1.5.2", 14, "malformed number '1.5.2'"),
    ("$.input.a == 2x", 14, "malformed number '2x'"),
    ("$.input.a == -", 14, "malformed number '-'"),
    ("$.input.a == 1e999", 14, "out of range"),
    ("$.input.a ~ 1", 11, "unexpected character '~'"),
    ("$.input.a <", 12, "expected a reference, a literal or '(', found the end of the condition"),
    ("== 1", 1, "found '=='"),
    ("$.input.a == and", 14, "found 'and'"),
    ("$.input.a == 1 $.input.b", 16, "unexpected '$.input.b' after a complete condition"),
    ("($.input.a", 11, "expected ')' to close the '(' at column 1"),
    ("$.input.a)", 10, "unexpected ')'"),
    ("$.input.a in [1, 2", 19, "expected ']' to close the '[' at column 14"),
    ("$.input.a in [1 2]", 17, "found '2'"),
    ("$.input.a in [$.input.b]", 15, "a list holds literals only, found '$.input.b'"),
    ("$.input.a in [1,]", 17, "a list holds literals only, found ']'"),
    ("$.input.a < true", 13, "'<' compares numbers or strings, not true (a boolean)"),
    ("$.input.a > null", 13, "not null (a null)"),
    ("$.input.a >= [1]", 14, "not [1] (an array)"),
    ("false <= $.input.a", 1, "not false (a boolean)"),
    ('"a" < 1', 5, "'<' compares two numbers or two strings, not \"a\" (a string) and 1"),
    ("($.input.a == 1) < 2", 12, "not the expression at column 12 (a boolean)"),
    ('$.input.a in "abc"', 14, "'in' needs a list or a reference on its right, not \"abc\""),
    ("$.input.a not in 3", 18, "'not in' needs a list or a reference on its right, not 3"),
    ("$.input.a in ($.input.b == 1)", 25, "not the expression at column 25"),
    ("not 3", 5, "'not' needs true or false, not 3 (a number)"),
    ("1 and $.input.x", 1, "'and' needs true or false, not 1 (a number)"),
    ('$.input.x or "yes"', 14, "'or' needs true or false, not \"yes\" (a string)"),
    ("true and ($.input.a or null)", 24, "'or' needs true or false, not null"),
    ('"yes"', 1, "a condition needs true or false, not \"yes\" (a string)"),
    ("3", 1, "a condition needs true or false, not 3 (a number)"),
    ("null", 1, "not null (a null)"),
    ("[true]", 1, "not [true] (an array)"),
    ("(1)", 2, "not 1 (a number)"),
    ("exists 3", 8, "'exists' needs a reference after it, found '3'"),
    ("exists ($.input.a)", 8, "found '('"),
    ("exists", 7, "found the end of the condition"),
    ("1 < 2 < 3", 7, "comparisons do not chain"),
    ("$.input.a == 1 == true", 16, "comparisons do not chain"),
    ("$.input.a in [1] in $.input.b", 18, "comparisons do not chain"),
    ("$.input.a not 3", 11, "unexpected 'not'"),
    ("$.input.a and", 14, "found the end of the condition"),
    ("not", 4, "found the end of the condition"),
]


@pytest.mark.parametrize(("text", "column", "fragment"), PARSE_FAILURES,
                         ids=[text for text, _, _ in PARSE_FAILURES])
def test_does_not_parse(text: str, column: int, fragment: str) -> None:
    message = _parse_error(text)
    assert message.startswith(f"column {column}: "), message
    assert fragment in message, message


@pytest.mark.parametrize("text", ["$.inputs.x", "$.results", "$.execution.name", "$.input.a[x]",
                                  "$.input.", "$.x y"])
def test_a_malformed_reference_keeps_the_mapping_message(text: str) -> None:
    reference = text.split()[0]
    with pytest.raises(MappingError) as caught:
        parse_reference(reference)
    assert _parse_error(text) == f"column 1: {caught.value}"


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_an_empty_condition_does_not_parse(text: str) -> None:
    assert _parse_error(text) == "empty condition"


def test_a_condition_is_text() -> None:
    with pytest.raises(ConditionError, match="a condition is text, not bool"):
        parse_condition(True)  # type: ignore[arg-type]


def test_length_is_capped() -> None:
    padding = MAX_CONDITION_LENGTH - len('$.input.a == ""')
    longest = f'$.input.a == "{"x" * padding}"'
    assert len(longest) == MAX_CONDITION_LENGTH
    assert parse_condition(longest).text == longest
    message = _parse_error(f'$.input.a == "{"x" * (padding + 1)}"')
    assert f"at most {MAX_CONDITION_LENGTH} characters" in message
    assert "this one has 1001" in message


@pytest.mark.parametrize(("deepest", "opening"), [
    ("(" * 32 + "true" + ")" * 32, None),
    ("(" * 33 + "true" + ")" * 33, 33),
    ("not " * 32 + "true", None),
    ("not " * 33 + "true", 129),
    ("(" * 31 + "$.input.a in [1]" + ")" * 31, None),
    ("(" * 31 + "$.input.a in [[1]]" + ")" * 31, 46),
    ("[" * 33 + "]" * 33 + " == $.input.a", 33),
])
def test_nesting_is_capped_at_32(deepest: str, opening: int | None) -> None:
    if opening is None:
        parse_condition(deepest)
    else:
        assert _parse_error(deepest) == f"column {opening}: nesting deeper than 32"


def _ref(text: str) -> Ref:
    return Ref(parse_reference(text), column=0)


def _lit(value: Any) -> Literal:
    return Literal(value, source="", column=0)


def test_precedence_or_and_not_comparison() -> None:
    parsed = parse_condition("not $.input.a == 1 and $.input.b or $.input.c")
    assert parsed.expression == Logical("or", (
        Logical("and", (Not(Comparison("==", _ref("$.input.a"), _lit(1), 0), 0),
                        _ref("$.input.b")), 0),
        _ref("$.input.c"),
    ), 0)


def test_chains_of_one_operator_are_one_node_and_parentheses_group() -> None:
    a, b, c = _ref("$.input.a"), _ref("$.input.b"), _ref("$.input.c")
    assert parse_condition("$.input.a or $.input.b or $.input.c").expression == \
        Logical("or", (a, b, c), 0)
    assert parse_condition("$.input.a and ($.input.b and $.input.c)").expression == \
        Logical("and", (a, Logical("and", (b, c), 0)), 0)
    assert parse_condition("($.input.a or $.input.b) and $.input.c").expression == \
        Logical("and", (Logical("or", (a, b), 0), c), 0)
    assert parse_condition("not exists $.input.a").expression == Not(Exists(a, 0), 0)
    assert parse_condition("not $.input.a in [1, [2]]").expression == \
        Not(Comparison("in", a, _lit((1, (2,))), 0), 0)
    assert parse_condition("$.input.a not in [1]").expression == \
        Comparison("not in", a, _lit((1,)), 0)


def test_references_are_in_source_order_without_duplicates() -> None:
    condition = parse_condition(
        "$.input.b == 1 or exists $.results.a.x and ($.input.b > $.execution.id "
        "or not $.results.a.x) and \"$.input.z\" in $.input.list")
    assert condition.references() == (
        "$.input.b", "$.results.a.x", "$.execution.id", "$.input.list")


def test_column_counts_characters_from_one() -> None:
    assert _parse_error('"é" == $.input.a and x').startswith("column 22: unknown word 'x'")


# -- evaluation, operator by operator --------------------------------------------------------

EQUALITY = [
    ("$.input.amount == 150", True),
    ("$.input.amount == 150.0", True),
    ("$.input.amount == 1.5e2", True),
    ("$.input.amount != 150", False),
    ('$.input.amount == "150"', False),
    ("$.input.vip == true", True),
    ("$.input.vip == 1", False),
    ("$.input.zero == false", False),
    ("$.input.zero != false", True),
    ("$.input.note == null", True),
    ("$.input.missing == null", False),
    ("$.input.missing != null", True),
    ('$.input.currency == "EUR"', True),
    ('$.input.currency == "eur"', False),
    ('$.input.tags == ["vip", 1, null]', True),
    ('$.input.tags == ["vip", 1.0, null]', True),
    ('$.input.tags == ["vip", true, null]', False),
    ('$.input.tags == ["vip", 1]', False),
    ("$.input.empty == []", True),
    ("$.input.address == $.input.address", True),
    ('$.input.address != ["Oslo"]', True),
    ("$.input.missing == $.input.missing", False),
    ('$.execution.id == "exec-1"', True),
    ("$.results.car.price == 120", True),
    ("$.results.noop == null", True),
    ("$.results.flight == null", False),
    ('$.input.items[0].sku == "a1"', True),
    ("$.input.items[0] == $.input.items[0]", True),
]

ORDERING = [
    ("$.input.amount > 100", True),
    ("$.input.amount >= 150", True),
    ("$.input.amount < 150", False),
    ("$.input.amount <= 150.0", True),
    ("$.input.price <= 9.5", True),
    ("$.input.price < $.input.amount", True),
    ("-1 < $.input.zero", True),
    ("$.input.amount > 1e2", True),
    ('$.input.currency < "USD"', True),
    ('"Ann" < $.input.name', True),
    ('$.input.name >= "b"', False),  # by code point: upper case before lower case
    ("$.input.missing > 100", False),
    ("$.input.missing <= 100", False),
    ("$.input.missing < $.input.amount", False),
    ("$.results.flight.price < 100", False),
    ("2 > 1", True),
]

MEMBERSHIP = [
    ('"vip" in $.input.tags', True),
    ("1.0 in $.input.tags", True),
    ("true in $.input.tags", False),
    ("null in $.input.tags", True),
    ('"Lee" in $.input.name', True),
    ('"lee" in $.input.name', False),
    ('"" in $.input.name', True),
    ('"city" in $.input.address', True),
    ('"Oslo" in $.input.address', False),
    ('$.input.currency in ["EUR", "USD"]', True),
    ('$.input.currency not in ["EUR", "USD"]', False),
    ("$.input.amount in [150.0]", True),
    ("$.input.vip in [1]", False),
    ('$.input.missing in ["EUR"]', False),
    ('$.input.missing not in ["EUR"]', True),
    ('"x" in $.input.missing', False),
    ('"x" not in $.input.missing', True),
    ('"a" in $.input.empty', False),
    ("[1] in [[1], 2]", True),
    ("$.input.amount in []", False),
    ("$.input.items[0] in $.input.items", True),
]

EXISTENCE = [
    ("exists $.input.note", True),
    ("exists $.input.missing", False),
    ("exists $.input.items[0].sku", True),
    ("exists $.input.items[1]", False),
    ("exists $.input.name.first", False),
    ("exists $.input.address.city", True),
    ("exists $.results.car", True),
    ("exists $.results.flight", False),
    ("exists $.results.noop", True),
    ("exists $.execution.id", True),
    ("not exists $.input.missing", True),
]

BOOLEANS = [
    ("true", True),
    ("false", False),
    ("$.input.vip", True),
    ("$.input.blocked", False),
    ("$.input.missing", False),
    ("$.results.flight.ok", False),
    ("not $.input.missing", True),
    ("not true", False),
    ("not not true", True),
    ("$.results.car.booked and $.input.vip", True),
    ("$.input.vip and $.input.blocked", False),
    ("$.input.blocked or $.input.vip", True),
    ("$.input.blocked or $.input.missing", False),
    ("$.results.flight.ok or true", True),
    ("($.input.amount > 100) == true", True),
    ("($.input.amount > 100) == $.input.blocked", False),
    ("($.input.amount > 100) in [true]", True),
]

PRECEDENCE = [
    ("true or false and false", True),  # and binds tighter than or
    ("(true or false) and false", False),
    ("not false and false", False),  # not binds tighter than and
    ("not (false and false)", True),
    ("not $.input.amount == 1", True),  # comparison binds tighter than not
    ("not $.input.amount == 150 and $.input.vip or $.input.blocked", False),
    ("not $.input.amount == 150 and ($.input.vip or true)", False),
    ("not ($.input.amount == 150 and $.input.vip) or $.input.vip", True),
    ("$.input.blocked and $.input.vip or $.input.vip and not $.input.blocked", True),
    ('not "EUR" in ["USD"] and exists $.input.note', True),
]

EVALUATIONS = EQUALITY + ORDERING + MEMBERSHIP + EXISTENCE + BOOLEANS + PRECEDENCE


@pytest.mark.parametrize(("text", "expected"), EVALUATIONS, ids=[t for t, _ in EVALUATIONS])
def test_evaluates(text: str, expected: bool) -> None:
    assert _holds(text) is expected


# -- absent values and skipped steps ---------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ("exists $.results.car", False),
    ("exists $.results.car.booked", False),
    ("$.results.car.booked", False),
    ("not $.results.car.booked", True),
    ("$.results.car.price > 100", False),
    ("$.results.car.price <= 100", False),
    ("$.results.car.price == 120", False),
    ("$.results.car.price != 120", True),
    ('"booked" in $.results.car', False),
    ("$.results.hotel.rooms == 2", True),  # another step: not skipped
    ("$.input.amount == 150", True),  # a step named like an input field changes nothing
])
def test_a_skipped_steps_result_is_absent(text: str, expected: bool) -> None:
    assert _holds(text, skipped=frozenset({"car", "amount"})) is expected


def test_absent_values_are_not_recorded_as_operands() -> None:
    evaluation = evaluate(parse_condition("$.results.car.price > 100 or $.input.missing"),
                          SCOPE, skipped=frozenset({"car"}))
    assert evaluation == Evaluation(False, {})


def test_operands_are_what_was_read_in_order() -> None:
    evaluation = evaluate(parse_condition(
        '$.input.amount > 100 and $.input.amount < 1000 and exists $.input.note and '
        '"city" in $.input.address and $.input.missing != 1'), SCOPE)
    assert evaluation.value is True
    assert list(evaluation.operands.items()) == [
        ("$.input.amount", 150), ("$.input.note", None),
        ("$.input.address", {"city": "Oslo", "zip": "0150"})]


@pytest.mark.parametrize(("text", "value", "read"), [
    ("$.input.blocked and $.input.amount", False, ["$.input.blocked"]),
    ("$.input.vip or $.input.amount", True, ["$.input.vip"]),
    ("$.input.vip or $.input.amount > $.input.currency", True, ["$.input.vip"]),
    ("$.input.missing or $.input.vip", True, ["$.input.vip"]),
    ("$.input.vip and $.input.blocked and $.input.amount", False,
     ["$.input.vip", "$.input.blocked"]),
])
def test_and_or_stop_at_the_operand_that_decides(text: str, value: bool, read: list[str]) -> None:
    evaluation = evaluate(parse_condition(text), SCOPE)
    assert evaluation.value is value
    assert list(evaluation.operands) == read


# -- errors on real data ---------------------------------------------------------------------

RUN_TIME_ERRORS = [
    ("$.input.currency > 100", ["column 18: '>' compares two numbers or two strings",
                                "$.input.currency is a string", "100 is a number"]),
    ("$.input.vip < 2", ["$.input.vip is a boolean"]),
    ("$.input.note >= 0", ["$.input.note is a null"]),
    ("$.input.tags < $.input.amount", ["$.input.tags is an array", "$.input.amount is a number"]),
    ('$.input.address > "a"', ["$.input.address is an object"]),
    ("$.input.amount < $.input.currency", ["$.input.amount is a number",
                                           "$.input.currency is a string"]),
    ("1 in $.input.amount", ["column 3: 'in' needs a list, a string or an object on its right",
                             "$.input.amount is a number"]),
    ("$.input.amount in $.input.name", ["'in' with a string on its right needs a string on its "
                                        "left", "$.input.amount is a number"]),
    ("1 in $.input.address", ["'in' with an object on its right", "1 is a number"]),
    ("$.input.amount not in $.input.vip", ["'not in' needs a list", "$.input.vip is a boolean"]),
    ("$.input.note in $.input.note", ["$.input.note is a null"]),
    ("$.input.amount", ["column 1: the condition needs true or false",
                        "$.input.amount is a number"]),
    ("not $.input.name", ["column 5: 'not' needs true or false", "$.input.name is a string"]),
    ("true and $.input.tags", ["column 10: 'and' needs true or false",
                               "$.input.tags is an array"]),
    ("false or $.input.note", ["'or' needs true or false", "$.input.note is a null"]),
    ("$.results.noop", ["$.results.noop is a null"]),
    ("($.input.address)", ["$.input.address is an object"]),
]


@pytest.mark.parametrize(("text", "fragments"), RUN_TIME_ERRORS,
                         ids=[text for text, _ in RUN_TIME_ERRORS])
def test_a_type_error_on_real_data_names_the_reference_and_its_type(
        text: str, fragments: list[str]) -> None:
    message = _evaluation_error(text)
    for fragment in fragments:
        assert fragment in message, message
    assert "Traceback" not in message
    assert "\n" not in message


def test_the_two_errors_are_value_errors_and_apart() -> None:
    assert issubclass(ConditionError, ValueError)
    assert issubclass(ConditionEvaluationError, ValueError)
    assert not issubclass(ConditionEvaluationError, ConditionError)
    assert not issubclass(ConditionError, ConditionEvaluationError)


def test_an_absent_operand_is_no_type_error() -> None:
    assert _holds("$.input.missing > $.input.currency") is False
    assert _holds('"x" in $.input.missing') is False


# -- property: printed trees evaluate as Python evaluates them -------------------------------
#
# Trees are typed so that they are free of static and run-time errors: orderings compare numbers
# with numbers and strings with strings, `and`/`or`/`not` take booleans. References read input
# fields that may be absent.

ABSENT = object()
_floats = st.floats(allow_nan=False, allow_infinity=False)
_numbers = st.integers(-10**20, 10**20) | _floats
_strings = st.text(max_size=5)
_scalars = st.none() | st.booleans() | _numbers | _strings
_literal_values = _scalars | st.lists(_scalars, max_size=3)  # (nested lists: the tables above)
_json_values = _literal_values | st.dictionaries(_strings, _scalars, max_size=2)

# Input fields by type: b* booleans, n* numbers, s* strings, j* any JSON value.
_FIELDS = {"b": st.booleans(), "n": _numbers, "s": _strings, "j": _json_values}
_NAMES = ["b0", "b1", "n0", "s0", "j0"]


@dataclass(frozen=True)
class Node:
    kind: str  # lit, ref, exists, not, and, or, cmp, in, paren
    value: Any = None  # a literal's value, a reference's field, a comparison's operator
    children: tuple[Node, ...] = ()


def _refs_of(kind: str) -> st.SearchStrategy[Node]:
    return st.sampled_from([Node("ref", name) for name in _NAMES if name[0] == kind])


def _lits(values: st.SearchStrategy[Any]) -> st.SearchStrategy[Node]:
    return values.map(lambda value: Node("lit", value))


def _cmp(ops: list[str], operands: st.SearchStrategy[Node]) -> st.SearchStrategy[Node]:
    return st.builds(lambda op, left, right: Node("cmp", op, (left, right)),
                     st.sampled_from(ops), operands, operands)


_ORDER_OPS = ["==", "!=", "<", "<=", ">", ">="]
_any_operand = _lits(_literal_values) | _refs_of("j") | _refs_of("n") | _refs_of("s")
_list_literals = _lits(st.lists(_literal_values, max_size=3))
_leaves = st.one_of(
    _lits(st.booleans()),
    _refs_of("b"),
    st.sampled_from(_NAMES).map(lambda name: Node("exists", name)),
    _cmp(_ORDER_OPS, _lits(_numbers) | _refs_of("n")),
    _cmp(_ORDER_OPS, _lits(_strings) | _refs_of("s")),
    _cmp(["==", "!="], _any_operand),
    st.builds(lambda op, item, items: Node("in", op, (item, items)),
              st.sampled_from(["in", "not in"]), _any_operand, _list_literals),
)


def _compound(inner: st.SearchStrategy[Node]) -> st.SearchStrategy[Node]:
    return st.one_of(
        inner.map(lambda node: Node("not", None, (node,))),
        inner.map(lambda node: Node("paren", None, (node,))),
        st.builds(lambda op, left, right: Node(op, None, (left, right)),
                  st.sampled_from(["and", "or"]), inner, inner),
        _cmp(["==", "!="], inner),
        st.builds(lambda node: Node("in", "in", (node, Node("lit", [True]))), inner),
    )


_trees = st.recursive(_leaves, _compound, max_leaves=6)
_inputs = st.fixed_dictionaries({}, optional={name: _FIELDS[name[0]] for name in _NAMES})

# How tightly each kind binds (higher: tighter), and what its children need to be printed bare.
_LEVEL = {"or": 1, "and": 2, "not": 3, "cmp": 4, "in": 4, "exists": 4,
          "lit": 5, "ref": 5, "paren": 5}
_CHILD_LEVELS = {"or": (1, 2), "and": (2, 3), "not": (3,), "cmp": (5, 5), "in": (5, 5),
                 "paren": (0,)}


def _printed(node: Node, level: int = 0) -> str:
    text = _bare(node)
    return f"({text})" if _LEVEL[node.kind] < level else text


def _bare(node: Node) -> str:
    if node.kind == "lit":
        return _json_text(node.value)
    if node.kind == "ref":
        return f"$.input.{node.value}"
    if node.kind == "exists":
        return f"exists $.input.{node.value}"
    children = [_printed(child, level)
                for child, level in zip(node.children, _CHILD_LEVELS[node.kind], strict=True)]
    if node.kind == "not":
        return f"not {children[0]}"
    if node.kind == "paren":
        return f"({children[0]})"
    operator = node.kind if node.kind in ("and", "or") else node.value
    return f"{children[0]} {operator} {children[1]}"


def _json_text(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_json_text(item) for item in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def _python(node: Node, data: dict[str, Any]) -> Any:
    """The node's value by Python's own operators; ABSENT for a missing field."""
    if node.kind == "lit":
        return node.value
    if node.kind == "ref":
        return data.get(node.value, ABSENT)
    if node.kind == "exists":
        return node.value in data
    if node.kind == "not":
        return not _truth(node.children[0], data)
    if node.kind == "paren":
        return _python(node.children[0], data)
    if node.kind == "and":
        return _truth(node.children[0], data) and _truth(node.children[1], data)
    if node.kind == "or":
        return _truth(node.children[0], data) or _truth(node.children[1], data)
    left, right = (_python(child, data) for child in node.children)
    if node.kind == "in":
        found = left is not ABSENT and any(_same(left, item) for item in right)
        return found if node.value == "in" else not found
    if left is ABSENT or right is ABSENT:
        return node.value == "!="
    return {"==": _same, "!=": lambda a, b: not _same(a, b), "<": lambda a, b: a < b,
            "<=": lambda a, b: a <= b, ">": lambda a, b: a > b,
            ">=": lambda a, b: a >= b}[node.value](left, right)


def _truth(node: Node, data: dict[str, Any]) -> bool:
    value = _python(node, data)
    return False if value is ABSENT else value


def _same(a: Any, b: Any) -> bool:
    """JSON equality: Python's, except that booleans are not numbers."""
    if isinstance(a, bool) != isinstance(b, bool):
        return False
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[key], b[key]) for key in a)
    if isinstance(a, list | dict) or isinstance(b, list | dict):
        return False
    return bool(a == b)


def _nesting(node: Node, level: int = 0) -> int:
    """How deep the parser nests to read the printed node: parentheses, `not` and lists."""
    added = int(_LEVEL[node.kind] < level) + int(node.kind in ("not", "paren"))
    if node.kind == "lit":
        return added + _list_depth(node.value)
    levels = _CHILD_LEVELS.get(node.kind, ())
    return added + max((_nesting(child, level)
                        for child, level in zip(node.children, levels, strict=True)), default=0)


def _list_depth(value: Any) -> int:
    if not isinstance(value, list):
        return 0
    return 1 + max((_list_depth(item) for item in value), default=0)


@settings(max_examples=200, deadline=None)
@given(_trees, _inputs)
def test_a_printed_tree_evaluates_as_python_evaluates_it(tree: Node, data: dict[str, Any]) -> None:
    text = _printed(tree)
    if len(text) > MAX_CONDITION_LENGTH or _nesting(tree) > 32:
        with pytest.raises(ConditionError):
            parse_condition(text)
        return
    condition = parse_condition(text)
    evaluation = evaluate(condition, Scope("exec", data, {}))
    assert evaluation.value is _truth(tree, data), text
    for reference, value in evaluation.operands.items():
        assert _same(value, data[reference.removeprefix("$.input.")])
    assert set(evaluation.operands) <= set(condition.references())


def test_the_condition_type_is_a_dataclass_of_its_text_and_tree() -> None:
    condition = parse_condition("$.input.a")
    assert isinstance(condition, Condition)
    assert isinstance(condition.expression, Ref)
    assert isinstance(parse_condition("exists $.input.a").expression, Exists)
    assert isinstance(parse_condition("1 == 1").expression, Comparison)
    tree: Expression = parse_condition("true").expression
    assert tree == Literal(True, "true", 1)
