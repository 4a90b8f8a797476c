"""Child sagas end to end on the local stack: an order saga whose middle step runs another
team's payment saga. The child's execution exists before its Lambdas run, runs once however
often its start is repeated, and is compensated as a whole (its steps in reverse order) when
the order later fails; a child's own failure compensates the order."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from chalicelib.adapters import aws
from chalicelib.config import Settings
from chalicelib.domain.children import child_execution_id
from infra.cli_service import _timeline
from tests.e2e.conftest import Api
from tests.support.participants import ParticipantServer, Received, serving


@dataclass
class Teams:
    """Both teams' participants behind one server: each path is an action or an undo; a
    path in `refuse` answers 422. Keeps every call, in order."""

    refuse: set[str] = field(default_factory=set)
    slow: set[str] = field(default_factory=set)  # answered after 3 s
    calls: list[tuple[str, str]] = field(default_factory=list)  # (path, execution id)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, request: Received) -> tuple[int, Any]:
        execution_id = str(request.body.get("execution_id"))
        with self.lock:
            self.calls.append((request.path, execution_id))
        if request.path in self.slow:
            time.sleep(3)
        if request.path in self.refuse:
            return 422, {"error": {"type": "Refused", "message": f"{request.path} refused"}}
        return 200, {"done": request.path, "input": request.body.get("input")}

    def paths(self, execution_id: str | None = None) -> list[str]:
        with self.lock:
            return [path for path, of in self.calls
                    if execution_id is None or of == execution_id]


@pytest.fixture
def teams() -> Iterator[tuple[Teams, ParticipantServer]]:
    participants = Teams()
    with serving(participants) as server:
        yield participants, server


def _step(step_id: str, order: int, url: str, **extra: Any) -> dict[str, Any]:
    return {"id": step_id, "name": step_id.title(), "description": f"the {step_id} step",
            "order": order, "action": f"{url}/{step_id}",
            "compensation": f"{url}/undo-{step_id}", "max_retries": 0, "timeout": "10s",
            **extra}


def _sagas(api: Api, url: str) -> tuple[str, str]:
    """The payments team's saga (authorize, capture) and the order saga that calls it."""
    tag = uuid.uuid4().hex[:8]
    payment, order = f"payment-{tag}", f"order-{tag}"
    api.create_saga({"id": payment, "name": "Payment", "version": "1.0.0",
                     "description": "the payments team's saga", "steps": [
        _step("authorize", 1, url, input={"amount": "$.input.amount"}),
        _step("capture", 2, url)],
        "output": {"paid": "$.input.amount", "auth": "$.results.authorize.done"}})
    api.create_saga({"id": order, "name": "Order", "version": "1.0.0",
                     "description": "an order that pays through the payment saga", "steps": [
        _step("reserve", 1, url),
        {"id": "pay", "name": "Pay", "description": "run the payment saga", "order": 2,
         "saga": payment, "input": {"amount": "$.input.total"}},
        _step("ship", 3, url)]})
    return payment, order


def _running(api: Api, execution_id: str, participants: Teams) -> dict[str, Any]:
    """The execution once the API has it RUNNING (polled for at most 60 s)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status, found = api.call("GET", f"/executions/{execution_id}")
        if status == 200 and found["status"] == "RUNNING":
            assert "/capture" not in participants.paths(execution_id)
            return found
        time.sleep(0.1)
    pytest.fail(f"execution {execution_id} was not RUNNING within 60 s")


def test_a_completed_child_is_compensated_in_reverse_when_its_parent_later_fails(
        api: Api, teams: tuple[Teams, ParticipantServer]) -> None:
    participants, server = teams
    _, order = _sagas(api, server.url)
    participants.refuse = {"/ship"}
    started = api.execute(order, input={"total": 42})
    parent = api.wait(started["id"], timeout_s=120)
    assert parent["status"] == "COMPENSATED", parent
    steps = {step["step_id"]: step for step in parent["steps"]}
    child_id = child_execution_id(parent["id"], "pay")
    assert steps["pay"]["child"] == child_id
    assert steps["pay"]["status"] == "COMPENSATED"
    # The child's output was the step's result.
    assert steps["pay"]["result"] == {"paid": 42, "auth": "/authorize"}
    child = api.wait(child_id, timeout_s=30)
    assert child["status"] == "COMPENSATED", child
    assert child["parent"] == {"execution_id": parent["id"], "step_id": "pay"}
    assert child["depth"] == 1 and child["input"] == {"amount": 42}
    assert child["error"]["type"] == "ParentCompensates"
    # The CLI's timelines link them both ways.
    assert f"       child: {child_id} (saga executions show {child_id})" in \
        _timeline(parent).splitlines()
    assert f"  child of {parent['id']} (its step pay)" in _timeline(child).splitlines()
    # The child's steps ran and were undone in reverse, between the parent's own.
    assert participants.paths(child_id) == ["/authorize", "/capture", "/undo-capture",
                                            "/undo-authorize"]
    assert participants.paths(parent["id"]) == ["/reserve", "/ship", "/undo-reserve"]
    undo_child = max(i for i, (p, e) in enumerate(participants.calls) if e == child_id)
    undo_reserve = participants.calls.index(("/undo-reserve", parent["id"]))
    assert undo_child < undo_reserve


def test_a_child_that_fails_compensates_itself_and_then_its_parent(
        api: Api, teams: tuple[Teams, ParticipantServer]) -> None:
    participants, server = teams
    _, order = _sagas(api, server.url)
    participants.refuse = {"/capture"}
    parent = api.wait(api.execute(order, input={"total": 7})["id"], timeout_s=120)
    assert parent["status"] == "COMPENSATED", parent
    steps = {step["step_id"]: step for step in parent["steps"]}
    assert steps["pay"]["status"] == "FAILED"
    assert steps["pay"]["error"]["type"] == "ChildSagaFailed"
    assert "COMPENSATED" in steps["pay"]["error"]["message"]
    assert steps["ship"]["status"] == "PENDING"
    child_id = steps["pay"]["child"]
    child = api.wait(child_id, timeout_s=30)
    assert child["status"] == "COMPENSATED"
    assert participants.paths(child_id) == ["/authorize", "/capture", "/undo-authorize"]
    assert participants.paths(parent["id"]) == ["/reserve", "/undo-reserve"]
    assert parent["error"]["step_id"] == "pay"


def test_a_repeated_child_start_finds_the_same_child_and_runs_it_once(
        api: Api, teams: tuple[Teams, ParticipantServer], settings_e2e: Settings) -> None:
    participants, server = teams
    _, order = _sagas(api, server.url)
    participants.slow = {"/authorize"}
    parent_id = api.execute(order, input={"total": 5})["id"]
    child_id = child_execution_id(parent_id, "pay")
    # The child's row exists (RUNNING) while its first Lambda is still out.
    child = _running(api, child_id, participants)
    # The start Task delivered again while the child runs, as a retried Task would be: the
    # recorder finds the child it made and answers the same run, which the engine's start
    # with the same name and input joins instead of starting a second.
    lam = aws.client("lambda", settings_e2e.aws)
    payload = {"execution_id": parent_id, "step_id": "pay", "phase": "action",
               "child": "start", "machine": child["state_machine_arn"], "error": None}
    response = lam.invoke(FunctionName=f"{settings_e2e.aws.app_name}-{settings_e2e.stage}"
                          "-saga_recorder", Payload=json.dumps(payload).encode())
    answer = json.loads(response["Payload"].read())
    assert answer["run"]["name"] == child_id, answer
    sfn = aws.client("stepfunctions", settings_e2e.aws)
    again = sfn.start_execution(stateMachineArn=answer["run"]["machine"], name=child_id,
                                input=json.dumps(answer["run"]["input"]))
    parent = api.wait(parent_id, timeout_s=120)
    assert parent["status"] == "COMPLETED", parent
    child = api.wait(child_id, timeout_s=30)
    assert again["executionArn"] == child["sfn_execution_arn"] or again[
        "executionArn"].endswith(f":{child_id}")
    runs = sfn.list_executions(stateMachineArn=answer["run"]["machine"])["executions"]
    assert [run["name"] for run in runs].count(child_id) == 1
    assert participants.paths(child_id) == ["/authorize", "/capture"]
    # Once the child has ended, a start again answers no run at all.
    response = lam.invoke(FunctionName=f"{settings_e2e.aws.app_name}-{settings_e2e.stage}"
                          "-saga_recorder", Payload=json.dumps(payload).encode())
    assert json.loads(response["Payload"].read())["run"] is None
    assert participants.paths(child_id) == ["/authorize", "/capture"]


def test_a_cycle_of_three_sagas_and_a_compensatable_child_with_a_pivot_are_refused(
        api: Api, teams: tuple[Teams, ParticipantServer]) -> None:
    _, server = teams
    tag = uuid.uuid4().hex[:8]
    a, b, c = (f"{name}-{tag}" for name in "abc")

    def saga(saga_id: str, *steps: dict[str, Any], version: str = "1.0.0") -> dict[str, Any]:
        return {"id": saga_id, "name": saga_id, "version": version,
                "description": "a saga in a chain of calls", "steps": list(steps)}

    def child(step_id: str, order: int, saga_id: str, **extra: Any) -> dict[str, Any]:
        return {"id": step_id, "name": step_id, "description": f"calls {saga_id}",
                "order": order, "saga": saga_id, **extra}

    api.create_saga(saga(c, _step("work", 1, server.url)))
    api.create_saga(saga(b, child("call-c", 1, c)))
    api.create_saga(saga(a, child("call-b", 1, b)))
    status, refused = api.call("POST", "/sagas", saga(
        c, _step("work", 1, server.url), child("call-a", 2, a), version="1.1.0"))
    assert status == 400, refused
    [cycle] = refused["error"]["violations"]
    assert (cycle["field"], cycle["rule"]) == ("steps[1].saga", "cycle")
    assert f"step call-a calls saga '{a}'" in cycle["message"]
    assert f"{c} -> {a} -> {b} -> {c}" in cycle["message"]
    # A saga past whose pivot nothing is undone cannot be a compensatable child.
    pivoted = f"pivoted-{tag}"
    api.create_saga(saga(pivoted, _step("hold", 1, server.url),
                         {**_step("commit", 2, server.url), "kind": "pivot"}))
    status, refused = api.call("POST", "/sagas", saga(f"d-{tag}", _step("first", 1, server.url),
                                                      child("call-pivoted", 2, pivoted)))
    assert status == 400, refused
    [pivot] = refused["error"]["violations"]
    assert (pivot["field"], pivot["rule"]) == ("steps[1].kind", "child_pivot")
    assert "step call-pivoted" in pivot["message"] and "'commit'" in pivot["message"]
    status, _ = api.call("GET", f"/sagas/d-{tag}")
    assert status == 404  # nothing was stored


def test_a_child_on_express_completes_inside_its_parent_and_is_undone_on_standard(
        api: Api, teams: tuple[Teams, ParticipantServer]) -> None:
    participants, server = teams
    tag = uuid.uuid4().hex[:8]
    payment, order = f"express-payment-{tag}", f"express-order-{tag}"
    stored = api.create_saga({"id": payment, "name": "Payment", "version": "1.0.0",
                              "workflow": "express", "description": "a short payment saga",
                              "steps": [_step("authorize", 1, server.url)]})
    assert stored["workflow_type"] == "express"
    api.create_saga({"id": order, "name": "Order", "version": "1.0.0",
                     "description": "an order paid on Express", "steps": [
                         {"id": "pay", "name": "Pay", "description": "the payment saga",
                          "order": 1, "saga": payment},
                         _step("ship", 2, server.url)]})
    participants.refuse = {"/ship"}
    parent = api.wait(api.execute(order, input={})["id"], timeout_s=120)
    assert parent["status"] == "COMPENSATED", parent
    child = api.wait(child_execution_id(parent["id"], "pay"), timeout_s=30)
    assert child["status"] == "COMPENSATED"
    assert child["state_machine_arn"].endswith("-express")
    assert participants.paths(child["id"]) == ["/authorize", "/undo-authorize"]
