"""Input and output mapping: a small, documented subset of JSONPath that picks values out of
what an execution knows. Pure; no code is ever evaluated.

A mapping is a JSON object whose values are literals or references (strings starting "$."):

- `$.input` or `$.input.<path>`: the execution's input, or a field of it;
- `$.results.<step id>` or `$.results.<step id>.<path>`: what an earlier step returned;
- `$.execution.id`: the execution's id;
- `$.item` or `$.item.<path>`: in a fan-out step's input only, the list's element its item
  works on.

A path is field names separated by dots, each optionally followed by list indexes (`items[0]`).
Values nest: an object or a list inside a mapping is mapped value by value. A string that
starts with "$$." stands for the literal text after the first "$".

A step whose `when` condition was false (SKIPPED) has no result, and a reference to it (or to
a field below it) is absent rather than an error: an object's field whose value is such a
reference is left out, a list's element becomes null. Any other reference whose value is absent
is an error (MappingError), as a step that should have run and did not is a fault.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

_SEGMENT = re.compile(r"([A-Za-z0-9_\-]+)((?:\[\d+\])*)$")
_INDEX = re.compile(r"\[(\d+)\]")
ROOTS = ("input", "results", "execution", "item")


class MappingError(ValueError):
    """A reference that is malformed, or (at run time) one whose value is absent."""


@dataclass(frozen=True)
class Reference:
    root: str  # "input", "results", "execution" or "item"
    step_id: str | None  # for $.results.<step id>
    path: tuple[str | int, ...]  # field names and list indexes below the root (or step)
    text: str

    def __str__(self) -> str:
        return self.text


def parse_reference(text: str) -> Reference:
    """The reference `text` names; MappingError saying what is wrong with it."""
    if not text.startswith("$."):
        raise MappingError(f"{text!r} is not a reference: it must start with '$.'")
    parts = text[2:].split(".")
    path: list[str | int] = []
    for part in parts:
        match = _SEGMENT.fullmatch(part)
        if match is None:
            raise MappingError(f"{text!r}: {part!r} is not a field name (letters, digits, '_' "
                               "and '-', optionally followed by [index])")
        path.append(match.group(1))
        path.extend(int(index) for index in _INDEX.findall(match.group(2)))
    root, rest = path[0], tuple(path[1:])
    if root == "input":
        return Reference("input", None, rest, text)
    if root == "results":
        if not rest or not isinstance(rest[0], str):
            raise MappingError(f"{text!r}: name a step, as $.results.<step id>[.<field>...]")
        return Reference("results", rest[0], rest[1:], text)
    if root == "execution":
        if rest != ("id",):
            raise MappingError(f"{text!r}: only $.execution.id is available")
        return Reference("execution", None, rest, text)
    if root == "item":
        return Reference("item", None, rest, text)
    raise MappingError(f"{text!r}: a reference starts with $.input, $.results.<step id>, "
                       "$.execution.id or (in a fan-out step's input) $.item")


def references(mapping: Any, where: str = "") -> Iterator[tuple[str, str]]:
    """(field path, reference text) of every reference in a mapping, depth first."""
    if isinstance(mapping, str):
        if mapping.startswith("$."):
            yield where, mapping
    elif isinstance(mapping, Mapping):
        for key, value in mapping.items():
            yield from references(value, f"{where}.{key}" if where else str(key))
    elif isinstance(mapping, list):
        for index, value in enumerate(mapping):
            yield from references(value, f"{where}[{index}]")


NO_ITEM: Any = type("NoItem", (), {"__repr__": lambda self: "NO_ITEM"})()


@dataclass(frozen=True)
class Scope:
    """What a mapping is resolved against, when a step runs or an execution completes."""

    execution_id: str
    input: Mapping[str, Any]
    results: Mapping[str, Any]
    # Steps skipped by their condition: references to their results are absent.
    skipped: frozenset[str] = frozenset()
    # A fan-out item's element ($.item); NO_ITEM outside a fan-out's item.
    item: Any = NO_ITEM


def resolve(mapping: Any, scope: Scope) -> Any:
    """The mapping with every reference replaced by its value; MappingError naming the first
    reference whose value is absent."""
    value = _resolve(mapping, scope)
    return None if value is _SKIPPED else value


def _resolve(mapping: Any, scope: Scope) -> Any:
    if isinstance(mapping, str):
        if mapping.startswith("$$."):
            return mapping[1:]
        if mapping.startswith("$."):
            reference = parse_reference(mapping)
            if reference.step_id is not None and reference.step_id in scope.skipped:
                return _SKIPPED
            return _value(reference, scope)
        return mapping
    if isinstance(mapping, Mapping):
        resolved = {key: _resolve(value, scope) for key, value in mapping.items()}
        return {key: value for key, value in resolved.items() if value is not _SKIPPED}
    if isinstance(mapping, list):
        return [None if (value := _resolve(item, scope)) is _SKIPPED else value
                for item in mapping]
    return mapping


def unresolved(mapping: Any, scope: Scope) -> tuple[str, str, str] | None:
    """(field path, reference, why) of the first reference whose value is absent, in the
    order `resolve` meets them; None if every one resolves."""
    for where, text in references(mapping):
        try:
            reference = parse_reference(text)
            if reference.step_id is not None and reference.step_id in scope.skipped:
                continue
            _value(reference, scope)
        except MappingError as error:
            return where, text, str(error)
    return None


def _value(reference: Reference, scope: Scope) -> Any:
    if reference.root == "execution":
        return scope.execution_id
    if reference.root == "item":
        if scope.item is NO_ITEM:
            raise MappingError(f"{reference}: only a fan-out step's input has an item")
        node: Any = scope.item
    elif reference.root == "input":
        node = scope.input
    else:
        assert reference.step_id is not None
        if reference.step_id not in scope.results:
            raise MappingError(f"{reference}: step {reference.step_id!r} has no result (it has "
                               "not succeeded in this execution)")
        node = scope.results[reference.step_id]
    for index, key in enumerate(reference.path):
        node = _child(node, key)
        if node is _ABSENT:
            shown = ".".join(str(k) for k in reference.path[:index + 1])
            raise MappingError(f"{reference}: {shown!r} is absent")
    return node


_ABSENT = object()
_SKIPPED = object()  # a reference to a skipped step's result: left out of its object


def _child(node: Any, key: str | int) -> Any:
    if isinstance(key, int):
        if isinstance(node, Sequence) and not isinstance(node, str) and 0 <= key < len(node):
            return node[key]
        return _ABSENT
    if isinstance(node, Mapping) and key in node:
        return node[key]
    return _ABSENT
