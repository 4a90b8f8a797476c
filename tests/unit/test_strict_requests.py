"""Strict request parsing: no coercion, no unknown fields, no duplicate keys, participant
references and faults checked before anything is stored or run."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from chalicelib.adapters.cursors import decode_time_cursor, encode_cursor
from chalicelib.config import load_settings
from chalicelib.domain.action_refs import reference_problem
from chalicelib.domain.errors import BadRequest
from chalicelib.domain.models import StoredSaga
from chalicelib.domain.requests import CompensateRequest, ExecuteRequest, parse_request
from chalicelib.domain.validation import DefinitionInvalid, ValidationPolicy, check_definition
from chalicelib.http.api import _BodyError, json_body, query_params
from chalicelib.usecases.definitions import page_size
from chalicelib.usecases.executions import ExecutionPolicy, ExecutionService
from chalicelib.usecases.ports import Actor

SEED = json.loads((Path(__file__).parents[1] / "fixtures" / "payment-saga.json").read_text())
POLICY = ValidationPolicy.from_settings(load_settings(environ={}).saga)
ACTOR = Actor(name="test", request_id=None)


def _rules(step_field: str, value: Any) -> list[tuple[str, str]]:
    payload = copy.deepcopy(SEED)
    payload["steps"][0][step_field] = value
    try:
        check_definition(payload, POLICY)
    except DefinitionInvalid as invalid:
        return [(v.field, v.rule) for v in invalid.violations]
    return []


@pytest.mark.parametrize(("field", "value"), [
    ("order", True), ("order", "1"), ("order", 1.0), ("max_retries", "3"),
    ("max_retries", False), ("active", "false"), ("active", 0), ("timeout", 30),
    ("id", 7),
])
def test_step_values_of_the_wrong_json_type_are_not_coerced(field: str, value: Any) -> None:
    assert (f"steps[0].{field}", "type") in _rules(field, value)


def test_saga_level_booleans_are_strict_too() -> None:
    with pytest.raises(DefinitionInvalid) as refused:
        check_definition({**SEED, "active": "false"}, POLICY)
    assert [(v.field, v.rule) for v in refused.value.violations] == [("active", "type")]


@pytest.mark.parametrize("action", [
    "http://payments.example.com/charge", "lambda:../../x", "lambda:my function",
    "lambda:arn:aws:lambda:us-east-1:1:function:f", "https://user:pw@example.com/x",
    "https:///no-host", "lambda:" + "f" * 65,
])
def test_unsafe_or_malformed_participant_references_are_refused(action: str) -> None:
    assert reference_problem(action) is not None
    assert ("steps[0].action", "participant") in _rules("action", action)


@pytest.mark.parametrize("action", [
    "https://payments.example.com/charge", "http://127.0.0.1:9000/x", "http://localhost/x",
    "lambda:my-function", "lambda:my_function:live", "lambda:123456789012:function:f",
    "lambda:arn:aws:lambda:us-east-1:123456789012:function:f:$LATEST", "validate_payment",
])
def test_callable_references_and_built_in_names_pass(action: str) -> None:
    assert reference_problem(action) is None


class _Request:
    def __init__(self, raw: bytes, query: dict[str, str] | None = None) -> None:
        self.raw_body = raw
        self.query_params = query


@pytest.mark.parametrize("raw", [
    b'{"id": "a", "id": "b"}', b'{"steps": [{"order": 1, "order": 2}]}',
    b'{"input": {"amount": 1, "amount": 1}}',
])
def test_duplicate_keys_anywhere_in_a_body_are_refused(raw: bytes) -> None:
    with pytest.raises(_BodyError, match="more than once"):
        json_body(_Request(raw))  # type: ignore[arg-type]


def test_unknown_query_parameters_are_named() -> None:
    assert query_params(_Request(b"", {"limit": "2"}), frozenset({"limit"})) == {  # type: ignore[arg-type]
        "limit": "2"}
    with pytest.raises(BadRequest, match="pgae"):
        query_params(_Request(b"", {"pgae": "2"}), frozenset({"limit"}))  # type: ignore[arg-type]


def test_a_query_parameter_given_twice_is_refused_not_picked() -> None:
    from chalice.app import MultiDict

    once = MultiDict({"limit": ["2"], "type": ["a"]})
    assert query_params(_Request(b"", once), frozenset({"limit", "type"})) == {  # type: ignore[arg-type]
        "limit": "2", "type": "a"}
    twice = MultiDict({"limit": ["2", "50"], "type": ["a"]})
    with pytest.raises(BadRequest, match="more than once: limit"):
        query_params(_Request(b"", twice), frozenset({"limit", "type"}))  # type: ignore[arg-type]


@pytest.mark.parametrize("raw", ["²", "\u0661", "0", "101", "1.0", " 1", "-1", "1" * 30])
def test_a_page_size_is_ascii_digits_in_range(raw: str) -> None:
    with pytest.raises(BadRequest, match="whole number"):
        page_size(raw)


@pytest.mark.parametrize("after", [
    "0001-01-01T00:00:00+01:00|x", "9999-12-31T23:59:59-01:00|x", "2026-01-01T00:00:00|x",
    "garbage|x", "2026-01-01T00:00:00+00:00", "2026-01-01T00:00:00+00:00|",
])
def test_a_time_cursor_that_cannot_be_one_of_ours_is_a_value_error(after: str) -> None:
    with pytest.raises(ValueError, match="cursor"):
        decode_time_cursor(encode_cursor(after))


def test_a_time_cursor_round_trips_in_utc() -> None:
    at = datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC)
    assert decode_time_cursor(encode_cursor(f"{at.isoformat()}|e1")) == (at, "e1")


@pytest.mark.parametrize(("model", "body", "says"), [
    (CompensateRequest, {"executionId": "e1"}, "unknown field 'executionId'"),
    (CompensateRequest, ["x"], "JSON object"),
    (CompensateRequest, {"execution_id": 5}, "execution_id"),
    (ExecuteRequest, {"input": {}, "faults": [], "extra": 1}, "unknown field 'extra'"),
    (ExecuteRequest, {"input": []}, "input"),
    (ExecuteRequest, {"faults": [{"step_id": "a", "delay": "garbage"}]}, "invalid duration"),
    (ExecuteRequest, {"faults": [{"step_id": "a", "delay": "-5s"}]}, "invalid duration"),
    (ExecuteRequest, {"faults": [{"step_id": "a", "delay": 5}]}, "delay"),
    (ExecuteRequest, {"faults": [{"delay": "1s"}]}, "step_id"),
    (ExecuteRequest, {"faults": [{"step_id": "a", "phase": "later"}]}, "phase"),
    (ExecuteRequest, {"faults": [{"step_id": "a", "times": "2"}]}, "times"),
    (ExecuteRequest, {"faults": [{"step_id": "a", "permanent": 1}]}, "permanent"),
    (ExecuteRequest, {"faults": "all"}, "faults"),
])
def test_request_bodies_are_strict(model: Any, body: Any, says: str) -> None:
    with pytest.raises(BadRequest, match=says) as refused:
        parse_request(model, body, "{...}")
    assert "Traceback" not in refused.value.message and "/" not in refused.value.message


class _Definitions:
    def __init__(self, saga: StoredSaga | None) -> None:
        self.saga = saga

    def get(self, saga_id: str, version: str | None = None) -> StoredSaga | None:
        return self.saga

    def get_revision(self, saga_id: str, revision: int) -> StoredSaga | None:
        return None


def _stored() -> StoredSaga:
    now = datetime.now(UTC)
    return StoredSaga(id=SEED["id"], name=SEED["name"], description=SEED["description"],
                      version=SEED["version"], revision=1, steps=SEED["steps"], active=True,
                      created_at=now, updated_at=now, version_created_at=now)


def _service(saga: StoredSaga | None, max_input: int = 256 * 1024) -> ExecutionService:
    # Every check under test happens before any store or Step Functions is touched.
    return ExecutionService(_Definitions(saga), None, None,  # type: ignore[arg-type]
                            ExecutionPolicy(faults_enabled=True, max_input_bytes=max_input),
                            None)  # type: ignore[arg-type]


@pytest.mark.parametrize("fault", [{"step_id": "no-such-step"}, {"step_id": ""}])
def test_a_fault_must_name_a_step_of_the_saga(fault: dict[str, Any]) -> None:
    with pytest.raises(BadRequest, match="step_id"):
        _service(_stored()).execute(
            SEED["id"], parse_request(ExecuteRequest, {"faults": [fault]}), ACTOR)


def test_faults_count_towards_the_input_limit() -> None:
    step = SEED["steps"][0]["id"]
    faults = [{"step_id": step, "error": "E" + "x" * 90} for _ in range(20)]
    with pytest.raises(BadRequest, match="the limit is 1000"):
        _service(_stored(), max_input=1000).execute(
            SEED["id"], parse_request(ExecuteRequest, {"faults": faults}), ACTOR)


def test_compensating_a_saga_that_does_not_exist_is_not_found() -> None:
    from chalicelib.domain.errors import NotFound
    with pytest.raises(NotFound):
        _service(None).compensate("gone", None, ACTOR)
