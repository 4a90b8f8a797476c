"""A decision stays made, end to end: operators deciding at once on one PARKED or one
COMPENSATION_FAILED execution (each over its own connection to `saga serve`) take exactly one
decision; a resolved execution refuses every later one, saying who resolved it and when; and a
saga whose output mapping fails completes with the failure recorded (`output_error`), the same
in the write model, the read model and the API."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from chalicelib.config import Settings
from chalicelib.demo import demo_data
from chalicelib.domain import event_types
from chalicelib.roots import runtime
from tests.e2e.conftest import API, Api, new_customer
from tests.support.fulfilment import fulfilment_saga, order_input
from tests.support.records import matching_views
from tests.support.sagas import seed_copy
from tests.support.served import Answer, Served, http, served
from tests.support.traces import outbox_events

# What an operator's decision writes; the execution's end (parked, compensation failed)
# comes before any.
DECISIONS = {event_types.SAGA_RESOLVED, event_types.SAGA_RESUMED, event_types.COMPENSATION_STARTED}
ENDS = {event_types.SAGA_PARKED, event_types.COMPENSATION_FAILED}
ACTIONS = ("resolve", "retry-forward", "retry-compensation")


def _payment(customer: str) -> dict[str, Any]:
    return {"customer_id": customer, "amount": "25.00", "currency": "EUR",
            "email": f"{customer}@example.com"}


@pytest.fixture(scope="module")
def started(api: Api, deployed: None) -> dict[str, str]:
    """Every execution the module needs, started at once so that they run side by side."""
    with runtime.container().connector.transaction() as cur:
        demo_data.seed_account(cur, "merchant", "0.00")  # who the payments are paid to
    fulfilment = fulfilment_saga(api, "decide")
    stuck = [{"step_id": "ship", "error": "CarrierDown", "times": 3}]
    payment = api.create_saga(seed_copy("decide-pay"))["id"]
    mapped = seed_copy("decide-out")
    mapped["output"] = {"missing": "$.results.validate-payment.missing_field",
                        "ok": "$.results.process-payment.amount"}
    mapped_id = api.create_saga(mapped)["id"]
    return {
        "parked_race": api.execute(fulfilment, input=order_input(new_customer()),
                                   faults=stuck)["id"],
        "parked_once": api.execute(fulfilment, input=order_input(new_customer()),
                                   faults=stuck)["id"],
        "compensation_failed": api.execute(payment, input=_payment(new_customer()), faults=[
            {"step_id": "send-notification", "error": "Boom", "permanent": True},
            {"step_id": "process-payment", "phase": "compensation", "error": "LedgerLocked",
             "times": 4}])["id"],
        "output": api.execute(mapped_id, input=_payment(new_customer()))["id"],
    }


@pytest.fixture(scope="module")
def app(started: dict[str, str]) -> Iterator[Served]:
    """`saga serve` on a free port: real HTTP, one connection per operator."""
    with served({}) as serving:
        yield serving


def _decide(app: Served, execution_id: str, action: str, n: int) -> Answer:
    body = json.dumps({"reason": f"handled by hand, operator {n}"}).encode() \
        if action == "resolve" else b""
    return http("POST", f"{app.base}{API}/executions/{execution_id}/{action}", body)


def _decisions(execution_id: str) -> list[dict[str, Any]]:
    found = outbox_events(execution_id)
    ended = max(i for i, event in enumerate(found) if event["type"] in ENDS)
    return [event for event in found[ended + 1:] if event["type"] in DECISIONS]


def _race(api: Api, app: Served, execution_id: str, status: str) -> tuple[Answer, list[Answer]]:
    """Eight operators at once, resolving, retrying forward and retrying the compensation."""
    execution = api.wait(execution_id)
    assert execution["status"] == status, execution
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda n: (ACTIONS[n % 3], _decide(
            app, execution_id, ACTIONS[n % 3], n)), range(8)))
    won = [(action, a) for action, a in answers if 200 <= a.status < 300]
    refused = [a for _, a in answers if a.status == 409]
    assert len(won) == 1 and len(refused) == 7, [(x, a.status, a.raw[:200]) for x, a in answers]
    [decision] = _decisions(execution_id)
    action, answer = won[0]
    assert decision["type"] == {"resolve": event_types.SAGA_RESOLVED,
                                "retry-forward": event_types.SAGA_RESUMED,
                                "retry-compensation": event_types.COMPENSATION_STARTED}[action]
    if action == "resolve":
        # Every later resolve, and whoever else is told of it, hears who decided and when.
        won_with = answer.json()
        by, at = won_with["resolved_by"], won_with["updated_at"]
        assert (decision["data"]["by"], decision["data"]["reason"]) == (
            by, won_with["resolution"])
        told = [a.json()["error"] for a in refused
                if a.json()["error"]["code"] == "already_resolved"]
        assert all(error["resolved_by"] == by and error["resolved_at"] == at
                   and error["resolution"] == won_with["resolution"]
                   and f"resolved by {by} at {at}" in error["message"] for error in told), told
        late_resolves = [a for x, a in answers if x == "resolve" and a.status == 409]
        assert all(a.json()["error"]["code"] == "already_resolved" for a in late_resolves)
    return answer, refused


def test_operators_racing_on_a_parked_execution_take_one_decision(
        api: Api, app: Served, started: dict[str, str], settings_e2e: Settings) -> None:
    execution_id = started["parked_race"]
    answer, _ = _race(api, app, execution_id, "PARKED")
    body = answer.json()
    if body["resolved_by"] is None:  # retry forward won: its run completes the order
        done = api.wait(execution_id, after=body,
                        until=lambda e: e["status"] not in ("PARKED", "RUNNING"))
        assert done["status"] == "COMPLETED", done
    else:
        assert body["status"] == "PARKED"
    same = matching_views(settings_e2e, execution_id)
    assert (same.resolved_by, same.resolution) == (body["resolved_by"], body["resolution"])


def test_operators_racing_on_a_failed_compensation_take_one_decision(
        api: Api, app: Served, started: dict[str, str], settings_e2e: Settings) -> None:
    execution_id = started["compensation_failed"]
    answer, _ = _race(api, app, execution_id, "COMPENSATION_FAILED")
    body = answer.json()
    if body["resolved_by"] is None:  # retry compensation won: the refund goes through
        done = api.wait(execution_id, after=body)
        assert done["status"] == "COMPENSATED", done
    else:
        assert body["status"] == "COMPENSATION_FAILED"
    matching_views(settings_e2e, execution_id)


def test_a_resolved_execution_refuses_every_later_decision(
        api: Api, app: Served, started: dict[str, str], settings_e2e: Settings) -> None:
    execution_id = started["parked_once"]
    assert api.wait(execution_id)["status"] == "PARKED"
    first = _decide(app, execution_id, "resolve", 1)
    assert first.status == 200, first.raw
    resolved = first.json()
    for action in ACTIONS:
        refused = _decide(app, execution_id, action, 2)
        assert refused.status == 409, refused.raw
        error = refused.json()["error"]
        assert error["code"] == "already_resolved"
        assert error["resolved_by"] == resolved["resolved_by"]
        assert error["resolved_at"] == resolved["updated_at"]
        assert error["resolution"] == "handled by hand, operator 1"
        assert f"resolved by {resolved['resolved_by']} at {resolved['updated_at']}" in \
            error["message"]
    assert [e["type"] for e in _decisions(execution_id)] == [event_types.SAGA_RESOLVED]
    same = matching_views(settings_e2e, execution_id)
    assert same.status.value == "PARKED" and same.resolution == "handled by hand, operator 1"
    ship = next(step for step in same.steps if step.step_id == "ship")
    assert ship.action_attempts == 3  # never run again


def test_a_failed_output_mapping_is_recorded_not_silent(
        api: Api, started: dict[str, str], settings_e2e: Settings) -> None:
    execution = api.wait(started["output"])
    assert execution["status"] == "COMPLETED", execution
    assert execution["output"] is None
    assert execution["output_error"] == {
        "field": "missing", "reference": "$.results.validate-payment.missing_field",
        "message": "$.results.validate-payment.missing_field: 'missing_field' is absent"}
    [completed] = [e for e in outbox_events(execution["id"])
                   if e["type"] == event_types.SAGA_COMPLETED]
    assert completed["data"]["output_error"] == execution["output_error"]
    same = matching_views(settings_e2e, execution["id"])  # field by field, output_error too
    assert same.output_error is not None and same.output_error.field == "missing"
