"""Sagas whose forward path runs on Step Functions Express (LocalStack), every compensation on
the version's Standard compensation machine: completed, failed and compensated, compensated on
request, run twice (Express is at-least-once), and lost."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib.adapters import aws
from chalicelib.adapters.mysql.executions import MySQLExecutionStore
from chalicelib.config import Settings
from chalicelib.domain.executions import Execution, ExecutionStatus, StepShape
from chalicelib.roots import runtime
from tests.e2e.conftest import Api, new_customer
from tests.support.sagas import SEED, seed_copy
from tests.support.traces import outbox_events

# Short enough for Express: each step 10 s and one retry at most.
QUICK = {"timeout": "10s", "max_retries": 1}


def _express_saga(api: Api) -> dict[str, Any]:
    definition = seed_copy("express", **{step: QUICK for step in STEP_IDS})
    definition["workflow"] = "express"
    return api.create_saga(definition)


STEP_IDS = [step["id"] for step in SEED["steps"]]


def _input(customer: str) -> dict[str, Any]:
    return {"customer_id": customer, "amount": "25.00", "currency": "EUR",
            "email": f"{customer}@example.com"}


def _balance(demo: Callable[[], dict[str, Any]], account: str) -> str:
    return str(demo()["accounts"][account]["balance"])


def _sfn() -> Any:
    return aws.client("stepfunctions", runtime.container().settings.aws)


def test_an_express_saga_completes_fails_on_standard_and_is_compensated_on_request(
        api: Api, demo: Callable[[], dict[str, Any]]) -> None:
    saga = _express_saga(api)
    assert (saga["workflow"], saga["workflow_type"]) == ("express", "express")
    assert saga["forward_worst_case_s"] is not None and saga["warnings"] == []
    status, versions = api.call("GET", f"/sagas/{saga['id']}/versions")
    assert status == 200 and [v["workflow_type"] for v in versions["versions"]] == ["express"]
    customers = [new_customer("100.00") for _ in range(3)]
    bodies = [{"input": _input(customers[0])},
              {"input": _input(customers[1]),
               "faults": [{"step_id": "process-payment", "permanent": True}]},
              {"input": _input(customers[2])}]
    # One after another: the in-process Chalice app serves one request at a time (as a Lambda
    # does); the three runs go on at once on the engine.
    started = [api.execute(saga["id"], **body) for body in bodies]
    completed, failed, undone = (api.wait(run["id"]) for run in started)

    assert completed["status"] == "COMPLETED", completed
    machine = completed["state_machine_arn"]
    assert machine.endswith("-express")
    assert _sfn().describe_state_machine(stateMachineArn=machine)["type"] == "EXPRESS"
    assert _balance(demo, customers[0]) == "75.00"

    # The failure was handed to the Standard compensation machine, one run named after it.
    assert failed["status"] == "COMPENSATED", failed
    steps = {step["step_id"]: step["status"] for step in failed["steps"]}
    assert steps == {"validate-payment": "COMPENSATED", "process-payment": "FAILED",
                     "send-notification": "PENDING"}
    handoff = _sfn().describe_execution(executionArn=(
        machine.replace(":stateMachine:", ":execution:").removesuffix("-express")
        + f"-undo:{failed['id']}-h"))
    assert handoff["status"] == "FAILED" and handoff["error"] == "Saga.Compensated"
    assert _balance(demo, customers[1]) == "100.00"

    # Compensated on request: on the same Standard machine.
    assert undone["status"] == "COMPLETED"
    status, moved = api.call("POST", f"/sagas/{saga['id']}/compensate",
                             {"execution_id": undone["id"]})
    assert status == 202, moved
    compensated = api.wait(undone["id"], after=moved)
    assert compensated["status"] == "COMPENSATED", compensated
    assert compensated["sfn_execution_arn"].split(":")[-2].endswith("-undo")
    assert _balance(demo, customers[2]) == "100.00"
    order = [e["data"]["step_id"] for e in outbox_events(undone["id"])
             if e["type"] == "saga.step.compensated"]
    assert order == ["send-notification", "process-payment", "validate-payment"]


def test_a_second_express_run_of_the_same_execution_moves_no_money_twice(
        api: Api, demo: Callable[[], dict[str, Any]]) -> None:
    saga = _express_saga(api)
    customer = new_customer("100.00")
    execution = api.execute(saga["id"], input=_input(customer))
    # AWS may run an Express start twice; LocalStack refuses a second start of the same name,
    # so the duplicate is started under another one, with the same input.
    duplicate = _sfn().start_execution(
        stateMachineArn=execution["state_machine_arn"], name=f"{execution['id']}-again",
        input=json.dumps({"execution_id": execution["id"], "error": None, "resume_at": ""}))
    assert duplicate["executionArn"]
    ended = api.wait(execution["id"])
    assert ended["status"] == "COMPLETED", ended
    assert _balance(demo, customer) == "75.00"
    # Each step did its work once; the duplicate's deliveries were answered as duplicates.
    assert all(sum(1 for a in step["attempts"] if a["outcome"] == "succeeded") == 1
               for step in ended["steps"]), ended["steps"]
    completed = [e for e in outbox_events(execution["id"]) if e["type"] == "saga.completed"]
    assert len(completed) == 1


def _lost(settings: Settings, saga: dict[str, Any], customer: str) -> str:
    """An execution recorded RUNNING on the saga's Express machine whose run never started
    (as if it was lost at once)."""
    engine = runtime.container().engine
    stored = runtime.container().definition_service.get(saga["id"])
    assert stored is not None
    execution_id = str(uuid.uuid4())
    planned = engine.plan(stored, execution_id)
    now = datetime.now(UTC)
    MySQLExecutionStore(runtime.container().connector).create(Execution(
        id=execution_id, saga_id=stored.id, revision=stored.revision, version=stored.version,
        status=ExecutionStatus.RUNNING, input=_input(customer), state_machine_arn=planned.where,
        started_at=now, updated_at=now), [StepShape.of(s) for s in stored.active_steps()])
    return execution_id


def test_the_reconciler_closes_an_express_execution_whose_run_was_lost(
        api: Api, settings_e2e: Settings, demo: Callable[[], dict[str, Any]]) -> None:
    saga = _express_saga(api)
    nothing_done = _lost(settings_e2e, saga, new_customer("100.00"))
    acted = _lost(settings_e2e, saga, new_customer("100.00"))
    # The lost run had delivered the first step before it vanished.
    function = f"{settings_e2e.aws.app_name}-{settings_e2e.stage}-step_payment"
    lam = aws.client("lambda", settings_e2e.aws)
    answer = lam.invoke(FunctionName=function, Payload=json.dumps({
        "execution_id": acted, "step_id": "validate-payment", "phase": "action",
        "last": False, "attempt": 0, "error": None}).encode())
    assert "FunctionError" not in answer, answer["Payload"].read()

    reconciler = runtime.container().new_reconciler(grace_seconds=0)
    now = datetime.now(UTC)
    reconciler.clock = lambda: now  # within a retry's longest backoff: not yet lost
    assert [r.execution_id for r in reconciler.run() if r.execution_id in
            (nothing_done, acted)] == []
    reconciler.clock = lambda: now + timedelta(minutes=2)
    repairs = {r.execution_id: r for r in reconciler.run()}
    assert repairs[nothing_done].now is ExecutionStatus.FAILED
    assert repairs[acted].now is ExecutionStatus.COMPENSATING

    failed = api.wait(nothing_done)
    assert failed["status"] == "FAILED" and failed["error"]["type"] == "RunLost", failed
    compensated = api.wait(acted)
    assert compensated["status"] == "COMPENSATED", compensated
    assert {s["step_id"]: s["status"] for s in compensated["steps"]}["validate-payment"] \
        == "COMPENSATED"
