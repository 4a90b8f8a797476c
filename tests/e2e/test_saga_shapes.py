"""Sagas shaped like real processes, end to end on the local stack: a parallel group whose
branches overlap in time, a failing branch that compensates its succeeded sibling and every
earlier step, and a pivot saga whose retriable step recovers, or parks until an operator
retries it forward. The documented order-fulfilment example is the saga."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from chalicelib.config import Settings
from tests.e2e.conftest import Api, new_customer, sfn_history
from tests.support.fulfilment import fulfilment_saga, order_input
from tests.support.records import matching_views
from tests.support.served import http, served
from tests.support.traces import NOTHING_LEFT, left_behind, outbox_events


def _steps(execution: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {step["step_id"]: step for step in execution["steps"]}


def test_a_group_runs_its_steps_side_by_side(api: Api, settings_e2e: Settings,
                                            demo: Callable[[], dict[str, Any]]) -> None:
    saga_id = fulfilment_saga(api, "fulfil")
    # Both branches take over a second: run one after the other they could not overlap.
    slow = [{"step_id": step, "times": 0, "delay": "1500ms"}
            for step in ("reserve-stock", "authorize-payment")]
    execution = api.wait(api.execute(saga_id, input=order_input(new_customer()), faults=slow)["id"])
    assert execution["status"] == "COMPLETED", execution
    steps = _steps(execution)
    assert {(s, v["group"], v["kind"]) for s, v in steps.items()} == {
        ("create-order", 1, "compensatable"), ("reserve-stock", 2, "compensatable"),
        ("authorize-payment", 2, "compensatable"), ("capture-payment", 3, "pivot"),
        ("ship", 4, "retriable"), ("notify", 4, "retriable")}
    reserve, authorize = (steps[s]["attempts"][0] for s in ("reserve-stock", "authorize-payment"))
    assert reserve["duration_ms"] >= 1500 and authorize["duration_ms"] >= 1500
    history = sfn_history(settings_e2e, execution["sfn_execution_arn"])
    # Side by side as the engine ran them (not as the Lambdas' clocks say, which a cold start
    # skews): both branches' Tasks were entered before either left.
    moves = [(e["type"], e.get("stateEnteredEventDetails", e.get("stateExitedEventDetails",
                                                                   {})).get("name"))
             for e in history if e["type"] in ("TaskStateEntered", "TaskStateExited")]
    branch = {"step:reserve-stock", "step:authorize-payment"}
    first_exit = next(i for i, (kind, name) in enumerate(moves)
                      if kind == "TaskStateExited" and name in branch)
    assert {name for kind, name in moves[:first_exit] if kind == "TaskStateEntered"} >= branch
    entered = [e["stateEnteredEventDetails"]["name"] for e in history
               if "stateEnteredEventDetails" in e]
    assert entered.count("group:2") == 1 and entered.count("group:4") == 1
    # Events (as Kafka, the read model and the WebSocket push carry them) say the shape.
    events = outbox_events(execution["id"])
    started = next(e for e in events if e["type"] == "saga.execution.started")
    assert started["data"]["shape"][2] == {"step_id": "authorize-payment", "group": 2,
                                           "kind": "compensatable"}
    shipped = next(e for e in events if e["type"] == "saga.step.succeeded"
                   and e["data"]["step_id"] == "ship")
    assert (shipped["data"]["step"]["group"], shipped["data"]["step"]["kind"]) == (
        4, "retriable")
    status, stats = api.call("GET", f"/sagas/{saga_id}/stats")
    assert status == 200
    assert (stats["groups"], stats["parallel_groups"], stats["pivot"], stats["kinds"]) == (
        4, 2, "capture-payment", {"compensatable": 3, "pivot": 1, "retriable": 2})


def test_a_failing_branch_compensates_its_sibling_and_every_earlier_step(
        api: Api, demo: Callable[[], dict[str, Any]]) -> None:
    saga_id = fulfilment_saga(api, "fulfil")
    customer = new_customer()
    order = order_input(customer)
    before = demo()
    # authorize-payment fails for good after its sibling reserved the stock.
    execution = api.wait(api.execute(saga_id, input=order, faults=[
        {"step_id": "authorize-payment", "error": "CardDeclined", "permanent": True,
         "delay": "1s"}])["id"])
    assert execution["status"] == "COMPENSATED", execution
    steps = _steps(execution)
    assert {s: v["status"] for s, v in steps.items()} == {
        "create-order": "COMPENSATED", "reserve-stock": "COMPENSATED",
        "authorize-payment": "FAILED", "capture-payment": "PENDING", "ship": "PENDING",
        "notify": "PENDING"}
    assert execution["error"]["step_id"] == "authorize-payment"
    assert execution["error"]["type"] == "PermanentError"  # an injected permanent fault
    assert execution["error"]["message"].startswith("CardDeclined")
    undone = [e["data"]["step_id"] for e in outbox_events(execution["id"])
              if e["type"] == "saga.step.compensated"]
    assert undone == ["reserve-stock", "create-order"]  # the group, then the group before it
    assert demo() == before
    assert left_behind(execution["id"]) == NOTHING_LEFT


def test_a_retriable_step_that_fails_twice_then_succeeds_completes(
        api: Api, demo: Callable[[], dict[str, Any]]) -> None:
    saga_id = fulfilment_saga(api, "fulfil")
    execution = api.wait(api.execute(saga_id, input=order_input(new_customer()), faults=[
        {"step_id": "ship", "error": "CarrierDown", "times": 2}])["id"])
    assert execution["status"] == "COMPLETED", execution
    ship = _steps(execution)["ship"]
    assert [(a["attempt"], a["outcome"], a["error_type"]) for a in ship["attempts"]] == [
        (1, "failed", "CarrierDown"), (2, "failed", "CarrierDown"), (3, "succeeded", None)]
    assert not [e for e in outbox_events(execution["id"]) if "compensat" in e["type"]]


def test_a_stuck_retriable_step_parks_and_retry_forward_completes_it(
        api: Api, settings_e2e: Settings, demo: Callable[[], dict[str, Any]]) -> None:
    saga_id = fulfilment_saga(api, "fulfil")
    customer = new_customer("100.00")
    started = api.execute(saga_id, input=order_input(customer), faults=[
        {"step_id": "ship", "error": "CarrierDown", "times": 3}])
    parked = api.wait(started["id"])
    assert parked["status"] == "PARKED", parked
    assert parked["error"]["step_id"] == "ship" and parked["error"]["type"] == "CarrierDown"
    steps = _steps(parked)
    assert steps["ship"]["status"] == "FAILED" and steps["ship"]["action_attempts"] == 3
    assert steps["notify"]["status"] == "SUCCEEDED"
    assert steps["capture-payment"]["status"] == "SUCCEEDED"
    assert str(demo()["accounts"][customer]["balance"]) == "70.00"  # captured, kept
    assert not [e for e in outbox_events(parked["id"]) if "compensat" in e["type"]]
    status, listed = api.call("GET", f"/executions?saga_id={saga_id}&status=PARKED")
    assert status == 200 and [e["id"] for e in listed["items"]] == [parked["id"]]
    # After the pivot nothing is undone: compensating is refused, retrying forward is not.
    status, refused = api.call("POST", f"/sagas/{saga_id}/compensate",
                               {"execution_id": parked["id"]})
    assert status == 409, refused
    status, resumed = api.call("POST", f"/executions/{parked['id']}/retry-forward")
    assert status == 202, resumed
    assert resumed["status"] == "RUNNING" and resumed["error"] is None
    done = api.wait(parked["id"], after=resumed)
    assert done["status"] == "COMPLETED", done
    assert done["sfn_execution_arn"] != parked["sfn_execution_arn"]
    steps = _steps(done)
    assert [(a["attempt"], a["outcome"]) for a in steps["ship"]["attempts"]] == [
        (1, "failed"), (2, "failed"), (3, "failed"), (4, "succeeded")]
    assert steps["notify"]["action_attempts"] == 1  # done before: not sent twice
    assert steps["capture-payment"]["action_attempts"] == 1
    types = [e["type"] for e in outbox_events(done["id"])]
    assert types.index("saga.parked") < types.index("saga.resumed") < types.index(
        "saga.completed")
    status, again = api.call("POST", f"/executions/{parked['id']}/retry-forward")
    assert status == 409 and "only a PARKED execution" in again["error"]["message"]
    # The read model holds what the write model does: the reset round, groups and kinds.
    same = matching_views(settings_e2e, parked["id"])
    assert {(s.step_id, s.group, s.kind) for s in same.steps} >= {("ship", 4, "retriable")}


def test_operators_racing_to_retry_forward_start_one_run(
        api: Api, demo: Callable[[], dict[str, Any]]) -> None:
    """Eight operators press "retry forward" at once on the same parked execution (each its own
    connection to `saga serve`): one is answered 202, the others 409, and one run completes."""
    saga_id = fulfilment_saga(api, "fulfil")
    parked = api.wait(api.execute(saga_id, input=order_input(new_customer()), faults=[
        {"step_id": "ship", "error": "CarrierDown", "times": 3}])["id"])
    assert parked["status"] == "PARKED", parked
    url = f"/api/v1/saga/executions/{parked['id']}/retry-forward"
    with served({}) as app, ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda _: http("POST", f"{app.base}{url}", b""), range(8)))
    statuses = sorted(answer.status for answer in answers)
    assert statuses == [202] + [409] * 7, [a.raw[:200] for a in answers]
    refusals = {answer.json()["error"]["message"] for answer in answers if answer.status == 409}
    assert all("PARKED" in message or "changed meanwhile" in message for message in refusals)
    # Until it is neither parked (a read before the resume is projected) nor running.
    done = api.wait(parked["id"], until=lambda e: e["status"] not in ("PARKED", "RUNNING"))
    assert done["status"] == "COMPLETED", done
    ship = _steps(done)["ship"]
    assert [(a["attempt"], a["outcome"]) for a in ship["attempts"]] == [
        (1, "failed"), (2, "failed"), (3, "failed"), (4, "succeeded")]
    resumed = [e for e in outbox_events(parked["id"]) if e["type"] == "saga.resumed"]
    runs = [e for e in outbox_events(parked["id"]) if e["type"] == "saga.execution.run_started"]
    assert len(resumed) == 1 and len(runs) == 2  # the first run, and the one retry forward
