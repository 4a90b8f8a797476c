"""AWS calls per API operation, counted through botocore's event hooks against LocalStack:
execute, compensate, retry-compensation and retry-forward stay on the data plane (Step
Functions refills CreateStateMachine at 1 call/s per account, StartExecution at 300/s)."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from chalicelib.adapters import aws
from chalicelib.demo import demo_data
from chalicelib.roots import runtime
from tests.e2e.conftest import Api, seed_customer
from tests.support.sagas import SEED, seed_copy

EXAMPLE = Path(__file__).parents[2] / "examples" / "order-fulfilment" / "saga.json"
CONTROL_PLANE = ("Create", "Update", "Delete", "DescribeStateMachine", "ListStateMachines",
                 "Publish", "Tag", "Untag", "PutFunction", "AddPermission")


@pytest.fixture
def calls(api: Api) -> Iterator[Counter[str]]:
    """Every AWS call the API process makes from now on, as "service.Operation"."""
    counted: Counter[str] = Counter()

    def count(model: Any, **_: Any) -> None:
        counted[f"{model.service_model.service_name}.{model.name}"] += 1

    # Clients copy the session's handlers when made: forget the built ones first.
    session = aws._session(runtime.container().settings.aws.region)._session
    session.register("before-call.*.*", count)
    runtime.use(None)
    try:
        yield counted
    finally:
        session.unregister("before-call.*.*", count)
        runtime.use(None)


def _input(customer: str) -> dict[str, Any]:
    return {"customer_id": customer, "amount": "25.00", "currency": "EUR",
            "email": f"{customer}@example.com"}


def _customer() -> str:
    customer = f"cust-{uuid.uuid4().hex[:10]}"
    seed_customer(customer, "100.00")
    return customer


def _control(counted: Counter[str]) -> list[str]:
    return [name for name in counted
            if name.split(".")[1].startswith(CONTROL_PLANE) or name.startswith("lambda.")]


def test_execute_compensate_and_retry_make_no_control_plane_call(
        api: Api, calls: Counter[str], demo: Callable[[], dict[str, Any]]) -> None:
    per_operation: dict[str, Counter[str]] = {}

    def measure(operation: str, action: Any) -> Any:
        calls.clear()
        result = action()
        per_operation[operation] = Counter(calls)
        return result

    saga_id = measure("create saga", lambda: api.create_saga(seed_copy("calls"))["id"])
    assert per_operation["create saga"]["stepfunctions.CreateStateMachine"] == 2

    execution = measure("execute", lambda: api.execute(saga_id, input=_input(_customer())))
    done = api.wait(execution["id"])
    assert done["status"] == "COMPLETED", done
    status, body = measure("compensate",
                           lambda: api.call("POST", f"/sagas/{saga_id}/compensate"))
    assert status == 202, body
    assert api.wait(execution["id"], after=body)["status"] == "COMPENSATED"

    failing = api.execute(saga_id, input=_input(_customer()), faults=[
        {"step_id": "send-notification", "error": "Boom", "permanent": True},
        {"step_id": "process-payment", "phase": "compensation", "error": "LedgerLocked",
         "times": 4}])
    assert api.wait(failing["id"])["status"] == "COMPENSATION_FAILED"
    status, body = measure("retry-compensation", lambda: api.call(
        "POST", f"/executions/{failing['id']}/retry-compensation"))
    assert status == 202, body
    assert api.wait(failing["id"], after=body)["status"] == "COMPENSATED"

    fulfil = {**json.loads(EXAMPLE.read_text()), "id": f"calls-fulfil-{uuid.uuid4().hex[:6]}"}
    api.create_saga(fulfil)
    with runtime.container().connector.transaction() as cur:
        demo_data.seed_stock(cur, "calls-sku", 10)
    parked = api.execute(fulfil["id"], input={**_input(_customer()), "sku": "calls-sku",
                                              "quantity": 1, "address": "1 Main St"},
                         faults=[{"step_id": "ship", "times": 3}])
    assert api.wait(parked["id"])["status"] == "PARKED"
    status, body = measure("retry-forward", lambda: api.call(
        "POST", f"/executions/{parked['id']}/retry-forward"))
    assert status == 202, body
    assert api.wait(parked["id"], after=body)["status"] == "COMPLETED"

    print("\nAWS calls per operation:", {k: dict(v) for k, v in per_operation.items()})
    for operation in ("execute", "compensate", "retry-compensation", "retry-forward"):
        assert _control(per_operation[operation]) == [], (operation, per_operation[operation])
        assert per_operation[operation]["stepfunctions.StartExecution"] == 1


def test_an_express_execute_is_one_start_and_its_failure_none_from_the_api(
        api: Api, calls: Counter[str], demo: Callable[[], dict[str, Any]]) -> None:
    # Express's StartExecution refills at 6,000/s; the hand-off of a failure to the Standard
    # compensation machine is the Express machine's own call, not the API's.
    definition = seed_copy("calls-express", **{step["id"]: {"timeout": "10s", "max_retries": 1}
                                                for step in SEED["steps"]})
    saga = api.create_saga({**definition, "workflow": "express"})
    assert saga["workflow_type"] == "express"
    assert calls["stepfunctions.CreateStateMachine"] == 2  # compensation and Express forward
    calls.clear()
    execution = api.execute(saga["id"], input=_input(_customer()), faults=[
        {"step_id": "send-notification", "error": "Boom", "permanent": True}])
    assert _control(calls) == [] and calls["stepfunctions.StartExecution"] == 1
    calls.clear()
    assert api.wait(execution["id"])["status"] == "COMPENSATED"
    assert _control(calls) == [] and calls["stepfunctions.StartExecution"] == 0


def test_ids_one_character_apart_run_on_their_own_machines(
        api: Api, demo: Callable[[], dict[str, Any]]) -> None:
    suffix = uuid.uuid4().hex[:8]
    three = seed_copy("x")
    three["id"] = f"adv.coll{suffix}"
    one = seed_copy("x")
    one["id"] = f"adv-coll{suffix}"
    one["steps"] = [step for step in one["steps"] if step["id"] == SEED["steps"][0]["id"]]
    api.create_saga(three)
    api.create_saga(one)
    # Started interleaved (one API client, one thread), run by Step Functions at once: a
    # machine shared by both would run one saga's steps for the other.
    started = [(len(saga["steps"]), api.execute(saga["id"], input=_input(_customer()))["id"])
               for _ in range(4) for saga in (three, one)]
    results = [(steps, api.wait(execution_id)) for steps, execution_id in started]
    for steps, execution in results:
        assert execution["status"] == "COMPLETED", execution
        assert len(execution["steps"]) == steps
        assert {step["status"] for step in execution["steps"]} == {"SUCCEEDED"}, execution
