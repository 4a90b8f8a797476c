"""The operator console in a real browser against `saga serve` on the local stack: the
documented saga and its graph, a live timeline, compensation bars and the reason, retrying a
failed compensation from the page, auth (asked for a token, a reader sees no actions), and a
list of 1,000 executions paged and filtered by time; a participant's typed refusal shown under
its own type."""

from __future__ import annotations

import copy
import importlib.util
import json
import re
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import jwt
import pytest
from saga_participant import Refusal, Request

from chalicelib.adapters import aws
from chalicelib.config import get_settings
from chalicelib.demo import demo_data
from chalicelib.roots import runtime
from infra.stack.paths import PROJECT_ROOT
from tests.browser.conftest import Console, HeldParticipant, new_customer, run_scenario
from tests.support.bulk import seed_completed
from tests.support.participants import serving
from tests.support.served import served

SAGA = json.loads((PROJECT_ROOT / "tests" / "fixtures" / "payment-saga.json").read_text())
SECRET = "browser-auth-secret-of-at-least-32-bytes"
FIRST_LOAD_LIMIT = 300 * 1024


@pytest.fixture(scope="module")
def documented(console: Console) -> str:
    status, body = console.call("POST", "/sagas", SAGA)
    assert status in (201, 409), body  # 409: stored earlier in this database
    return str(SAGA["id"])


def _input(customer: str) -> dict[str, Any]:
    return {"customer_id": customer, "amount": "25.00", "currency": "EUR",
            "email": f"{customer}@example.com"}


def test_the_documented_saga_is_listed_and_drawn(console: Console, documented: str) -> None:
    result = run_scenario("saga_graph", base=console.served.base, saga_id=documented)
    assert result["listed"]["version"] == SAGA["version"]
    assert result["steps"] == [step["id"] for step in SAGA["steps"]]
    assert result["edges"] == len(SAGA["steps"]) + 1  # start -> 1 -> 2 -> 3 -> end
    assert result["undo_edges"] == len(SAGA["steps"]) - 1
    assert SAGA["name"] in result["title"]
    # Standard, as asked (the default), with its forward path's worst case.
    assert result["workflow"].startswith("standard · forward path at most ")
    assert result["version_workflows"] == ["standard"]
    print(f"BROWSER first load: {result['bytes']} bytes in {result['requests']} responses")
    assert 0 < result["bytes"] < FIRST_LOAD_LIMIT


def test_a_running_execution_reaches_completed_without_a_reload(
        console: Console, documented: str) -> None:
    # The middle step is a participant that holds its answer until the page has shown the
    # execution RUNNING (the scenario then lets it go): no timing decides what is seen.
    held = HeldParticipant({"paid": True})
    with serving(held.respond) as participant:
        saga = copy.deepcopy(SAGA)
        saga["id"] = f"held-{uuid.uuid4().hex[:8]}"
        middle = saga["steps"][1]
        middle.update(action=f"{participant.url}/pay", compensation=f"{participant.url}/refund",
                      timeout="60s")
        status, stored = console.call("POST", "/sagas", saga)
        assert status == 201, stored
        result = run_scenario("live_timeline", base=console.served.base, saga_id=saga["id"],
                              execute={"input": _input(new_customer())},
                              release=f"{participant.url}/release")
    assert held.released.is_set()
    assert result["seen"][0] == "RUNNING" and result["seen"][-1] == "COMPLETED", result["seen"]
    assert result["same_document"]  # the page was never reloaded (a hash change is no load)
    assert result["live"] == "on"
    assert [(bar["step"], bar["phase"], bar["outcome"]) for bar in result["bars"]] == [
        (step["id"], "action", "succeeded") for step in SAGA["steps"]]


def test_a_failed_execution_shows_its_compensation_and_reason(
        console: Console, documented: str) -> None:
    status, started = console.call("POST", f"/sagas/{documented}/execute", {
        "input": _input(new_customer()),
        "faults": [{"step_id": "send-notification", "error": "SmtpDown", "times": 5}]})
    assert status == 202, started
    assert console.wait(started["id"])["status"] == "COMPENSATED"
    result = run_scenario("compensation_bars", base=console.served.base,
                          execution_id=started["id"])
    assert result["status"] == "COMPENSATED"
    assert "send-notification" in result["reason"] and "SmtpDown" in result["reason"]
    bars = [(bar["step"], bar["phase"], bar["outcome"]) for bar in result["bars"]]
    failed = [bar for bar in bars if bar[0] == "send-notification"]
    assert failed and all(bar[2] != "succeeded" for bar in failed)
    # A bar for each undo, drawn on its step's row (rows are in step order).
    assert [bar for bar in bars if bar[1] == "compensation"] == [
        ("validate-payment", "compensation", "succeeded"),
        ("process-payment", "compensation", "succeeded")]
    assert any("SmtpDown" in bar["label"] for bar in result["bars"])
    assert all(bar["inside"] for bar in result["bars"]), result["bars"]  # drawn on the axis


def test_a_participants_typed_refusal_shows_under_its_own_type(
        console: Console, participant_server: Callable[..., str]) -> None:
    # An HTTP participant (the SDK's, served by its pytest plugin) refuses the second step
    # with Refusal("OutOfStock", ...): the step's error is recorded as OutOfStock, and the
    # console shows that type for the step, on its failed bar and in the reason.
    def act(request: Request) -> dict[str, Any]:
        if request.step_id == "reserve-stock":
            raise Refusal("OutOfStock", "only 2 left", {"sku": "sku-1", "available": 2})
        return {"order_id": "O-1"}

    url = participant_server(act, lambda request: {"undone": request.step_id})
    steps = [{"id": step_id, "name": step_id, "description": f"The {step_id} participant",
              "order": order, "action": f"{url}/{step_id}", "compensation": f"{url}/undo",
              "max_retries": 0, "timeout": "10s"}
             for order, step_id in enumerate(["create-order", "reserve-stock"], start=1)]
    saga = {"id": f"typed-{uuid.uuid4().hex[:8]}", "name": "Typed refusal", "version": "1.0.0",
            "description": "A participant refuses with its own error type", "steps": steps}
    assert console.call("POST", "/sagas", saga)[0] == 201
    status, started = console.call("POST", f"/sagas/{saga['id']}/execute", {"input": {}})
    assert status == 202, started
    execution = console.wait(started["id"])
    assert execution["status"] == "COMPENSATED", execution
    refused = next(s for s in execution["steps"] if s["step_id"] == "reserve-stock")
    assert refused["error"]["type"] == "OutOfStock", refused  # what the API serves
    result = run_scenario("compensation_bars", base=console.served.base,
                          execution_id=started["id"], shot="typed-error")
    # The message says who answered what: "<url> answered 422: only 2 left".
    shown = result["errors"]["reserve-stock"]
    assert shown["type"] == "OutOfStock", shown
    assert shown["text"].startswith("OutOfStock: ") and shown["text"].endswith("only 2 left")
    assert "create-order" not in result["errors"]  # it succeeded, then was undone
    failed = [bar["label"] for bar in result["bars"]
              if bar["step"] == "reserve-stock" and bar["outcome"] != "succeeded"]
    assert failed and all("— OutOfStock: " in label for label in failed), failed
    assert "reserve-stock" in result["reason"] and "OutOfStock" in result["reason"]
    assert [(bar["step"], bar["phase"]) for bar in result["bars"]
            if bar["phase"] == "compensation"] == [("create-order", "compensation")]


def test_a_lambda_participants_typed_refusal_shows_under_its_own_type(
        console: Console, participant_server: Callable[..., str]) -> None:
    # The trip example's airline, a Lambda participant (the SDK's lambda_handler), refuses a
    # full flight with Refusal("FlightFull", ...): the console shows that type, as for HTTP.
    spec = importlib.util.spec_from_file_location(
        "trip_deploy_flight", PROJECT_ROOT / "examples" / "trip-booking" / "deploy_flight.py")
    assert spec is not None and spec.loader is not None
    deploy_flight = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(deploy_flight)
    lam = aws.client("lambda", get_settings().aws)
    airline = deploy_flight.deploy(lam, f"console-flight-{uuid.uuid4().hex[:8]}")
    try:
        hotel = participant_server(lambda request: {"booking_id": "H-1"},
                                   lambda request: {"cancelled": True})
        saga = {"id": f"typed-lambda-{uuid.uuid4().hex[:8]}", "name": "Trip",
                "version": "1.0.0", "description": "A Lambda participant refuses by type",
                "steps": [
                    {"id": "hotel", "name": "Hotel", "description": "a room for the trip",
                     "order": 1,
                     "action": f"{hotel}/book", "compensation": f"{hotel}/cancel",
                     "max_retries": 0, "timeout": "10s"},
                    {"id": "flight", "name": "Flight", "description": "a seat on the flight",
                     "order": 2,
                     "action": f"lambda:{airline}", "compensation": f"lambda:{airline}",
                     "max_retries": 0, "timeout": "10s"}]}
        stored = console.call("POST", "/sagas", saga)
        assert stored[0] == 201, stored
        status, started = console.call("POST", f"/sagas/{saga['id']}/execute", {"input": {
            "route": "LIS-OPO", "seats_left": 0, "guest": "Ada"}})
        assert status == 202, started
        execution = console.wait(started["id"])
        assert execution["status"] == "COMPENSATED", execution
        result = run_scenario("compensation_bars", base=console.served.base,
                              execution_id=started["id"], shot="typed-lambda-error")
    finally:
        lam.delete_function(FunctionName=airline)
    shown = result["errors"]["flight"]
    assert shown["type"] == "FlightFull", shown
    # The message says which function answered what.
    assert shown["text"].startswith(f"FlightFull: {airline}: ") and \
        shown["text"].endswith("flight LIS-OPO is full"), shown
    assert "flight" in result["reason"] and "FlightFull" in result["reason"]
    assert [(bar["step"], bar["phase"]) for bar in result["bars"]
            if bar["phase"] == "compensation"] == [("hotel", "compensation")]


def test_a_failed_compensation_is_retried_from_the_page(
        console: Console, documented: str) -> None:
    status, started = console.call("POST", f"/sagas/{documented}/execute", {
        "input": _input(new_customer()),
        "faults": [{"step_id": "send-notification", "error": "Boom", "permanent": True},
                   {"step_id": "process-payment", "phase": "compensation",
                    "error": "LedgerLocked", "times": 4}]})
    assert status == 202, started
    assert console.wait(started["id"])["status"] == "COMPENSATION_FAILED"
    result = run_scenario("retry_compensation", base=console.served.base,
                          execution_id=started["id"])
    assert result["before"] == "COMPENSATION_FAILED"
    assert result["after_cancel"] == "COMPENSATION_FAILED"  # Escape sent nothing
    assert "202" in result["answer"] and "COMPENSATING" in result["answer"]
    assert result["seen"][-1] == "COMPENSATED"
    assert result["buttons_left"] == 0  # nothing left to retry or resolve
    status, final = console.call("GET", f"/executions/{started['id']}")
    assert final["status"] == "COMPENSATED"


def test_a_parked_execution_is_retried_forward_from_the_page(console: Console) -> None:
    example = json.loads((PROJECT_ROOT / "examples" / "order-fulfilment" / "saga.json")
                         .read_text())
    saga_id = f"fulfil-{uuid.uuid4().hex[:8]}"
    assert console.call("POST", "/sagas", {**example, "id": saga_id})[0] == 201
    sku = f"sku-{uuid.uuid4().hex[:6]}"
    with runtime.container().connector.transaction() as cur:
        demo_data.seed_stock(cur, sku, 5)
    status, started = console.call("POST", f"/sagas/{saga_id}/execute", {
        "input": {**_input(new_customer()), "sku": sku, "quantity": 1, "address": "1 Main St"},
        "faults": [{"step_id": "ship", "error": "CarrierDown", "times": 3}]})
    assert status == 202, started
    assert console.wait(started["id"])["status"] == "PARKED"
    result = run_scenario("retry_compensation", base=console.served.base,
                          execution_id=started["id"], action="retry_forward",
                          wanted="COMPLETED")
    assert result["before"] == "PARKED" and result["after_cancel"] == "PARKED"
    assert "Nothing is undone after the pivot" in result["question"]
    assert "202" in result["answer"] and "RUNNING" in result["answer"]
    assert result["seen"][-1] == "COMPLETED"
    assert result["buttons_left"] == 0  # a completed pivot saga offers no compensate


def _token(subject: str, roles: list[str]) -> str:
    return jwt.encode({"sub": subject, "roles": roles, "exp": int(time.time()) + 600},
                      SECRET, "HS256")


@pytest.fixture(scope="module")
def secured(console: Console) -> Iterator[Console]:
    with served({"SAGA__AUTH__ENABLED": "true", "SAGA__AUTH__HS256_SECRET": SECRET}) as app:
        yield Console(app)


def test_with_auth_on_a_token_is_asked_for_and_a_reader_sees_no_actions(
        console: Console, documented: str, secured: Console) -> None:
    status, started = console.call("POST", f"/sagas/{documented}/execute",
                                   {"input": _input(new_customer())})
    assert status == 202, started
    assert console.wait(started["id"])["status"] == "COMPLETED"
    result = run_scenario("auth_reader", base=secured.served.base, execution_id=started["id"],
                          reader=_token("ann.reader", ["reader"]),
                          operator=_token("olaf.operator", ["operator"]))
    assert result["asked"] == "Sign in"
    assert "401" in result["refusal"] and "token" in result["refusal"]
    assert result["reader"]["who"] == "ann.reader · reader"
    assert result["reader"]["status"] == "COMPLETED"
    assert result["reader"]["buttons"] == 0
    assert result["reader"]["stored"] == ["saga-console.token"]
    assert result["reader"]["live"] == "on"  # the WebSocket took the token from ?token=
    assert result["operator"]["who"] == "olaf.operator · operator"
    assert result["operator"]["buttons"] == ["compensate"]


BULK = 1000
BULK_T0 = datetime(2026, 1, 1, tzinfo=UTC)  # one a minute from here: none of them live


@pytest.fixture(scope="module")
def bulk_saga(console: Console) -> str:
    """A saga with 1,000 COMPLETED executions in both models (tests/support/bulk.py): what is
    tested is the console with a long list, not 1,000 state machines."""
    saga = {**SAGA, "id": f"bulk-{uuid.uuid4().hex[:8]}"}
    status, body = console.call("POST", "/sagas", saga)
    assert status == 201, body
    container = runtime.container()
    seed_completed(container.connector, container.mongo, get_settings().database.mongodb, saga,
                   BULK, BULK_T0)
    return str(saga["id"])


def test_a_list_of_1000_executions_is_paged_and_filtered_by_time(console: Console,
                                                                 bulk_saga: str) -> None:
    def ids(minutes: range) -> list[str]:
        return [f"{bulk_saga}-{n:04d}" for n in minutes]

    # From 01:40 (inclusive) to 03:40 (exclusive): the executions of minutes 100 to 219.
    result = run_scenario("bulk_list", base=console.served.base, saga_id=bulk_saga,
                          **{"from": "2026-01-01T01:40", "to": "2026-01-01T03:40"})
    assert result["pages"] == [ids(range(999 - 50 * p, 949 - 50 * p, -1)) for p in range(4)]
    assert result["back"] == result["pages"][2]
    assert result["filtered"] == ids(range(219, 169, -1))
    assert result["filtered_more"] == 1  # 120 in the range: a next page
    print(f"BROWSER 1,000 executions: first page on screen in {result['first_ms']} ms; "
          f"next x3, previous, filter: {result['click_ms']} ms")


def test_a_shaped_saga_is_drawn_with_its_groups_and_kinds(console: Console) -> None:
    example = json.loads((PROJECT_ROOT / "examples" / "order-fulfilment" / "saga.json")
                         .read_text())
    saga_id = f"fulfil-{uuid.uuid4().hex[:8]}"
    # auto: Express when the forward path surely fits (the test stage's short margin and
    # attempts make it so), the API's reason shown beside the choice.
    status, body = console.call("POST", "/sagas", {**example, "id": saga_id,
                                                   "workflow": "auto", "deadline": "24h"})
    assert status == 201, body
    assert body["workflow_type"] == "express", body
    result = run_scenario("saga_graph", base=console.served.base, saga_id=saga_id,
                          shot="order-fulfilment")
    assert result["workflow"] == (
        f"express (auto: {body['workflow_reason']}) · forward path at most "
        f"{body['forward_worst_case_s']} s")
    assert result["version_workflows"] == ["express"]
    assert result["deadline"] == (
        "24h from the start (then compensated; parked past the pivot)")
    assert result["steps"] == [step["id"] for step in example["steps"]]
    assert result["kinds"] == [step.get("kind", "compensatable") for step in example["steps"]]
    # start -> create -> both of the group -> capture -> both retriable -> end
    assert result["edges"] == 1 + 2 + 2 + 2 + 2
    # Undone back to the pivot's group only: capture -> the group -> create.
    assert result["undo_edges"] == 2


def test_an_execution_is_started_from_the_console_found_by_id_and_listed_by_its_saga(
        console: Console) -> None:
    saga = {**SAGA, "id": f"start-{uuid.uuid4().hex[:8]}"}
    status, body = console.call("POST", "/sagas", saga)
    assert status == 201, body
    result = run_scenario("start_find", base=console.served.base, saga_id=saga["id"],
                          input=_input(new_customer()))
    assert result["refused"].startswith("Not JSON")
    assert result["seen"][-1] == "COMPLETED", result["seen"]
    assert console.wait(result["execution_id"])["input"]["amount"] == "25.00"
    assert result["execution_id"] in result["found"]
    assert result["nothing"] == "No execution and no saga has the id “no-such-id-anywhere”."
    # The saga's COMPLETED link lists that saga's executions only, in that status.
    assert result["status_link"] == f"/executions?saga_id={saga['id']}&status=COMPLETED"
    assert result["sagas_listed"] == [saga["id"]]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", result["started"]), result["started"]
