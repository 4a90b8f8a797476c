"""An execution's history and the triage queue, end to end on the local stack: an execution
parked, retried forward, parked again and resolved, and one whose compensation failed, was
retried, failed again and was resolved, show each operator decision with who and why in
GET /executions/{id}/history and on their console pages, and are listed as needing attention
(the API's filter, the console's view and its count) until they are resolved."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from chalicelib.demo import demo_data
from chalicelib.domain import event_types
from chalicelib.domain.lifecycle import COMPENSATION_RETRY
from chalicelib.roots import runtime
from infra.stack.paths import PROJECT_ROOT
from tests.browser.conftest import Console, new_customer, run_scenario

REASON = "shipped by hand with another carrier"


def _history(console: Console, execution_id: str) -> list[dict[str, Any]]:
    items, cursor = [], ""
    while True:
        after = f"&cursor={cursor}" if cursor else ""
        status, page = console.call("GET", f"/executions/{execution_id}/history?limit=5{after}")
        assert status == 200, page
        items += page["items"]
        if not page["next_cursor"]:
            return items
        cursor = page["next_cursor"]


def _until(console: Console, execution_id: str, done: Any,
           timeout_s: float = 90) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout_s
    while True:
        items = _history(console, execution_id)
        if done(items) or time.monotonic() > deadline:
            return items
        time.sleep(0.3)


def _listed(console: Console, execution_id: str, flags: str) -> bool:
    status, page = console.call("GET", f"/executions?{flags}&limit=100")
    assert status == 200, page
    return execution_id in {item["id"] for item in page["items"]}


def _types(items: list[dict[str, Any]]) -> list[str]:
    return [item["type"] for item in items]


def test_each_decision_on_a_parked_execution_is_in_its_history_until_resolved(
        console: Console) -> None:
    example = json.loads((PROJECT_ROOT / "examples" / "order-fulfilment" / "saga.json")
                         .read_text())
    saga_id = f"history-{uuid.uuid4().hex[:8]}"
    assert console.call("POST", "/sagas", {**example, "id": saga_id})[0] == 201
    sku = f"sku-{uuid.uuid4().hex[:6]}"
    with runtime.container().connector.transaction() as cur:
        demo_data.seed_stock(cur, sku, 5)
    customer = new_customer()
    status, started = console.call("POST", f"/sagas/{saga_id}/execute", {
        "input": {"customer_id": customer, "amount": "25.00", "currency": "EUR",
                  "email": f"{customer}@example.com", "sku": sku, "quantity": 1,
                  "address": "1 Main St"},
        # Two rounds of attempts (saga.retriable_max_attempts is 3 in the tests): it parks,
        # is retried forward, and parks again.
        "faults": [{"step_id": "ship", "error": "CarrierDown", "times": 6}]})
    assert status == 202, started
    execution_id = started["id"]
    parked = _until(console, execution_id,
                    lambda items: event_types.SAGA_PARKED in _types(items))
    assert _types(parked).count(event_types.SAGA_PARKED) == 1, _types(parked)
    assert _listed(console, execution_id, "needs_attention=true")
    assert not _listed(console, execution_id, "needs_attention=false")

    assert console.call("POST", f"/executions/{execution_id}/retry-forward")[0] == 202
    again = _until(console, execution_id,
                   lambda items: _types(items).count(event_types.SAGA_PARKED) == 2)
    assert _types(again).count(event_types.SAGA_PARKED) == 2, _types(again)
    assert _listed(console, execution_id, "needs_attention=true")

    # The console lists it, resolves it through the API and sees it leave the queue live.
    result = run_scenario("history_and_attention", base=console.served.base,
                          execution_id=execution_id, reason=REASON,
                          last_type=event_types.SAGA_RESOLVED)
    assert result["counted"] >= 1

    items = _until(console, execution_id,
                   lambda items: event_types.SAGA_RESOLVED in _types(items))
    assert [item["sequence"] for item in items] == list(range(1, len(items) + 1))
    assert _types(items)[0] == event_types.EXECUTION_STARTED
    assert _types(items)[-1] == event_types.SAGA_RESOLVED
    by_type = {item["type"]: item for item in items}
    status, execution = console.call("GET", f"/executions/{execution_id}")
    operator = execution["resolved_by"]
    assert operator and execution["resolution"] == REASON and execution["resolved_at"]
    resumed, resolved = by_type[event_types.SAGA_RESUMED], by_type[event_types.SAGA_RESOLVED]
    assert (resumed["actor"], resumed["reason"]) == (operator, "retry forward requested")
    assert (resolved["actor"], resolved["reason"]) == (operator, REASON)
    # Each failed attempt of the stuck step says which attempt, and why.
    failures = [i for i in items if i["step_id"] == "ship" and i["error"]]
    assert len(failures) >= 2 and {i["error"]["type"] for i in failures} == {"CarrierDown"}
    assert all(i["attempt"] for i in failures)
    assert not _listed(console, execution_id, "needs_attention=true")
    assert _listed(console, execution_id, "resolved=true")

    # The page: the same events in the same order, who and why on each decision.
    shown = result["rows"]
    assert [(row["type"], row["sequence"]) for row in shown] == [
        (item["type"], item["sequence"]) for item in items]
    rows = {row["type"]: row for row in shown}
    assert rows[event_types.SAGA_RESUMED]["actor"] == operator
    assert rows[event_types.SAGA_RESOLVED]["actor"] == operator
    assert REASON in rows[event_types.SAGA_RESOLVED]["why"]
    assert [row["type"] for row in result["filtered"]] == [event_types.SAGA_RESOLVED]
    assert REASON in result["resolution"] and operator in result["resolution"]
    # What each attempt was sent, recorded per attempt: the same in the API and on the page
    # (ship's attempts failed by injection, before their input was resolved: none kept).
    steps = {step["step_id"]: step for step in execution["steps"]}
    sent = {step_id: [a["input"] for a in step["attempts"] if a["phase"] == "action"]
            for step_id, step in steps.items()}
    assert sent["create-order"] and sent["create-order"][0]["customer_id"] == customer
    assert sent["ship"] and set(map(json.dumps, sent["ship"])) == {"null"}
    assert {step_id: json.loads(text) for step_id, text in result["sent"].items()} == {
        step_id: inputs[-1] for step_id, inputs in sent.items() if inputs and inputs[-1]}
    assert "create-order#1" in result["attemptInputs"]
    assert not any(name.startswith("ship#") for name in result["attemptInputs"])


def test_a_compensation_that_fails_again_after_its_retry_is_resolved_with_who_and_why(
        console: Console) -> None:
    saga = json.loads((PROJECT_ROOT / "tests" / "fixtures" / "payment-saga.json").read_text())
    saga_id = f"history-undo-{uuid.uuid4().hex[:8]}"
    assert console.call("POST", "/sagas", {**saga, "id": saga_id})[0] == 201
    customer = new_customer()
    status, started = console.call("POST", f"/sagas/{saga_id}/execute", {
        "input": {"customer_id": customer, "amount": "25.00", "currency": "EUR",
                  "email": f"{customer}@example.com"},
        # The refund fails past its retries (4 attempts a round), twice: the retry of the
        # compensation fails too.
        "faults": [{"step_id": "send-notification", "error": "Boom", "permanent": True},
                   {"step_id": "process-payment", "phase": "compensation",
                    "error": "LedgerGone", "times": 2 * (COMPENSATION_RETRY.retries + 1)}]})
    assert status == 202, started
    execution_id = started["id"]

    def failed(times: int) -> Any:
        return lambda items: _types(items).count(event_types.COMPENSATION_FAILED) == times

    assert failed(1)(_until(console, execution_id, failed(1)))
    assert _listed(console, execution_id, "needs_attention=true")
    assert console.call("POST", f"/executions/{execution_id}/retry-compensation")[0] == 202
    assert failed(2)(_until(console, execution_id, failed(2)))

    reason = "refunded by hand from the ledger"
    result = run_scenario("history_and_attention", base=console.served.base,
                          execution_id=execution_id, reason=reason,
                          last_type=event_types.SAGA_RESOLVED)
    items = _until(console, execution_id,
                   lambda items: event_types.SAGA_RESOLVED in _types(items))
    operator = console.call("GET", f"/executions/{execution_id}")[1]["resolved_by"]
    # The undo started by the step's failure names nobody; the retry names who asked.
    retried = [(i["actor"], i["reason"]) for i in items
               if i["type"] == event_types.COMPENSATION_STARTED and i["actor"]]
    assert retried == [(operator, "compensation retried")], retried
    resolved = next(i for i in items if i["type"] == event_types.SAGA_RESOLVED)
    assert (resolved["actor"], resolved["reason"]) == (operator, reason)
    rows = {row["type"]: row for row in result["rows"]}
    assert rows[event_types.SAGA_RESOLVED]["actor"] == operator
    assert reason in rows[event_types.SAGA_RESOLVED]["why"]
    assert [row["sequence"] for row in result["rows"]] == [i["sequence"] for i in items]
    assert not _listed(console, execution_id, "needs_attention=true")
