"""Records that tell the truth: step times, execution errors, and a read model that carries
every field of the write model at its precision."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from chalicelib.config import Settings
from chalicelib.roots import runtime
from infra.local_events import EventWorkers
from tests.e2e.conftest import Api, seed_customer
from tests.support.records import matching_views
from tests.support.sagas import seed_copy


def _saga(api: Api, **step_changes: dict[str, Any]) -> str:
    return str(api.create_saga(seed_copy("rec", **step_changes))["id"])


def _input() -> dict[str, Any]:
    customer = f"cust-{uuid.uuid4().hex[:10]}"
    seed_customer(customer, "100.00")
    return {"customer_id": customer, "amount": "25.00", "currency": "EUR",
            "email": f"{customer}@example.com"}


def _outbox_text(execution_id: str) -> str:
    with runtime.container().connector.transaction() as cur:
        cur.execute("SELECT envelope FROM outbox WHERE partition_key = %s", (execution_id,))
        return "\n".join(row["envelope"] for row in cur.fetchall())


def _assert_no_trace(text: str) -> None:
    for leak in ("Traceback", "stackTrace", "/var/task", ".py\\\"", 'File "'):
        assert leak not in text, (leak, text[:2000])


def test_a_retried_step_has_true_times_and_no_error(
    api: Api, settings_e2e: Settings, event_workers: EventWorkers, demo: Any
) -> None:
    saga_id = _saga(api)
    execution = api.wait(api.execute(saga_id, input=_input(), faults=[
        {"step_id": "send-notification", "error": "SmtpDown", "times": 2}])["id"])
    assert execution["status"] == "COMPLETED", execution
    assert execution["error"] is None
    write = matching_views(settings_e2e, execution["id"])
    for step in write.steps:
        actions = [a for a in step.attempts if a.phase == "action"]
        assert step.started_at is not None and step.ended_at is not None
        assert step.started_at == actions[0].started_at  # its first attempt's start
        assert step.ended_at == actions[-1].ended_at  # its last action attempt's end
        assert step.started_at < step.ended_at
        assert step.error is None, step  # the retry succeeded
        assert step.compensated_at is None
    notification = next(s for s in write.steps if s.step_id == "send-notification")
    assert len(notification.attempts) == 3
    # The API serves the same, at microsecond precision.
    served = {s["step_id"]: s for s in api.wait(execution["id"])["steps"]}
    assert served["send-notification"]["error"] is None
    assert datetime.fromisoformat(served["send-notification"]["started_at"]) == \
        notification.started_at


def test_a_failing_step_says_why_at_the_top_without_traces(
    api: Api, settings_e2e: Settings, event_workers: EventWorkers, demo: Any
) -> None:
    saga_id = _saga(api)
    execution = api.wait(api.execute(saga_id, input=_input(), faults=[
        {"step_id": "process-payment", "error": "CardDeclined", "permanent": True}])["id"])
    assert execution["status"] == "COMPENSATED", execution
    error = execution["error"]
    assert error is not None and error["step_id"] == "process-payment", execution
    assert error["phase"] == "action" and error["type"] and "CardDeclined" in error["message"]
    _assert_no_trace(json.dumps(execution))
    write = matching_views(settings_e2e, execution["id"])
    assert write.error is not None and write.error.step_id == "process-payment"
    validate = next(s for s in write.steps if s.step_id == "validate-payment")
    assert validate.compensated_at is not None and validate.ended_at is not None
    assert validate.started_at is not None and validate.started_at < validate.ended_at \
        < validate.compensated_at
    _assert_no_trace(_outbox_text(execution["id"]))


def test_a_failing_first_step_fails_with_its_error_and_no_traces(
    api: Api, settings_e2e: Settings, event_workers: EventWorkers, demo: Any
) -> None:
    saga_id = _saga(api)
    execution = api.wait(api.execute(saga_id, input=_input(), faults=[
        {"step_id": "validate-payment", "error": "Invalid", "permanent": True}])["id"])
    assert execution["status"] == "FAILED", execution
    assert {k: execution["error"][k] for k in ("step_id", "phase")} == {
        "step_id": "validate-payment", "phase": "action"}
    _assert_no_trace(json.dumps(execution))
    _assert_no_trace(_outbox_text(execution["id"]))
    matching_views(settings_e2e, execution["id"])


def test_a_timed_out_step_is_named_at_the_top(
    api: Api, settings_e2e: Settings, event_workers: EventWorkers, demo: Any
) -> None:
    saga_id = _saga(api, **{"process-payment": {"timeout": "2s", "max_retries": 0}})
    execution = api.wait(api.execute(saga_id, input=_input(), faults=[
        {"step_id": "process-payment", "times": 0, "delay": "7s"}])["id"])
    assert execution["status"] == "COMPENSATED", execution
    assert execution["error"]["step_id"] == "process-payment", execution
    assert execution["error"]["type"] == "States.Timeout"
    _assert_no_trace(json.dumps(execution))


def test_after_a_retried_compensation_the_error_is_the_cause_again(
    api: Api, settings_e2e: Settings, event_workers: EventWorkers, demo: Any
) -> None:
    saga_id = _saga(api)
    execution = api.wait(api.execute(saga_id, input=_input(), faults=[
        {"step_id": "send-notification", "error": "Boom", "permanent": True},
        {"step_id": "process-payment", "phase": "compensation", "error": "LedgerLocked",
         "times": 4}])["id"])
    assert execution["status"] == "COMPENSATION_FAILED", execution
    assert {k: execution["error"][k] for k in ("step_id", "phase", "type")} == {
        "step_id": "process-payment", "phase": "compensation", "type": "LedgerLocked"}
    status, retried = api.call("POST", f"/executions/{execution['id']}/retry-compensation")
    assert status == 202, retried
    final = api.wait(execution["id"], after=retried)
    assert final["status"] == "COMPENSATED", final
    assert {k: final["error"][k] for k in ("step_id", "phase")} == {
        "step_id": "send-notification", "phase": "action"}, final
    write = matching_views(settings_e2e, execution["id"])
    payment = next(s for s in write.steps if s.step_id == "process-payment")
    assert payment.error is None and payment.compensated_at is not None
