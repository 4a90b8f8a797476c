"""Sagas executed for real: Step Functions on LocalStack, one Lambda per step, MariaDB."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from chalicelib.adapters import aws
from chalicelib.config import Settings
from chalicelib.roots import runtime
from tests.e2e.conftest import Api, seed_customer, sfn_history
from tests.support.sagas import SEED, seed_copy
from tests.support.traces import NOTHING_LEFT, left_behind, outbox_events

STEP_IDS = [step["id"] for step in SEED["steps"]]


def _saga(api: Api, **step_changes: dict[str, Any]) -> str:
    """A copy of the documented example under a fresh id, with some steps changed."""
    return str(api.create_saga(seed_copy("pay", **step_changes))["id"])


def _input(customer: str, amount: str = "25.00") -> dict[str, Any]:
    return {"customer_id": customer, "amount": amount, "currency": "EUR",
            "email": f"{customer}@example.com"}


def _customer(balance: str = "100.00") -> str:
    customer = f"cust-{uuid.uuid4().hex[:10]}"
    seed_customer(customer, balance)
    return customer


def _compensation_order(execution_id: str) -> list[str]:
    return [e["data"]["step_id"] for e in outbox_events(execution_id)
            if e["type"] == "saga.step.compensated"]


def _balance(snapshot: dict[str, Any], account: str) -> str:
    return str(snapshot["accounts"][account]["balance"])


def _steps(execution: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {step["step_id"]: step for step in execution["steps"]}


def test_the_documented_saga_completes(api: Api, demo: Callable[[], dict[str, Any]]) -> None:
    saga_id = _saga(api)
    customer = _customer("100.00")
    execution = api.wait(api.execute(saga_id, input=_input(customer))["id"])
    assert execution["status"] == "COMPLETED", execution
    assert [s["status"] for s in execution["steps"]] == ["SUCCEEDED"] * 3
    assert all(len(s["attempts"]) == 1 for s in execution["steps"])
    assert _balance(demo(), customer) == "75.00"
    assert _balance(demo(), "merchant") != "0.00"
    types = [e["type"] for e in outbox_events(execution["id"])]
    assert types[0] == "saga.execution.started" and types[-1] == "saga.completed"
    assert [e["sequence"] for e in outbox_events(execution["id"])] == list(range(1, len(types) + 1))

    status, summary = api.call("GET", f"/sagas/{saga_id}/status")
    assert status == 200 and summary["latest_execution"]["id"] == execution["id"]


def test_a_step_recovers_after_retries_and_every_attempt_is_visible(api: Api) -> None:
    saga_id = _saga(api)
    execution = api.wait(api.execute(saga_id, input=_input(_customer()), faults=[
        {"step_id": "send-notification", "error": "SmtpDown", "times": 2}])["id"])
    assert execution["status"] == "COMPLETED", execution
    notification = _steps(execution)["send-notification"]
    assert notification["action_attempts"] == 3
    assert [(a["outcome"], a["error_type"]) for a in notification["attempts"]] == [
        ("failed", "SmtpDown"), ("failed", "SmtpDown"), ("succeeded", None)]


@pytest.mark.parametrize("failing", [0, 1, 2])
def test_a_failure_at_each_position_compensates_the_completed_steps_in_reverse(
    api: Api, demo: Callable[[], dict[str, Any]], failing: int
) -> None:
    saga_id = _saga(api)
    customer = _customer("100.00")
    before = demo()
    execution = api.wait(api.execute(saga_id, input=_input(customer), faults=[
        {"step_id": STEP_IDS[failing], "error": "Boom", "permanent": True}])["id"])
    completed = STEP_IDS[:failing]
    assert execution["status"] == ("COMPENSATED" if completed else "FAILED"), execution
    assert _compensation_order(execution["id"]) == list(reversed(completed))
    steps = _steps(execution)
    assert steps[STEP_IDS[failing]]["status"] == "FAILED"
    assert all(steps[s]["status"] == "COMPENSATED" for s in completed)
    assert all(steps[s]["status"] == "PENDING" for s in STEP_IDS[failing + 1:])
    after = demo()
    assert _balance(after, customer) == "100.00"
    assert after == before
    assert left_behind(execution["id"]) == NOTHING_LEFT


def test_a_step_that_times_out_is_compensated_too(api: Api,
                                                  demo: Callable[[], dict[str, Any]]) -> None:
    # No retries: the timeout is final (a retry would find the late attempt done).
    saga_id = _saga(api, **{"process-payment": {"timeout": "2s", "max_retries": 0}})
    customer = _customer("100.00")
    before = demo()
    # The attempt starts 7 s late: past its Task's 2 s + the 2 s margin, so the engine gives up
    # on it and the step is undone before its action could even begin.
    started = time.monotonic()
    execution = api.wait(api.execute(saga_id, input=_input(customer), faults=[
        {"step_id": "process-payment", "times": 0, "delay": "7s"}])["id"])
    assert execution["status"] == "COMPENSATED", execution
    assert _compensation_order(execution["id"]) == ["process-payment", "validate-payment"]
    ended = [e["type"] for e in outbox_events(execution["id"])]
    # The late action wakes after its compensation ran, sees it, and does nothing: final is
    # final, so it is logged, not recorded, and no event follows the end.
    time.sleep(max(0.0, started + 7 + 2 - time.monotonic()))
    late = api.wait(execution["id"])
    assert _steps(late)["process-payment"]["status"] == "COMPENSATED"
    assert [e["type"] for e in outbox_events(execution["id"])] == ended
    assert ended[-1] == "saga.compensated"
    assert demo() == before
    assert left_behind(execution["id"]) == NOTHING_LEFT


def test_a_failed_compensation_is_listed_and_its_retry_completes_it(
    api: Api, demo: Callable[[], dict[str, Any]]
) -> None:
    saga_id = _saga(api)
    customer = _customer("100.00")
    execution = api.wait(api.execute(saga_id, input=_input(customer), faults=[
        {"step_id": "send-notification", "error": "Boom", "permanent": True},
        {"step_id": "process-payment", "phase": "compensation", "error": "LedgerLocked",
         "times": 4}])["id"])
    assert execution["status"] == "COMPENSATION_FAILED", execution
    assert _steps(execution)["process-payment"]["status"] == "COMPENSATION_FAILED"
    assert _balance(demo(), customer) == "75.00"  # the refund has not happened yet
    status, listed = api.call("GET", "/executions?status=COMPENSATION_FAILED&limit=100")
    assert status == 200 and execution["id"] in [e["id"] for e in listed["items"]]
    assert "saga.compensation.failed" in [e["type"] for e in outbox_events(execution["id"])]

    status, retried = api.call("POST", f"/executions/{execution['id']}/retry-compensation")
    assert status == 202 and retried["status"] == "COMPENSATING"
    final = api.wait(execution["id"], after=retried)
    assert final["status"] == "COMPENSATED", final
    assert _balance(demo(), customer) == "100.00"
    assert _compensation_order(execution["id"]) == ["process-payment", "validate-payment"]
    assert left_behind(execution["id"]) == NOTHING_LEFT


def test_resolve_marks_a_failed_execution_with_the_reason(api: Api) -> None:
    saga_id = _saga(api)
    execution = api.wait(api.execute(saga_id, input=_input(_customer()), faults=[
        {"step_id": "validate-payment", "error": "Nope", "permanent": True}])["id"])
    assert execution["status"] == "FAILED"
    status, _ = api.call("POST", f"/executions/{execution['id']}/resolve", {"reason": "x"})
    assert status == 400
    status, resolved = api.call("POST", f"/executions/{execution['id']}/resolve",
                                {"reason": "customer refunded by hand"})
    assert status == 200 and resolved["resolution"] == "customer refunded by hand"
    assert resolved["resolved_by"].startswith("anonymous@")


def test_duplicate_delivery_of_a_step_has_one_effect(
    api: Api, demo: Callable[[], dict[str, Any]], settings_e2e: Settings
) -> None:
    saga_id = _saga(api)
    customer = _customer("100.00")
    execution = api.wait(api.execute(saga_id, input=_input(customer))["id"])
    assert execution["status"] == "COMPLETED"
    before = demo()
    lam = aws.client("lambda", settings_e2e.aws)
    payload = {"execution_id": execution["id"], "step_id": "process-payment",
               "phase": "action", "last": False, "attempt": 0, "error": None}
    for _ in range(2):
        function = f"{settings_e2e.aws.app_name}-{settings_e2e.stage}-step_payment"
        response = lam.invoke(FunctionName=function,
                              Payload=json.dumps(payload).encode())
        assert "FunctionError" not in response
        json.loads(response["Payload"].read())
    assert demo() == before
    again = api.wait(execution["id"])
    assert _steps(again)["process-payment"]["action_attempts"] == 1


@pytest.mark.parametrize("failing", [0, 1])
def test_a_late_delivery_of_a_failed_or_unreached_step_does_nothing(
    api: Api, demo: Callable[[], dict[str, Any]], settings_e2e: Settings, failing: int
) -> None:
    """Found by the fault suite: a repeated delivery of process-payment after the saga had
    failed and been compensated charged the customer, and nothing would ever refund it."""
    saga_id = _saga(api)
    customer = _customer("100.00")
    execution = api.wait(api.execute(saga_id, input=_input(customer), faults=[
        {"step_id": STEP_IDS[failing], "error": "Boom", "permanent": True}])["id"])
    assert execution["status"] in ("COMPENSATED", "FAILED")
    before = demo()
    lam = aws.client("lambda", settings_e2e.aws)
    payload = {"execution_id": execution["id"], "step_id": "process-payment",
               "phase": "action", "last": False, "attempt": 0, "error": None}
    response = lam.invoke(FunctionName=f"{settings_e2e.aws.app_name}-{settings_e2e.stage}"
                          "-step_payment", Payload=json.dumps(payload).encode())
    assert json.loads(response["Payload"].read())["errorType"] == "StepAborted"
    assert demo() == before
    assert _balance(before, customer) == "100.00"
    assert left_behind(execution["id"]) == NOTHING_LEFT


def test_a_completed_execution_can_be_compensated_on_request(
    api: Api, demo: Callable[[], dict[str, Any]]
) -> None:
    saga_id = _saga(api)
    customer = _customer("100.00")
    execution = api.wait(api.execute(saga_id, input=_input(customer))["id"])
    assert execution["status"] == "COMPLETED"
    assert _balance(demo(), customer) == "75.00"
    status, body = api.call("POST", f"/sagas/{saga_id}/compensate")  # no body: the latest
    assert status == 202 and body["id"] == execution["id"], body
    final = api.wait(execution["id"], after=body)
    assert final["status"] == "COMPENSATED", final
    assert _compensation_order(execution["id"]) == list(reversed(STEP_IDS))
    assert _balance(demo(), customer) == "100.00"
    assert left_behind(execution["id"]) == NOTHING_LEFT
    status, body = api.call("POST", f"/sagas/{saga_id}/compensate")
    assert status == 409  # nothing completed is left to compensate


def test_a_repeated_execute_with_the_same_id_starts_one_execution(
    api: Api, settings_e2e: Settings
) -> None:
    saga_id = _saga(api)
    execution_id = f"order-{uuid.uuid4().hex[:12]}"
    body = {"input": _input(_customer()), "execution_id": execution_id}
    first_status, first = api.call("POST", f"/sagas/{saga_id}/execute", body)
    second_status, second = api.call("POST", f"/sagas/{saga_id}/execute", body)
    assert (first_status, second_status) == (202, 200)
    assert first["id"] == second["id"] == execution_id
    assert api.wait(execution_id)["status"] == "COMPLETED"
    sfn = aws.client("stepfunctions", settings_e2e.aws)
    runs = sfn.list_executions(stateMachineArn=first["state_machine_arn"])["executions"]
    assert [run["name"] for run in runs] == [execution_id]
    history = sfn_history(settings_e2e, first["sfn_execution_arn"])
    assert history[-1]["type"] == "ExecutionSucceeded"
    status, _ = api.call("POST", f"/sagas/{saga_id}/execute",
                         {"execution_id": execution_id, "input": {}} | {"faults": "x"})
    assert status == 400


def test_destroying_a_saga_with_a_running_execution_is_refused(api: Api) -> None:
    saga_id = _saga(api, **{"process-payment": {"timeout": "5s"}})
    execution = api.execute(saga_id, input=_input(_customer()), faults=[
        {"step_id": "process-payment", "times": 0, "delay": "2s"}])
    status, body = api.call("DELETE", f"/sagas/{saga_id}")
    assert status == 409 and body["error"]["running"] == 1
    assert api.wait(execution["id"])["status"] == "COMPLETED"
    assert api.call("DELETE", f"/sagas/{saga_id}")[0] == 204
    # The version it ran stays readable through the execution.
    assert api.call("GET", f"/executions/{execution['id']}")[0] == 200


@pytest.mark.parametrize(("body", "fragment"), [
    ({"input": []}, "field 'input'"),
    ({"input": {}, "execution_id": "bad id!"}, "execution_id"),
    ({"input": {}, "surprise": 1}, "unknown field"),
    ({"input": {}, "faults": [{"step_id": "x", "times": -1}]}, "field 'faults.0.times'"),
])
def test_bad_execute_requests_get_400_and_start_nothing(api: Api, body: dict[str, Any],
                                                       fragment: str) -> None:
    saga_id = _saga(api)
    status, error = api.call("POST", f"/sagas/{saga_id}/execute", body)
    assert status == 400 and fragment in error["error"]["message"]
    status, listed = api.call("GET", f"/executions?saga_id={saga_id}")
    assert listed["items"] == []


def test_cleanup_removes_only_what_nothing_needs(api: Api) -> None:
    ran = _saga(api)
    execution = api.wait(api.execute(ran, input=_input(_customer()))["id"])
    assert api.call("DELETE", f"/sagas/{ran}")[0] == 204  # its version stays: it is pinned
    # A destroyed saga's version whose executions are gone (as retention would remove them).
    gone = f"gone-{uuid.uuid4().hex[:8]}"
    with runtime.container().connector.transaction() as cur:
        cur.execute("INSERT INTO saga_versions (saga_id, revision, version, name, description, "
                    "definition, created_at, created_by) SELECT %s, revision, version, name, "
                    "description, definition, created_at, created_by FROM saga_versions "
                    "WHERE saga_id = %s", (gone, ran))
        cur.execute("INSERT INTO idempotency_records (id, status, expiry_timestamp) "
                    "VALUES (%s, 'COMPLETED', 1)", (f"expired-{uuid.uuid4().hex}",))
    status, report = api.call("POST", "/cleanup")
    assert status == 200, report
    removed = report["removed"]
    assert removed["idempotency_records"] >= 1
    assert {"saga_id": gone, "revision": 1} in removed["orphan_versions"]
    assert all(v["saga_id"] != ran for v in removed["orphan_versions"])
    # The pinned version still serves its execution (a step can still be compensated).
    with runtime.container().connector.transaction() as cur:
        cur.execute("SELECT COUNT(*) AS n FROM saga_versions WHERE saga_id = %s", (ran,))
        assert cur.fetchone()["n"] == 1
    assert api.call("GET", f"/executions/{execution['id']}")[0] == 200
    assert api.call("POST", "/cleanup")[1]["removed"]["orphan_versions"] == []


def test_the_documented_execute_without_a_body_completes_with_the_demo_defaults(
    api: Api, demo: Callable[[], dict[str, Any]]
) -> None:
    seed_customer("demo-customer", "1000.00")
    saga_id = _saga(api)
    status, started = api.call("POST", f"/sagas/{saga_id}/execute")
    assert status == 202, started
    execution = api.wait(started["id"])
    assert execution["status"] == "COMPLETED", execution
    assert execution["input"] == {}
    assert _balance(demo(), "demo-customer") == "990.00"  # the default amount, 10.00


def test_a_last_step_that_outlives_its_timeout_never_completes_the_saga(
        api: Api, demo: Callable[[], dict[str, Any]]) -> None:
    # The late action of the last step used to record COMPLETED and publish saga.completed
    # after its Task had timed out, and the saga was compensated afterwards.
    saga_id = _saga(api, **{"send-notification": {"timeout": "1s", "max_retries": 0}})
    customer = _customer("100.00")
    before = demo()
    # It starts 4 s late: past its Task's 1 s + the 2 s margin.
    started = time.monotonic()
    execution = api.wait(api.execute(saga_id, input=_input(customer), faults=[
        {"step_id": "send-notification", "times": 0, "delay": "4s"}])["id"])
    assert execution["status"] == "COMPENSATED", execution
    assert execution["error"]["step_id"] == "send-notification", execution
    # Give the late action time to wake, and look again: still not completed, and nothing
    # after the end event.
    time.sleep(max(0.0, started + 4 + 2 - time.monotonic()))
    settled = api.wait(execution["id"])
    assert settled["status"] == "COMPENSATED", settled
    types = [e["type"] for e in outbox_events(execution["id"])]
    assert "saga.completed" not in types, types
    assert types[0] == "saga.execution.started" and types[-1] == "saga.compensated", types
    assert [e["sequence"] for e in outbox_events(execution["id"])] == list(range(1, len(types) + 1))
    assert demo() == before
