"""A participant's typed error, read from an HTTP answer's body or a failed Lambda's
errorMessage, and recorded as the step's error under the participant's own type."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from chalicelib.adapters.participants.errors import ParticipantError, parse_error
from chalicelib.adapters.participants.lambdas import lambda_participant
from chalicelib.domain.step_context import PermanentError, RetryableError
from tests.support.step_world import PARTICIPANT, build_world
from tests.unit.test_http_participant import _ctx


@pytest.mark.parametrize(("text", "expected"), [
    ('{"error": {"type": "OutOfStock", "message": "2 left", "details": {"left": 2}}}',
     ParticipantError("OutOfStock", "2 left", {"left": 2})),
    ('{"type": "CardDeclined", "message": "no"}', ParticipantError("CardDeclined", "no")),
    ('{"error": {"type": "X"}}', ParticipantError("X", "")),
])
def test_a_typed_error_is_read_from_the_contracts_shape(text: str,
                                                        expected: ParticipantError) -> None:
    assert parse_error(text) == expected


@pytest.mark.parametrize("text", [
    "we do not ship to XX", '{"error": "we do not ship to XX"}', '{"error": {"type": 3}}',
    '{"error": {"type": "has spaces"}}', '{"error": {"type": "' + "T" * 101 + '"}}', "[1]",
    '{"error": {"type": "Deep", "details": ' + '{"a":' * 40 + "1" + "}" * 40 + "}}",
])
def test_anything_else_is_not_a_typed_error_or_loses_only_what_cannot_be_kept(
        text: str) -> None:
    parsed = parse_error(text)
    assert parsed is None or (parsed.type == "Deep" and parsed.details is None)


class _Lambda:
    def __init__(self, error_type: str, message: str) -> None:
        self.answer = {"errorType": error_type, "errorMessage": message}

    def invoke(self, **_: Any) -> dict[str, Any]:
        return {"FunctionError": "Unhandled",
                "Payload": io.BytesIO(json.dumps(self.answer).encode())}


@pytest.mark.parametrize(("error_type", "raised"), [("PermanentError", PermanentError),
                                                    ("TryAgain", RetryableError)])
def test_a_lambda_participants_typed_error_travels_in_its_error_message(
        error_type: str, raised: type[Exception]) -> None:
    message = json.dumps({"type": "OutOfStock", "message": "2 left", "details": {"left": 2}})
    client = _Lambda(error_type, message)
    with pytest.raises(raised) as caught:
        lambda_participant("stock", lambda: client)(_ctx(5.0))
    assert caught.value.error_type == "OutOfStock"  # type: ignore[attr-defined]
    assert caught.value.details == {"left": 2}  # type: ignore[attr-defined]
    assert str(caught.value) == f"stock: {error_type}: 2 left"


def test_the_steps_error_is_recorded_under_the_participants_type() -> None:
    world = build_world({
        "id": "typed", "name": "Typed", "description": "a refused step", "version": "1.0.0",
        "steps": [{"id": "ship", "name": "Ship", "description": "ships", "order": 1,
                   "action": PARTICIPANT, "compensation": PARTICIPANT, "max_retries": 3,
                   "timeout": "30s"}]})

    def refuse(_: Any) -> None:
        raise PermanentError("http://127.0.0.1:9/pay answered 422: we do not ship to XX",
                             error_type="OutOfStock", details={"country": "XX"})

    world.actions.script[PARTICIPANT] = refuse
    with pytest.raises(PermanentError):  # the machines still see PermanentError: not retried
        world.deliver("ship")
    step = world.step("ship")
    assert step.error == {"type": "OutOfStock", "details": {"country": "XX"},
                          "message": "http://127.0.0.1:9/pay answered 422: we do not ship to XX"}
    assert [(a.error_type, a.outcome) for a in step.attempts] == [("OutOfStock", "failed")]
    failed = world.events_of("saga.step.failed")[0]["data"]
    assert failed["error"]["type"] == "OutOfStock"
    assert failed["execution_error"]["type"] == "OutOfStock"
