"""Run by test_sdk_install.py inside a fresh venv with only saga-participant installed (any
Python from 3.9): the SDK imports, answers a refusal through wsgi_app and lambda_handler with
the error protocol's bodies, and writes the committed JSON Schema of the request.

    python check_sdk.py COMMITTED_SCHEMA_JSON
"""

import importlib.metadata
import io
import json
import sys
from datetime import datetime, timedelta, timezone

import saga_participant
from saga_participant import (
    NOTHING_TO_UNDO,
    DeadlinePassed,
    InMemoryPersistence,
    Refusal,
    Request,
    TryAgain,
    lambda_handler,
    wsgi_app,
)
from saga_participant.client import SagaApi
from saga_participant.contract import request_schema

# datetime.UTC is 3.11's: this script runs on 3.9 too.
UTC = timezone.utc  # noqa: UP017


def request(phase="action", **extra):
    deadline = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
    return {"contract": "saga-participant/1", "execution_id": "ex-1", "saga_id": "order",
            "saga_version": "1.0.0", "step_id": "reserve", "phase": phase, "attempt": 1,
            "idempotency_key": "ex-1:reserve:" + phase, "deadline": deadline,
            "input": {"sku": "sku-1", "quantity": 3}, "results": {}, **extra}


def reserve(req: Request) -> dict:
    if req.input["quantity"] > 2:
        raise Refusal("OutOfStock", "only 2 left", {"sku": req.input["sku"], "available": 2})
    return {"reservation_id": "R-1"}


def busy(req: Request) -> dict:
    raise TryAgain("the warehouse is busy", details={"retry_after_s": 1})


def release(req: Request) -> dict:
    return {"released": (req.action_result or {}).get("reservation_id"),
            "because": req.reason.type if req.reason else None}


def post(app, body):
    raw = json.dumps(body).encode()
    seen = {}

    def start_response(status, headers):
        seen["status"] = status

    chunks = app({"REQUEST_METHOD": "POST", "CONTENT_LENGTH": str(len(raw)),
                  "wsgi.input": io.BytesIO(raw)}, start_response)
    return seen["status"], json.loads(b"".join(chunks))


def lambda_failure(handler, event):
    try:
        handler(event, None)
    except Exception as error:  # what the Lambda runtime reports
        return type(error).__name__, str(error)
    raise AssertionError("the handler did not fail")


def main():
    out_of_stock = {"type": "OutOfStock", "message": "only 2 left",
                    "details": {"sku": "sku-1", "available": 2}}
    compact = json.dumps(out_of_stock, separators=(",", ":"), sort_keys=True)

    app = wsgi_app(reserve, release, persistence=InMemoryPersistence())
    assert post(app, request()) == ("422 Unprocessable Entity", {"error": out_of_stock})
    assert post(app, {"hello": "world"})[0] == "400 Bad Request"
    assert post(app, {"hello": "world"})[1]["error"]["type"] == "NotThisContract"
    status, body = post(wsgi_app(busy, release), request())
    assert status == "503 Service Unavailable", status
    assert body == {"error": {"type": "TryAgain", "message": "the warehouse is busy",
                              "details": {"retry_after_s": 1}}}, body
    # A compensation with the fields only a compensation carries, and one a later version adds.
    status, body = post(app, request("compensation", action_result={"reservation_id": "R-1"},
                                     reason={"step_id": "charge", "type": "CardDeclined",
                                             "message": "declined", "later": 1},
                                     action_error=None, future_field=[1]))
    assert (status, body) == ("200 OK", {"released": "R-1", "because": "CardDeclined"}), body

    handler = lambda_handler(reserve, release)
    assert lambda_failure(handler, request()) == ("PermanentError", compact)
    name, message = lambda_failure(lambda_handler(busy, release), request())
    assert name == "TryAgain" and json.loads(message)["details"] == {"retry_after_s": 1}
    late = request(deadline=(datetime.now(UTC) - timedelta(seconds=1)).isoformat())
    name, message = lambda_failure(handler, late)
    assert name == "TryAgain" and json.loads(message)["type"] == "DeadlinePassed", message
    assert issubclass(DeadlinePassed, TryAgain)
    unknown = request("compensation", step_id="other", idempotency_key="ex-1:other:compensation")
    assert handler(unknown, None) == NOTHING_TO_UNDO

    with open(sys.argv[1]) as committed:
        assert request_schema() == json.load(committed), "the request's schema differs"
    assert SagaApi("http://127.0.0.1:8000").url == "http://127.0.0.1:8000"
    plugins = [e.value for e in importlib.metadata.entry_points().get("pytest11", [])] \
        if sys.version_info < (3, 10) else \
        [e.value for e in importlib.metadata.entry_points(group="pytest11")]
    assert "saga_participant.testing" in plugins, plugins
    print(json.dumps({"python": sys.version.split()[0], "sdk": saga_participant.__version__,
                      "file": saga_participant.__file__,
                      "pydantic": importlib.metadata.version("pydantic"),
                      "powertools": importlib.metadata.version("aws-lambda-powertools")}))


if __name__ == "__main__":
    main()
