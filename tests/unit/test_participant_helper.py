"""The participant helper a team writes its service with: the contract parsed and typed, work
de-duplicated on the idempotency key with Powertools' idempotency utility, answers shaped for a
Lambda and for HTTP (WSGI)."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from chalicelib.participant import (
    InMemoryPersistence,
    PermanentError,
    Refuse,
    TryAgain,
    lambda_handler,
    wsgi_app,
)
from chalicelib.saga.lifecycle import PERMANENT_ERROR
from chalicelib.steps.contract import ParticipantRequest


def _request(phase: str = "action", attempt: int = 1, **extra: Any) -> dict[str, Any]:
    return {"contract": "saga-participant/1", "execution_id": "ex-1", "saga_id": "trip",
            "saga_version": "1.0.0", "step_id": "flight", "phase": phase, "attempt": attempt,
            "idempotency_key": f"ex-1:flight:{phase}",
            "deadline": datetime(2026, 1, 1, tzinfo=UTC).isoformat(),
            "input": {"route": "LIS-OPO"}, "results": {"car": {"booking_id": "CAR-7"}},
            **extra}


class Airline:
    def __init__(self) -> None:
        self.booked: list[str] = []
        self.cancelled: list[str] = []
        self.refuse = False
        self.flaky = 0

    def book(self, request: ParticipantRequest) -> dict[str, Any]:
        if self.refuse:
            raise Refuse("no seats left")
        if self.flaky:
            self.flaky -= 1
            raise TryAgain("the reservation system is busy")
        self.booked.append(request.input["route"])
        return {"ticket": f"T-{len(self.booked)}", "car": request.results["car"]["booking_id"]}

    def cancel(self, request: ParticipantRequest) -> dict[str, Any]:
        if request.action_result is not None:
            self.cancelled.append(request.action_result["ticket"])
        return {"cancelled": request.action_result is not None}


def test_a_redelivered_attempt_is_answered_again_without_running_again() -> None:
    airline = Airline()
    handler = lambda_handler(airline.book, airline.cancel, persistence=InMemoryPersistence())
    first = handler(_request(attempt=1), None)
    again = handler(_request(attempt=2), None)
    assert first == again == {"ticket": "T-1", "car": "CAR-7"}
    assert airline.booked == ["LIS-OPO"]


def test_the_compensation_gets_the_actions_result_typed() -> None:
    airline = Airline()
    handler = lambda_handler(airline.book, airline.cancel, persistence=InMemoryPersistence())
    booked = handler(_request(), None)
    undone = handler(_request("compensation", action_result=booked,
                              reason={"step_id": "hotel", "type": "PermanentError",
                                      "message": "full"}), None)
    assert undone == {"cancelled": True} and airline.cancelled == ["T-1"]
    # A timed-out booking's compensation is told its outcome is unknown.
    unknown = lambda_handler(airline.book, airline.cancel)(
        _request("compensation", action_result=None), None)
    assert unknown == {"cancelled": False}


def test_a_lambda_refusal_is_a_permanent_error_and_a_passing_fault_runs_again() -> None:
    airline = Airline()
    handler = lambda_handler(airline.book, airline.cancel)
    airline.flaky = 1
    with pytest.raises(TryAgain):
        handler(_request(), None)
    assert handler(_request(attempt=2), None)["ticket"] == "T-1"  # not cached as a failure
    airline.refuse = True
    with pytest.raises(PermanentError, match="no seats left") as refused:
        lambda_handler(airline.book, airline.cancel)(_request(), None)
    assert type(refused.value).__name__ == PERMANENT_ERROR
    with pytest.raises(PermanentError, match="not a saga-participant/1 request"):
        handler({"execution_id": "ex-1"}, None)


def _post(app: Any, body: bytes, method: str = "POST") -> tuple[str, dict[str, Any]]:
    answer: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        answer["status"] = status

    chunks = app({"REQUEST_METHOD": method, "CONTENT_LENGTH": str(len(body)),
                  "wsgi.input": io.BytesIO(body)}, start_response)
    return answer["status"], json.loads(b"".join(chunks))


def test_the_wsgi_app_answers_each_outcome_with_its_status() -> None:
    airline = Airline()
    app = wsgi_app(airline.book, airline.cancel, persistence=InMemoryPersistence())
    assert _post(app, json.dumps(_request()).encode()) == ("200 OK", {"ticket": "T-1",
                                                                       "car": "CAR-7"})
    status, body = _post(app, b"{not json")
    assert status.startswith("400") and "not JSON" in body["error"]
    status, body = _post(app, json.dumps({**_request(), "attempt": 0}).encode())
    assert status.startswith("400") and "attempt" in body["error"]
    airline.refuse = True
    status, body = _post(app, json.dumps(_request("action", step_id="other",
                                                  idempotency_key="ex-1:other:action")).encode())
    assert status == "422 Unprocessable Entity" and body == {"error": "no seats left"}
    airline.refuse, airline.flaky = False, 1
    status, _ = _post(app, json.dumps(_request(idempotency_key="ex-2:flight:action")).encode())
    assert status == "503 Service Unavailable"
    assert _post(app, b"", method="GET")[0].startswith("405")
