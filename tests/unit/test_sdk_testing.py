"""The SDK's pytest plugin (saga_participant.testing) and its API client: `participant_server`
serves a participant on a free port for the test, recording what it was sent; `saga_api` (a
`SagaApi`) stores sagas, executes them and waits for their end, here against a stand-in API
served the same way."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from saga_participant import Refusal, Request
from saga_participant.client import DEFAULT_API, ApiError, SagaApi

Serve = Callable[..., str]


def _request(phase: str = "action", **extra: Any) -> dict[str, Any]:
    return {"contract": "saga-participant/1", "execution_id": "ex-1", "saga_id": "order",
            "saga_version": "1.0.0", "step_id": "reserve", "phase": phase, "attempt": 1,
            "idempotency_key": f"ex-1:reserve:{phase}",
            "deadline": (datetime.now(UTC) + timedelta(minutes=1)).isoformat(),
            "input": {"quantity": 3}, "results": {}, **extra}


def _post(url: str, body: Any) -> tuple[int, Any]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def reserve(request: Request) -> dict[str, Any]:
    if request.input["quantity"] > 5:
        raise Refusal("OutOfStock", "only 5 left", {"available": 5})
    return {"reserved": request.input["quantity"]}


def release(request: Request) -> dict[str, Any]:
    return {"released": (request.action_result or {}).get("reserved")}


def test_a_participant_is_served_on_a_free_port_and_records_its_requests(
        participant_server: Serve) -> None:
    url = participant_server(reserve, release)
    other = participant_server(reserve, release)
    assert url.startswith("http://127.0.0.1:") and url != other
    assert _post(url + "/any/path", _request()) == (200, {"reserved": 3})
    assert _post(url, _request(step_id="big", idempotency_key="ex-1:big:action",
                               input={"quantity": 9})) == (422, {"error": {
        "type": "OutOfStock", "message": "only 5 left", "details": {"available": 5}}})
    assert _post(url, _request("compensation", action_result={"reserved": 3})) == (
        200, {"released": 3})
    assert [r["phase"] for r in url.requests] == ["action", "action", "compensation"]  # type: ignore[attr-defined]
    assert other.requests == []  # type: ignore[attr-defined]


def test_any_wsgi_app_can_be_served(participant_server: Serve) -> None:
    def hello(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "application/json")])
        return [b'{"hello": "world"}']

    assert _post(participant_server(app=hello), {}) == (200, {"hello": "world"})
    with pytest.raises(TypeError, match="action and a compensation"):
        participant_server(reserve)
    with pytest.raises(TypeError, match="not both"):
        participant_server(reserve, release, app=hello)


def test_the_api_comes_from_saga_api(monkeypatch: pytest.MonkeyPatch, saga_api: SagaApi) -> None:
    assert isinstance(saga_api, SagaApi)
    monkeypatch.delenv("SAGA_API", raising=False)
    monkeypatch.delenv("SAGA_API_URL", raising=False)
    assert SagaApi().url == DEFAULT_API == "http://127.0.0.1:8000"
    monkeypatch.setenv("SAGA_API_URL", "http://cli.example:1")
    assert SagaApi().url == "http://cli.example:1"
    monkeypatch.setenv("SAGA_API", "http://127.0.0.1:9000/")
    assert SagaApi().url == "http://127.0.0.1:9000"
    assert SagaApi("http://x:1").url == "http://x:1"


class FakeApi:
    """The orchestrator's API as the client sees it: sagas stored once per version, an
    execution that ends on its third read, whose first final read lags behind the execute."""

    def __init__(self) -> None:
        self.sagas: dict[tuple[str, str], dict[str, Any]] = {}
        self.reads = 0
        self.stuck = False  # the execution never ends
        self.seen: list[tuple[str, str, Any]] = []

    def __call__(self, environ: dict[str, Any],
                 start_response: Callable[..., Any]) -> Iterable[bytes]:
        method, path = environ["REQUEST_METHOD"], environ["PATH_INFO"]
        query = environ.get("QUERY_STRING", "")
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = json.loads(environ["wsgi.input"].read(length)) if length else None
        self.seen.append((method, path, body))
        status, answer = self.answer(method, path, query, body)
        payload = json.dumps(answer).encode()
        start_response(f"{status} X", [("Content-Type", "application/json")])
        return [payload]

    def answer(self, method: str, path: str, query: str, body: Any) -> tuple[int, Any]:
        prefix = "/api/v1/saga"
        if (method, path) == ("POST", f"{prefix}/sagas"):
            key = (body["id"], body["version"])
            if key in self.sagas:
                return 409, {"error": {"code": "conflict", "message": "version exists"}}
            self.sagas[key] = body
            return 201, body
        if method == "GET" and path == f"{prefix}/sagas/order" and query == "version=1.0.0":
            return 200, self.sagas[("order", "1.0.0")]
        if method == "POST" and path == f"{prefix}/sagas/order/execute":
            return 202, {"id": body["execution_id"], "status": "RUNNING",
                         "consistency": {"source": "write_model", "sequence": 2}}
        if method == "GET" and path.startswith(f"{prefix}/executions/"):
            self.reads += 1
            status, sequence = [("RUNNING", 1), ("COMPENSATED", 1), ("COMPENSATED", 3)][
                0 if self.stuck else min(self.reads, 3) - 1]
            return 200, {"id": path.rsplit("/", 1)[1], "status": status,
                         "consistency": {"source": "read_model", "sequence": sequence}}
        return 404, {"error": {"code": "route_not_found", "message": "no such route"}}


def test_the_client_stores_executes_and_waits_for_the_end(participant_server: Serve) -> None:
    fake = FakeApi()
    api = SagaApi(participant_server(app=fake))
    saga = {"id": "order", "version": "1.0.0", "steps": []}
    assert api.create_saga(saga) == saga
    with pytest.raises(ApiError) as conflict:
        api.create_saga(saga)
    assert conflict.value.status == 409 and "version exists" in str(conflict.value)
    assert api.create_saga(saga, exist_ok=True) == saga  # read back
    done = api.run("order", {"card": "4000-0000-0000-0002"}, timeout_s=10)
    # Not the first COMPENSATED read: it was older than the execute's own answer.
    assert done["status"] == "COMPENSATED" and done["consistency"]["sequence"] == 3
    executes = [b for m, p, b in fake.seen if p.endswith("/execute")]
    assert executes[0]["input"] == {"card": "4000-0000-0000-0002"}
    assert len(executes[0]["execution_id"]) == 36  # made by the client: a retry runs once
    with pytest.raises(ApiError) as missing:
        api.call("GET", "/nowhere")
    assert missing.value.status == 404 and missing.value.body["error"]["code"] == \
        "route_not_found"


def test_waiting_gives_up_after_its_timeout(participant_server: Serve) -> None:
    fake = FakeApi()
    fake.stuck = True
    api = SagaApi(participant_server(app=fake))
    with pytest.raises(TimeoutError, match="did not end"):
        api.wait("ex-9", timeout_s=0.3, poll_s=0.05)


def test_an_api_that_is_not_there_says_so() -> None:
    with pytest.raises(ApiError, match="cannot reach the API") as unreachable:
        SagaApi("http://127.0.0.1:9", timeout_s=2).health()
    assert unreachable.value.status == 0
