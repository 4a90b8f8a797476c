"""Limits: inputs beyond Step Functions' 256 KB pass by reference, and what is over a limit
is refused with a clear 4xx that leaves nothing behind. CORS headers follow the config."""

from __future__ import annotations

import copy
import json
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from chalicelib.adapters import aws
from chalicelib.config import Settings
from chalicelib.domain.storable import MAX_REQUEST_DEPTH
from tests.e2e.conftest import Api, new_customer
from tests.support.served import served

SEED = json.loads((Path(__file__).parents[1] / "fixtures" / "payment-saga.json").read_text())


def _saga(api: Api) -> str:
    definition = copy.deepcopy(SEED)
    definition["id"] = f"limits-{uuid.uuid4().hex[:10]}"
    api.create_saga(definition)
    return str(definition["id"])


def _raw(api: Api, method: str, path: str, body: bytes) -> tuple[int, dict[str, Any]]:
    response = api.client.http.request(method, f"/api/v1/saga{path}", body=body,
                                       headers={"Content-Type": "application/json"})
    return response.status_code, json.loads(response.body)


def test_an_input_over_256_kb_runs_by_reference(api: Api, settings_e2e: Settings,
                                               demo: Callable[[], dict[str, Any]]) -> None:
    saga_id, customer = _saga(api), new_customer()
    note = "x" * (300 * 1024)  # over Step Functions' 256 KB payload cap
    started = api.execute(saga_id, input={"customer_id": customer, "amount": "10.00",
                                          "currency": "EUR", "email": "a@example.com",
                                          "note": note})
    execution = api.wait(started["id"], timeout_s=90, after=started)
    assert execution["status"] == "COMPLETED", [
        (s["step_id"], s["status"], s["attempts"][-1:] if s["attempts"] else None)
        for s in execution["steps"]]
    assert execution["input"]["note"] == note
    run = aws.client("stepfunctions", settings_e2e.aws).describe_execution(
        executionArn=execution["sfn_execution_arn"])
    assert len(run["input"]) < 1024  # the machine carries the execution id, not the input


def test_an_input_over_the_limit_is_refused_and_starts_nothing(
        api: Api, settings_e2e: Settings) -> None:
    saga_id = _saga(api)
    too_big = "y" * (settings_e2e.limits.max_input_bytes + 1)
    status, error = api.call("POST", f"/sagas/{saga_id}/execute", {"input": {"n": too_big}})
    assert status == 400 and "the limit is" in error["error"]["message"]
    assert api.call("GET", f"/executions?saga_id={saga_id}")[1]["items"] == []


def test_a_body_over_the_size_limit_is_413(api: Api, settings_e2e: Settings) -> None:
    body = json.dumps({"id": "z" * settings_e2e.limits.max_body_bytes}).encode()
    status, error = _raw(api, "POST", "/sagas", body)
    assert status == 413 and error["error"]["code"] == "payload_too_large"


def test_a_body_nested_too_deeply_is_refused(api: Api, settings_e2e: Settings) -> None:
    depth = settings_e2e.limits.max_json_depth + 1
    status, error = _raw(api, "POST", "/sagas", ("[" * depth + "]" * depth).encode())
    assert status == 400 and "nests deeper than" in error["error"]["message"]
    ok_depth = settings_e2e.limits.max_json_depth
    status, error = _raw(api, "POST", "/sagas", ("[" * ok_depth + "]" * ok_depth).encode())
    assert status == 400 and "nests deeper" not in error["error"]["message"]  # other reasons


def test_too_many_steps_and_unsafe_ids_are_violations(api: Api,
                                                      settings_e2e: Settings) -> None:
    definition = copy.deepcopy(SEED)
    definition["id"] = "bad id/../x"
    template = definition["steps"][0]
    count = settings_e2e.saga.max_steps_per_saga + 1
    definition["steps"] = [{**template, "id": f"s{i}", "order": i + 1} for i in range(count)]
    status, error = api.call("POST", "/sagas", definition)
    assert status == 400
    fields = {(v["field"], v["rule"]) for v in error["error"]["violations"]}
    assert ("id", "pattern") in fields or any(f == "id" for f, _ in fields), fields
    assert any(f == "steps" for f, _ in fields), fields


def test_cors_headers_come_from_the_config(deployed: None) -> None:
    origin = "https://console.example.com"
    with served({"SAGA__LIMITS__CORS__ALLOW_ORIGIN": origin,
                 "SAGA__LIMITS__RATE_LIMIT_REQUESTS": "0"}) as api:
        preflight = urllib.request.Request(
            f"{api.base}/api/v1/saga/sagas", method="OPTIONS",
            headers={"Origin": origin, "Access-Control-Request-Method": "POST"})
        with urllib.request.urlopen(preflight, timeout=30) as response:
            assert response.headers["Access-Control-Allow-Origin"] == origin
            assert "POST" in response.headers["Access-Control-Allow-Methods"]
        with urllib.request.urlopen(f"{api.base}/api/v1/saga/sagas?limit=1",
                                    timeout=30) as response:
            assert response.headers["Access-Control-Allow-Origin"] == origin
    with served({"SAGA__LIMITS__RATE_LIMIT_REQUESTS": "0"}) as api, urllib.request.urlopen(
            f"{api.base}/api/v1/saga/sagas?limit=1", timeout=30) as response:
        assert response.headers.get("Access-Control-Allow-Origin") is None


def test_input_no_store_could_hold_is_refused_and_starts_nothing(api: Api) -> None:
    saga_id = _saga(api)
    for bad in ({"a\u0000b": 1}, {"$set": {"x": 1}}, {"a.b": 1}):
        status, error = api.call("POST", f"/sagas/{saga_id}/execute", {"input": bad})
        assert status == 400 and error["error"]["code"] == "not_storable", error
        assert "key" in error["error"]["message"]
    assert api.call("GET", f"/executions?saga_id={saga_id}")[1]["items"] == []


def _nested(depth: int) -> dict[str, Any]:
    """An object `depth` levels deep ({} is one)."""
    value: dict[str, Any] = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


def test_an_input_of_the_largest_depth_runs_and_one_level_more_is_400(
        api: Api, demo: Callable[[], dict[str, Any]]) -> None:
    """30 and 31 levels (under the body's 32) were 503 "try again": MariaDB refused the
    execution's event. The deepest input accepted is stored everywhere it goes: MySQL, the
    outbox, Kafka, and the read model it is then served from."""
    saga_id, customer = _saga(api), new_customer()
    fields = {"customer_id": customer, "amount": "10.00", "currency": "EUR",
              "email": "a@example.com"}
    deepest = {**fields, "deep": _nested(MAX_REQUEST_DEPTH - 1)}
    status, started = api.call("POST", f"/sagas/{saga_id}/execute", {"input": deepest})
    assert status == 202, started
    execution = api.wait(started["id"], timeout_s=90, after=started,
                         until=lambda e: e["status"] == "COMPLETED"
                         and e["consistency"]["source"] == "read_model")
    assert execution["input"] == deepest
    for depth in (MAX_REQUEST_DEPTH, 30):  # the field's depth: the input's is one more
        status, error = api.call("POST", f"/sagas/{saga_id}/execute",
                                 {"input": {**fields, "deep": _nested(depth)}})
        assert status == 400 and error["error"]["code"] == "not_storable", error
        assert f"deeper than {MAX_REQUEST_DEPTH} levels, the limit" in error["error"]["message"]
    assert [e["id"] for e in api.call("GET", f"/executions?saga_id={saga_id}")[1]["items"]] == [
        started["id"]]
