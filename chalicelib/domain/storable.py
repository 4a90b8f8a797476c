"""What the API accepts must be storable everywhere it goes: the MySQL write model, the outbox
(whose envelopes Kafka carries) and the MongoDB read model. One request that one of them
refuses would otherwise stall the event pipeline for everyone, so the door checks it. Pure.

- keys: BSON refuses a NUL byte in a key, and a key starting with '$' or holding '.' is an
  operator or a path to MongoDB's update language;
- strings: every one must encode to UTF-8 (JSON allows lone surrogates, MySQL and Kafka do not);
- numbers: NaN and the infinities are not JSON (Python writes them, MySQL refuses them);
- nesting: MariaDB's JSON columns refuse documents nested deeper than 32 levels, and a step's
  result, like an execution's input, is nested inside the outbox envelope of its event;
- sizes: measured as the outbox encodes an event (JSON with non-ASCII escaped, so one 2-byte
  character can take 6 or 12 bytes), plus the envelope around it, against the Kafka
  producer's max_request_size.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from chalicelib.domain.errors import BadRequest, ErrorKind, SagaError

# kafka-python's default max_request_size; the relay's producer uses the same figure.
KAFKA_MAX_REQUEST_BYTES = 1024 * 1024
# Room for the envelope (id, type, time, subject, key, sequence), the step list and the
# record batch's own framing around the data an execution carries.
ENVELOPE_OVERHEAD_BYTES = 16 * 1024
_MAX_REPORTED_PATH = 120


class NotStorable(BadRequest):
    kind = ErrorKind.NOT_STORABLE


class TooLarge(SagaError):
    kind = ErrorKind.TOO_LARGE


def event_bytes(value: Any) -> int:
    """The bytes `value` takes inside an outbox envelope."""
    return len(json.dumps(value).encode())


# MariaDB (before 12.2) refuses a JSON document nested deeper than 32 levels by its count,
# which is 31 by nesting_depth's ({} is 1); a step's result sits two levels down in its
# event's envelope ({"data": {"result": ...}}), which the outbox stores as one JSON column.
# tests/integration/test_storable_mysql.py checks both boundaries on the real server.
MYSQL_MAX_JSON_DEPTH = 31
RESULT_ENVELOPE_DEPTH = 2
MAX_RESULT_DEPTH = MYSQL_MAX_JSON_DEPTH - RESULT_ENVELOPE_DEPTH
# A request's parts sit as deep in their event: an execution's input in
# saga.execution.started's {"data": {"input": ...}} (and top level in executions.input).
REQUEST_ENVELOPE_DEPTH = 2
MAX_REQUEST_DEPTH = MYSQL_MAX_JSON_DEPTH - REQUEST_ENVELOPE_DEPTH


def nesting_depth(value: Any, stop_above: int) -> int:
    """How deeply objects and arrays nest (a scalar is 0, {} is 1), counting no further than
    one past stop_above."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, Mapping) else node \
            if isinstance(node, list | tuple) else None
        if children is None:
            continue
        deepest = max(deepest, depth)
        if deepest > stop_above:
            return deepest
        stack.extend((child, depth + 1) for child in children)
    return deepest


# A step's input as an attempt was sent it sits where a result does ({"data": {"input": ...}}
# of its events); an approval's, as its wait keeps it, four levels down
# ({"data": {"step": {"waiting": {"input": ...}}}}).
MAX_ATTEMPT_INPUT_DEPTH = MAX_RESULT_DEPTH
WAIT_ENVELOPE_DEPTH = 4
MAX_WAIT_INPUT_DEPTH = MYSQL_MAX_JSON_DEPTH - WAIT_ENVELOPE_DEPTH


def kept_input(step_input: Mapping[str, Any], *, max_bytes: int,
               max_depth: int) -> dict[str, Any] | None:
    """A step's resolved input as a record keeps it, or None when it is over `max_bytes` once
    encoded (saga.max_result_bytes, a result's own bound) or nested deeper than its place
    allows: a mapping that copies the input or results several times never makes an event
    too large to publish, nor a JSON column too deep to store."""
    size = len(json.dumps(step_input, separators=(",", ":"), ensure_ascii=False).encode())
    if size > max_bytes or nesting_depth(step_input, max_depth) > max_depth:
        return None
    return dict(step_input)


def check_result(result: Any, *, max_bytes: int, max_depth: int = MAX_RESULT_DEPTH) -> None:
    """NotStorable saying why a participant's answer cannot be recorded as a step's result:
    not a JSON object, NaN or an infinity, nested too deep, a key or string no store takes,
    or larger than saga.max_result_bytes."""
    if not isinstance(result, Mapping):
        raise NotStorable(f"the result must be a JSON object, not {json_type(result)}")
    try:
        size = len(json.dumps(result, allow_nan=False).encode())
    except ValueError:
        raise NotStorable("the result holds NaN or Infinity, which JSON does not allow") \
            from None
    except TypeError as error:
        raise NotStorable(f"the result is not JSON: {error}") from None
    if size > max_bytes:
        raise NotStorable(f"the result is {size} bytes; the limit is {max_bytes} "
                          "(config saga.max_result_bytes)")
    depth = nesting_depth(result, max_depth)
    if depth > max_depth:
        raise NotStorable(f"the result nests {depth} or more levels deep; the limit is "
                          f"{max_depth}")
    check_keys_and_strings(result, "result")


def json_type(value: Any) -> str:
    """A JSON value's kind as a message names it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "an array"
    return type(value).__name__


def check_keys_and_strings(value: Any, where: str) -> None:
    """NotStorable naming the first key or string no store would take."""
    stack: list[tuple[str, Any]] = [(where, value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, Mapping):
            for key, child in item.items():
                key = str(key)
                shown = f"{path}.{key!r}"[:_MAX_REPORTED_PATH]
                if problem := key_problem(key):
                    raise NotStorable(f"{shown}: {problem}")
                _check_string(key, shown)
                stack.append((f"{path}.{key}", child))
        elif isinstance(item, list | tuple):
            stack.extend((f"{path}[{i}]", child) for i, child in enumerate(item))
        elif isinstance(item, str):
            _check_string(item, path[:_MAX_REPORTED_PATH])


def key_problem(key: str) -> str | None:
    """Why MongoDB would refuse `key` in a document it stores, or None."""
    if "\x00" in key:
        return "a key must not contain a NUL character"
    if key.startswith("$") or "." in key:
        return "a key must not start with '$' or contain '.'"
    return None


def _check_string(text: str, path: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise NotStorable(f"{path}: text must be valid Unicode (no lone surrogates)") from None


def check_event_size(parts: Mapping[str, Any], *,
                     max_event_bytes: int = KAFKA_MAX_REQUEST_BYTES) -> None:
    """TooLarge when what an event will carry does not fit in one Kafka request."""
    size = sum(event_bytes(value) for value in parts.values())
    limit = max_event_bytes - ENVELOPE_OVERHEAD_BYTES
    if size > limit:
        names = " and ".join(parts)
        raise TooLarge(f"{names} take {size} bytes once encoded as an event (non-ASCII text "
                       f"counts up to 12 bytes a character); the limit is {limit}",
                       size=size, limit=limit)


def check_depth(value: Any, name: str, max_depth: int = MAX_REQUEST_DEPTH) -> None:
    """NotStorable when `value` nests deeper than MySQL would take it inside its event."""
    if nesting_depth(value, max_depth) > max_depth:
        raise NotStorable(
            f"{name} nests deeper than {max_depth} levels, the limit ({{}} counts as one): "
            f"MySQL's JSON columns take {MYSQL_MAX_JSON_DEPTH}, and the event that carries "
            f"it adds {MYSQL_MAX_JSON_DEPTH - max_depth}", limit=max_depth)


def check_storable(parts: Mapping[str, Any], *,
                   max_event_bytes: int = KAFKA_MAX_REQUEST_BYTES) -> None:
    """Every check, for the named parts of one request (e.g. input and faults), each of
    which its event carries in its data."""
    for name, value in parts.items():
        check_depth(value, name)
        check_keys_and_strings(value, name)
    check_event_size(parts, max_event_bytes=max_event_bytes)
