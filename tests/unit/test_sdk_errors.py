"""The participant SDK's typed errors and their wire forms: a refusal answers HTTP 422 and fails
a Lambda as `PermanentError`, a passing fault answers 503 and fails it as `TryAgain`, each with
`{"type", "message", "details"}` (the Lambda's errorMessage as compact JSON, keys sorted); a
request that is not the contract answers 400 `NotThisContract`."""

from __future__ import annotations

import copy
import io
import json
import pickle
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from saga_participant import (
    TRY_AGAIN,
    DeadlinePassed,
    LambdaTryAgain,
    NotThisContract,
    ParticipantError,
    PermanentError,
    Refusal,
    Refuse,
    Request,
    TryAgain,
    handle,
    lambda_handler,
    wsgi_app,
)
from saga_participant import Participant as SdkParticipant

from chalicelib.domain.lifecycle import NEVER_RETRIED, PERMANENT_ERROR


def _request(**extra: Any) -> dict[str, Any]:
    deadline = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
    return {"contract": "saga-participant/1", "execution_id": "ex-1", "saga_id": "order",
            "saga_version": "1.0.0", "step_id": "reserve", "phase": "action", "attempt": 1,
            "idempotency_key": "ex-1:reserve:action", "deadline": deadline,
            "input": {"sku": "sku-1", "quantity": 3}, "results": {}, **extra}


def _raising(error: Exception) -> Any:
    def work(request: Request) -> dict[str, Any]:
        raise error

    return work


def _wsgi(error: Exception, body: Any = None) -> tuple[str, dict[str, str], Any]:
    app = wsgi_app(_raising(error), _raising(error))
    raw = json.dumps(_request() if body is None else body).encode()
    seen: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        seen["status"], seen["headers"] = status, dict(headers)

    chunks = app({"REQUEST_METHOD": "POST", "CONTENT_LENGTH": str(len(raw)),
                  "wsgi.input": io.BytesIO(raw)}, start_response)
    return seen["status"], seen["headers"], json.loads(b"".join(chunks))


def _lambda(error: Exception, event: Any = None) -> Exception:
    handler = lambda_handler(_raising(error), _raising(error))
    with pytest.raises(Exception) as failed:
        handler(_request() if event is None else event, None)
    return failed.value


OUT_OF_STOCK = Refusal("OutOfStock", "only 2 left", {"sku": "sku-1", "available": 2})
WIRE = {"type": "OutOfStock", "message": "only 2 left",
        "details": {"sku": "sku-1", "available": 2}}


def test_a_refusal_carries_a_type_a_message_and_details() -> None:
    assert (OUT_OF_STOCK.type, OUT_OF_STOCK.message, OUT_OF_STOCK.details) == (
        "OutOfStock", "only 2 left", {"sku": "sku-1", "available": 2})
    assert OUT_OF_STOCK.to_dict() == WIRE
    assert str(OUT_OF_STOCK) == "only 2 left" and str(Refusal("CardDeclined")) == "CardDeclined"
    assert Refusal("CardDeclined").to_dict() == {"type": "CardDeclined", "message": "",
                                                 "details": {}}
    assert "OutOfStock" in repr(OUT_OF_STOCK)


def test_try_again_takes_its_message_first_and_defaults_its_type() -> None:
    busy = TryAgain("the warehouse is busy", details={"retry_after_s": 2})
    assert busy.to_dict() == {"type": "TryAgain", "message": "the warehouse is busy",
                              "details": {"retry_after_s": 2}}
    assert TryAgain().to_dict() == {"type": "TryAgain", "message": "", "details": {}}
    assert TryAgain("locked", "RowLocked").type == "RowLocked"
    late = DeadlinePassed("too late")
    assert isinstance(late, TryAgain) and late.type == "DeadlinePassed"
    assert not isinstance(late, Refusal) and not isinstance(busy, Refusal)


def test_refuse_is_the_old_name_message_first() -> None:
    old = Refuse("no seats left")
    assert isinstance(old, Refusal) and old.to_dict() == {
        "type": "Refused", "message": "no seats left", "details": {}}
    assert Refuse("full", "FlightFull", {"flight": "TP123"}).type == "FlightFull"


def test_not_this_contract_is_a_refusal_and_a_value_error() -> None:
    wrong = NotThisContract("not a saga-participant/1 request")
    assert isinstance(wrong, Refusal) and isinstance(wrong, ValueError)
    assert wrong.type == "NotThisContract"


@pytest.mark.parametrize("bad", ["", "Out of stock", "1Up", "x" * 101, None, 7])
def test_a_type_is_a_name(bad: Any) -> None:
    with pytest.raises(ValueError, match="is a name"):
        Refusal(bad)
    with pytest.raises(ValueError, match="is a name"):
        TryAgain("m", bad)


def test_details_are_a_json_object() -> None:
    when = datetime(2026, 1, 2, tzinfo=UTC)
    sent = Refusal("Over", "too much", {"limit": Decimal("10.50"), "at": when, "n": [1, None]})
    assert sent.details == {"limit": "10.50", "at": str(when), "n": [1, None]}
    with pytest.raises(TypeError, match="mapping"):
        Refusal("Over", "too much", ["not", "an", "object"])  # type: ignore[arg-type]


def test_errors_survive_pickling_and_copying() -> None:
    for error in (OUT_OF_STOCK, TryAgain("busy", "Busy", {"a": 1}), Refuse("full"),
                  DeadlinePassed("late"), NotThisContract("nope", {"field": "x"}),
                  PermanentError.of(OUT_OF_STOCK), LambdaTryAgain.of(TryAgain("busy"))):
        for again in (pickle.loads(pickle.dumps(error)), copy.copy(error)):
            assert type(again) is type(error) and again.to_dict() == error.to_dict()


def test_the_lambda_forms_are_named_for_lambda_and_carry_json() -> None:
    assert PermanentError.__name__ == PERMANENT_ERROR == "PermanentError"
    assert LambdaTryAgain.__name__ == TRY_AGAIN == "TryAgain"
    # The orchestrator never retries PermanentError, and retries TryAgain.
    assert PERMANENT_ERROR in NEVER_RETRIED and TRY_AGAIN not in NEVER_RETRIED
    wire = PermanentError.of(OUT_OF_STOCK)
    assert isinstance(wire, Refusal) and wire.to_dict() == WIRE
    assert str(wire) == ('{"details":{"available":2,"sku":"sku-1"},"message":"only 2 left",'
                         '"type":"OutOfStock"}')
    retry = LambdaTryAgain.of(DeadlinePassed("late"))
    assert isinstance(retry, TryAgain) and not isinstance(retry, DeadlinePassed)
    assert str(retry) == '{"details":{},"message":"late","type":"DeadlinePassed"}'


def test_a_refusal_answers_422_over_http_and_permanent_error_on_lambda() -> None:
    status, headers, body = _wsgi(OUT_OF_STOCK)
    assert status == "422 Unprocessable Entity" and headers["Content-Type"] == "application/json"
    assert body == {"error": WIRE}
    failed = _lambda(OUT_OF_STOCK)
    assert type(failed).__name__ == "PermanentError" and json.loads(str(failed)) == WIRE


@pytest.mark.parametrize("error", [TryAgain("the warehouse is busy", details={"queue": 40}),
                                   TryAgain("locked", "RowLocked"), DeadlinePassed("late")],
                         ids=["try-again", "typed", "deadline"])
def test_a_passing_fault_answers_503_over_http_and_try_again_on_lambda(
        error: TryAgain) -> None:
    status, _, body = _wsgi(error)
    assert status == "503 Service Unavailable" and body == {"error": error.to_dict()}
    failed = _lambda(error)
    assert type(failed).__name__ == "TryAgain" and json.loads(str(failed)) == error.to_dict()
    assert str(failed) == json.dumps(error.to_dict(), separators=(",", ":"), sort_keys=True)


def test_a_request_that_is_not_the_contract_answers_400_or_a_permanent_error() -> None:
    status, _, body = _wsgi(OUT_OF_STOCK, body={"hello": "world"})
    assert status == "400 Bad Request" and body == {"error": {
        "type": "NotThisContract", "message": "not a saga-participant/1 request",
        "details": {}}}
    status, _, body = _wsgi(OUT_OF_STOCK, body={**_request(), "phase": "undo"})
    assert status.startswith("400") and body["error"]["details"] == {"field": "phase"}
    failed = _lambda(OUT_OF_STOCK, event={"hello": "world"})
    assert type(failed).__name__ == "PermanentError"
    assert json.loads(str(failed))["type"] == "NotThisContract"


def test_any_other_exception_is_raised_as_itself_retried() -> None:
    # A bug is not a refusal: the WSGI server answers 500, the Lambda fails with its own name.
    with pytest.raises(KeyError):
        handle(SdkParticipant(_raising(KeyError("sku")), _raising(KeyError("sku"))),
               json.dumps(_request()))
    failed = _lambda(ValueError("a bug"))
    assert type(failed) is ValueError


def test_a_participant_error_is_the_base_of_both() -> None:
    assert issubclass(Refusal, ParticipantError) and issubclass(TryAgain, ParticipantError)
    assert not issubclass(Refusal, TryAgain) and not issubclass(TryAgain, Refusal)
