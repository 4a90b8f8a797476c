"""Step conditions: `when: "<expression>"` on a saga step; the step runs only if the expression
is true. Pure; nothing is ever evaluated as code.

A condition reads what an execution knows through the references of input mapping
(chalicelib.domain.mapping): `$.input.<path>`, `$.results.<step id>.<path>` and
`$.execution.id`, and compares it with JSON literals.

Syntax, from the loosest binding to the tightest:

- `a or b`, then `a and b`, then `not a`;
- comparisons: `a == b`, `a != b`, `a < b`, `a <= b`, `a > b`, `a >= b`, `a in b`,
  `a not in b` (the same as `not (a in b)`), and `exists <reference>`; comparisons do not chain;
- operands: a reference, a JSON literal (a double-quoted string with JSON escapes, a number such
  as `3`, `-2.5` or `1e3`, `true`, `false`, `null`, or a list of literals such as
  `[1, "a", null]`), or an expression in parentheses.

Keywords (`and`, `or`, `not`, `in`, `exists`, `true`, `false`, `null`) are lower-case. A
condition is at most 1000 characters long and nests at most 32 deep (parentheses, `not`, lists).
A bare reference may stand as a whole condition or as an operand of `and`, `or` and `not`.

Mistakes found when a definition is stored (ConditionError, naming the column): malformed
syntax or references, `<`, `<=`, `>`, `>=` with a literal that is not a number or a string or
between two literals of different types, `in` with a literal other than a list on its right,
`and`, `or`, `not` or a whole condition on a literal that is not `true` or `false`.

Meaning, when the step is about to run:

- A reference is *absent* when what it names is not there: a missing field, an index past the
  end of a list, a step with no result, or a step that was skipped (its result is absent even
  if an earlier attempt left one). `exists $.ref` is true exactly when the reference is present.
  Absent is not `null`: `$.input.x == null` is true only if the input has `x` set to null.
- `==` and `!=` are JSON equality: numbers compare by value (`1 == 1.0`), but booleans are not
  numbers (`true == 1` is false); lists and objects compare element by element. An absent
  operand equals nothing: `==` is false and `!=` is true.
- `<`, `<=`, `>`, `>=` compare two numbers, or two strings (by Unicode code point). If an
  operand is absent the comparison is false, not an error: `$.input.amount > 100` is false for
  an input without `amount` (and so is `$.input.amount <= 100`; use `exists` to tell them
  apart). Any other pair of types (a string and a number, a boolean, null, a list, an object)
  stops the execution with an error naming the reference and the type it holds.
- `a in b`: if `b` is a list, whether an element equals `a` (as `==`); if `b` is a string,
  whether the string `a` occurs in it; if `b` is an object, whether the string `a` is one of its
  keys. If either side is absent, `in` is false (and `not in` true). Anything else (`b` a number,
  or `a` not a string when `b` is a string or an object) is an error.
- `and` and `or` stop at the first operand that decides them; `and`, `or`, `not` and the whole
  condition need `true` or `false`: a reference holding anything else is an error, and an absent
  reference counts as false.

Every reference read while deciding is recorded with its value (Evaluation.operands), so a
skipped step can show why; references not read (after `and`/`or` decided) and absent ones are
left out.
"""

from __future__ import annotations

import json
import math
import operator
import re
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from chalicelib.domain.mapping import MappingError, Reference, Scope, parse_reference, resolve

MAX_CONDITION_LENGTH = 1000
MAX_NESTING = 32

KEYWORDS = frozenset({"and", "or", "not", "in", "exists", "true", "false", "null"})
_COMPARISONS = ("==", "!=", "<=", ">=", "<", ">")
_ORDERINGS: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
}


class ConditionError(ValueError):
    """A condition that does not parse, or that is wrong whatever the data (a static type
    error); the message says what and at which column (counted from 1)."""


class ConditionEvaluationError(ValueError):
    """A condition that cannot be decided on the data it reads: an operator given a value of the
    wrong JSON type. The message names the reference and the type it holds."""


# -- the syntax tree -------------------------------------------------------------------------

@dataclass(frozen=True)
class Literal:
    value: Any  # a JSON value; lists are tuples (the tree is hashable)
    source: str = field(compare=False)
    column: int = field(compare=False)


@dataclass(frozen=True)
class Ref:
    reference: Reference
    column: int = field(compare=False)

    @property
    def text(self) -> str:
        return self.reference.text


@dataclass(frozen=True)
class Exists:
    operand: Ref
    column: int = field(compare=False)


@dataclass(frozen=True)
class Comparison:
    operator: str  # "==", "!=", "<", "<=", ">", ">=", "in" or "not in"
    left: Expression
    right: Expression
    column: int = field(compare=False)  # of the operator


@dataclass(frozen=True)
class Not:
    operand: Expression
    column: int = field(compare=False)


@dataclass(frozen=True)
class Logical:
    operator: str  # "and" or "or"
    operands: tuple[Expression, ...]  # two or more
    column: int = field(compare=False)  # of the first operator


Expression = Literal | Ref | Exists | Comparison | Not | Logical


@dataclass(frozen=True)
class Condition:
    text: str
    expression: Expression

    def __str__(self) -> str:
        return self.text

    def references(self) -> tuple[str, ...]:
        """The reference texts in the order they are written, each once."""
        return tuple(dict.fromkeys(ref.text for ref in _refs(self.expression)))


def _refs(node: Expression) -> Iterator[Ref]:
    if isinstance(node, Ref):
        yield node
    elif isinstance(node, Exists | Not):
        yield from _refs(node.operand)
    elif isinstance(node, Comparison):
        yield from _refs(node.left)
        yield from _refs(node.right)
    elif isinstance(node, Logical):
        for operand in node.operands:
            yield from _refs(operand)


# -- tokens ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Token:
    kind: str  # "ref", "string", "number", "word", "op" or "end"
    text: str
    column: int
    value: Any = None

    def shown(self) -> str:
        return "the end of the condition" if self.kind == "end" else repr(self.text)


_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ESCAPE = re.compile(r'\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4})')
_REFERENCE_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.[]$")
_OPERATORS = ("==", "!=", "<=", ">=", "<", ">", "(", ")", "[", "]", ",")
_HINTS = {
    "=": "'=' is not an operator: compare with '=='",
    "!": "'!' is not an operator: negate with 'not'",
    "'": "strings are double-quoted",
    "&": "join with 'and'",
    "|": "join with 'or'",
}


def _error(column: int, message: str) -> ConditionError:
    return ConditionError(f"column {column}: {message}")


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    position = 0
    while position < len(text):
        if text[position].isspace():
            position += 1
            continue
        token = _token_at(text, position)
        tokens.append(token)
        position += len(token.text)
    tokens.append(_Token("end", "", len(text) + 1))
    return tokens


def _token_at(text: str, position: int) -> _Token:
    char, column = text[position], position + 1
    if char == "$":
        return _reference_token(text, position)
    if char == '"':
        return _string_token(text, position)
    if char == "-" or char.isdigit():
        return _number_token(text, position)
    word = _WORD.match(text, position)
    if word is not None:
        return _word_token(word.group(), column)
    for symbol in _OPERATORS:
        if text.startswith(symbol, position):
            return _Token("op", symbol, column)
    raise _error(column, _HINTS.get(char, f"unexpected character {char!r}"))


def _reference_token(text: str, position: int) -> _Token:
    """`$` and what follows that a reference may hold; a `]` only closes a `[` of its own."""
    end, depth = position + 1, 0
    while end < len(text) and text[end] in _REFERENCE_CHARS:
        if text[end] == "[":
            depth += 1
        elif text[end] == "]":
            if depth == 0:
                break
            depth -= 1
        end += 1
    source = text[position:end]
    try:
        reference = parse_reference(source)
    except MappingError as error:
        raise _error(position + 1, str(error)) from None
    return _Token("ref", source, position + 1, reference)


def _string_token(text: str, position: int) -> _Token:
    index = position + 1
    while index < len(text):
        char = text[index]
        if char == '"':
            source = text[position:index + 1]
            return _Token("string", source, position + 1, json.loads(source))
        if char == "\\":
            escape = _ESCAPE.match(text, index)
            if escape is None:
                raise _error(index + 1, f"invalid escape {text[index:index + 2]!r} in a string")
            index = escape.end()
            continue
        if ord(char) < 0x20:
            raise _error(index + 1, "a control character in a string (write it escaped)")
        index += 1
    raise _error(position + 1, "unterminated string (no closing '\"')")


def _number_token(text: str, position: int) -> _Token:
    match = _NUMBER.match(text, position)
    end = match.end() if match else position + 1
    while end < len(text) and (text[end].isalnum() or text[end] in "_."):
        end += 1
    source = text[position:end]
    if match is None or match.end() != end:
        raise _error(position + 1, f"malformed number {source!r}")
    value = json.loads(source)
    if isinstance(value, float) and not math.isfinite(value):
        raise _error(position + 1, f"number {source!r} is out of range")
    return _Token("number", source, position + 1, value)


def _word_token(word: str, column: int) -> _Token:
    if word not in KEYWORDS:
        raise _error(column, f"unknown word {word!r} (keywords are lower-case: and, or, not, in, "
                             "exists, true, false, null; strings are double-quoted; references "
                             "start with '$.')")
    return _Token("word", word, column)


# -- parsing ---------------------------------------------------------------------------------

def parse_condition(text: str) -> Condition:
    """The condition `text` states; ConditionError saying what is wrong and where."""
    if not isinstance(text, str):
        raise ConditionError(f"a condition is text, not {type(text).__name__}")
    if len(text) > MAX_CONDITION_LENGTH:
        raise ConditionError(f"a condition is at most {MAX_CONDITION_LENGTH} characters long; "
                             f"this one has {len(text)}")
    parser = _Parser(text, _tokenize(text))
    if parser.peek().kind == "end":
        raise ConditionError("empty condition")
    expression = parser.expression()
    parser.finish()
    _require_boolean(expression, "a condition")
    return Condition(text, expression)


class _Parser:
    """Recursive descent over the tokens, one method a level of precedence."""

    def __init__(self, text: str, tokens: list[_Token]) -> None:
        self._text = text
        self._tokens = tokens
        self._position = 0
        self._depth = 0

    def peek(self, ahead: int = 0) -> _Token:
        return self._tokens[min(self._position + ahead, len(self._tokens) - 1)]

    def _take(self) -> _Token:
        token = self.peek()
        self._position += 1
        return token

    def _at(self, kind: str, *texts: str) -> bool:
        token = self.peek()
        return token.kind == kind and token.text in texts

    def _enter(self, token: _Token) -> None:
        self._depth += 1
        if self._depth > MAX_NESTING:
            raise _error(token.column, f"nesting deeper than {MAX_NESTING}")

    def finish(self) -> None:
        token = self.peek()
        if token.kind != "end":
            raise _error(token.column, f"unexpected {token.shown()} after a complete condition")

    def expression(self) -> Expression:
        return self._logical("or", self._and)

    def _and(self) -> Expression:
        return self._logical("and", self._not)

    def _logical(self, word: str, operand: Callable[[], Expression]) -> Expression:
        operands = [operand()]
        column = self.peek().column
        while self._at("word", word):
            self._take()
            operands.append(operand())
        if len(operands) == 1:
            return operands[0]
        for each in operands:
            _require_boolean(each, f"'{word}'")
        return Logical(word, tuple(operands), column)

    def _not(self) -> Expression:
        if not self._at("word", "not"):
            return self._comparison()
        token = self._take()
        self._enter(token)
        operand = self._not()
        self._depth -= 1
        _require_boolean(operand, "'not'")
        return Not(operand, token.column)

    def _comparison(self) -> Expression:
        if self._at("word", "exists"):
            return self._exists()
        left = self._operand()
        token = self.peek()
        if self._at("op", *_COMPARISONS) or self._at("word", "in"):
            name = self._take().text
        elif self._at("word", "not") and self.peek(1).kind == "word" and self.peek(1).text == "in":
            self._take()
            self._take()
            name = "not in"
        else:
            return left
        comparison = _comparison(name, left, self._operand(), token.column)
        if self._at("op", *_COMPARISONS) or self._at("word", "in"):
            raise _error(self.peek().column, "comparisons do not chain: join them with 'and'")
        return comparison

    def _exists(self) -> Expression:
        token = self._take()
        operand = self._take()
        if operand.kind != "ref":
            raise _error(operand.column,
                         f"'exists' needs a reference after it, found {operand.shown()}")
        return Exists(Ref(operand.value, operand.column), token.column)

    def _operand(self) -> Expression:
        token = self.peek()
        if token.kind == "ref":
            self._take()
            return Ref(token.value, token.column)
        if self._at("op", "("):
            return self._parenthesised()
        if token.kind in ("string", "number") or self._at("word", "true", "false", "null") \
                or self._at("op", "["):
            return self._literal()
        raise _error(token.column, "expected a reference, a literal or '(', found "
                                   f"{token.shown()}")

    def _parenthesised(self) -> Expression:
        opening = self._take()
        self._enter(opening)
        inner = self.expression()
        self._close(opening, ")")
        return inner

    def _close(self, opening: _Token, closing: str) -> _Token:
        token = self.peek()
        if not self._at("op", closing):
            raise _error(token.column, f"expected {closing!r} to close the {opening.text!r} at "
                                       f"column {opening.column}, found {token.shown()}")
        self._depth -= 1
        return self._take()

    def _literal(self) -> Literal:
        token = self.peek()
        if self._at("op", "["):
            return self._list()
        self._take()
        if token.kind == "word":
            value = {"true": True, "false": False, "null": None}[token.text]
            return Literal(value, token.text, token.column)
        return Literal(token.value, token.text, token.column)

    def _list(self) -> Literal:
        opening = self._take()
        self._enter(opening)
        items: list[Literal] = []
        while not self._at("op", "]"):
            if items:
                if not self._at("op", ","):
                    self._close(opening, "]")  # raises: neither ',' nor ']'
                self._take()
            items.append(self._list_item())
        closing = self._close(opening, "]")
        source = self._text[opening.column - 1:closing.column]
        return Literal(tuple(item.value for item in items), source, opening.column)

    def _list_item(self) -> Literal:
        token = self.peek()
        if token.kind in ("string", "number") or self._at("word", "true", "false", "null") \
                or self._at("op", "["):
            return self._literal()
        raise _error(token.column, f"a list holds literals only, found {token.shown()}")


# -- static checks ---------------------------------------------------------------------------

def _static_type(node: Expression) -> str | None:
    """The JSON type a node has whatever the data; None for a reference."""
    if isinstance(node, Literal):
        return _json_type(node.value)
    if isinstance(node, Ref):
        return None
    return "boolean"


def _shown(node: Expression) -> str:
    if isinstance(node, Literal):
        return f"{node.source} ({_a(_json_type(node.value))})"
    return f"the expression at column {node.column} (a boolean)"


def _require_boolean(node: Expression, needed_by: str) -> None:
    kind = _static_type(node)
    if kind not in (None, "boolean"):
        raise _error(node.column, f"{needed_by} needs true or false, not {_shown(node)}")


def _comparison(name: str, left: Expression, right: Expression, column: int) -> Comparison:
    if name in _ORDERINGS:
        _check_ordering(name, left, right, column)
    elif name in ("in", "not in"):
        kind = _static_type(right)
        if kind not in (None, "array"):
            raise _error(right.column, f"'{name}' needs a list or a reference on its right, not "
                                       f"{_shown(right)}")
    return Comparison(name, left, right, column)


def _check_ordering(name: str, left: Expression, right: Expression, column: int) -> None:
    kinds = [_static_type(left), _static_type(right)]
    for node, kind in zip((left, right), kinds, strict=True):
        if kind not in (None, "number", "string"):
            raise _error(node.column, f"'{name}' compares numbers or strings, not {_shown(node)}")
    if None not in kinds and kinds[0] != kinds[1]:
        raise _error(column, f"'{name}' compares two numbers or two strings, not "
                             f"{_shown(left)} and {_shown(right)}")


# -- evaluation ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Evaluation:
    value: bool
    operands: dict[str, Any]  # each reference read -> its value (absent ones left out)


def evaluate(condition: Condition, scope: Scope, *,
             skipped: frozenset[str] = frozenset()) -> Evaluation:
    """Whether `condition` holds in `scope`, with the values it read; ConditionEvaluationError
    when the data's types do not fit an operator. Steps in `skipped` have no result."""
    evaluator = _Evaluator(scope, skipped)
    value = evaluator.boolean(condition.expression, "the condition")
    return Evaluation(value, evaluator.operands)


class _Absent:
    def __repr__(self) -> str:
        return "<absent>"


_ABSENT: Any = _Absent()


class _Evaluator:
    def __init__(self, scope: Scope, skipped: Collection[str]) -> None:
        self._scope = scope
        self._skipped = skipped
        self.operands: dict[str, Any] = {}

    def value(self, node: Expression) -> Any:
        """The node's JSON value (lists of literals as tuples), or _ABSENT."""
        if isinstance(node, Literal):
            return node.value
        if isinstance(node, Ref):
            return self._read(node.reference)
        if isinstance(node, Exists):
            return self._read(node.operand.reference) is not _ABSENT
        if isinstance(node, Not):
            return not self.boolean(node.operand, "'not'")
        if isinstance(node, Logical):
            return self._logical(node)
        return self._compare(node)

    def boolean(self, node: Expression, needed_by: str) -> bool:
        value = self.value(node)
        if value is _ABSENT:
            return False
        if isinstance(value, bool):
            return value
        raise ConditionEvaluationError(f"column {node.column}: {needed_by} needs true or false, "
                                       f"but {_described(node, value)}")

    def _read(self, reference: Reference) -> Any:
        if reference.root == "results" and reference.step_id in self._skipped:
            return _ABSENT
        try:
            value = resolve(reference.text, self._scope)
        except MappingError:
            return _ABSENT
        self.operands[reference.text] = value
        return value

    def _logical(self, node: Logical) -> bool:
        decisive = node.operator == "or"  # the value that decides: true for or, false for and
        for operand in node.operands:
            if self.boolean(operand, f"'{node.operator}'") is decisive:
                return decisive
        return not decisive

    def _compare(self, node: Comparison) -> bool:
        left, right = self.value(node.left), self.value(node.right)
        if node.operator in ("in", "not in"):
            found = left is not _ABSENT and right is not _ABSENT and _contains(node, left, right)
            return found if node.operator == "in" else not found
        if left is _ABSENT or right is _ABSENT:
            return node.operator == "!="
        if node.operator in ("==", "!="):
            return _json_equal(left, right) is (node.operator == "==")
        if (_is_number(left) and _is_number(right)) or \
                (isinstance(left, str) and isinstance(right, str)):
            return _ORDERINGS[node.operator](left, right)
        raise ConditionEvaluationError(
            f"column {node.column}: '{node.operator}' compares two numbers or two strings, but "
            f"{_described(node.left, left)} and {_described(node.right, right)}")


def _contains(node: Comparison, item: Any, container: Any) -> bool:
    if _is_array(container):
        return any(_json_equal(item, element) for element in container)
    if not isinstance(container, str | Mapping):
        raise ConditionEvaluationError(
            f"column {node.column}: '{node.operator}' needs a list, a string or an object on its "
            f"right, but {_described(node.right, container)}")
    if not isinstance(item, str):
        kind = "string" if isinstance(container, str) else "object"
        raise ConditionEvaluationError(
            f"column {node.column}: '{node.operator}' with {_a(kind)} on its right needs a "
            f"string on its left, but {_described(node.left, item)}")
    return item in container


def _described(node: Expression, value: Any) -> str:
    """`<reference> is a string`, naming the reference and its value's JSON type."""
    if isinstance(node, Ref):
        return f"{node.text} is {_a(_json_type(value))}"
    if isinstance(node, Literal):
        return f"{node.source} is {_a(_json_type(value))}"
    return f"the expression at column {node.column} is {_a(_json_type(value))}"


# -- JSON values -----------------------------------------------------------------------------

def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_array(value: Any) -> bool:
    return isinstance(value, list | tuple)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if _is_number(value):
        return "number"
    if isinstance(value, str):
        return "string"
    if _is_array(value):
        return "array"
    if isinstance(value, Mapping):
        return "object"
    return type(value).__name__


def _a(kind: str) -> str:
    return f"an {kind}" if kind[0] in "aeiou" else f"a {kind}"


def _json_equal(left: Any, right: Any) -> bool:
    """JSON equality: numbers by value, booleans apart from numbers, containers deeply."""
    kind = _json_type(left)
    if kind != _json_type(right):
        return False
    if kind == "array":
        return len(left) == len(right) and all(
            _json_equal(a, b) for a, b in zip(left, right, strict=True))
    if kind == "object":
        return left.keys() == right.keys() and all(
            _json_equal(value, right[key]) for key, value in left.items())
    return bool(left == right)
