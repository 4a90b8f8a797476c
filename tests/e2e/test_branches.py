"""Sagas that branch on data and fan out over a list, end to end on the local stack: an order
that skips shipping for digital goods and reserves stock once per order line, at most four
lines at once, through a team's HTTP participant. Every item that succeeded is undone with
its own result when the saga does not complete, before the earlier steps are."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from chalicelib.demo import demo_data
from chalicelib.roots import runtime
from infra.stack.paths import PROJECT_ROOT
from tests.e2e.conftest import Api, new_customer
from tests.support.participants import ParticipantServer, Received, serving
from tests.support.traces import outbox_events

LINES = 12
EXAMPLES = PROJECT_ROOT / "examples" / "order-branches"


@dataclass
class Warehouse:
    """The participant: reserves a line's stock (slowly, so several are out at once),
    refuses the lines it is told to, and releases what it reserved."""

    refuse: set[str] = field(default_factory=set)
    running: int = 0
    most_at_once: int = 0
    refused_at: float | None = None
    calls: list[tuple[float, str, str]] = field(default_factory=list)  # (time, path, sku)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, request: Received) -> tuple[int, Any]:
        body = request.body
        item = body.get("item") or {}
        sku = (item.get("value") or {}).get("sku", "")
        with self.lock:
            self.calls.append((time.monotonic(), request.path, sku))
        if request.path == "/reserve":
            if sku in self.refuse:
                with self.lock:
                    self.refused_at = time.monotonic()
                return 422, {"error": {"type": "OutOfStock", "message": f"no {sku} left"}}
            with self.lock:
                self.running += 1
                self.most_at_once = max(self.most_at_once, self.running)
            # Lines take longer the later they come, so items end one by one.
            time.sleep(0.4 + 0.05 * item["index"])
            with self.lock:
                self.running -= 1
            return 200, {"reservation": f"r-{sku}", "qty": body["input"]["qty"]}
        return 200, {"path": request.path, "undid": (body.get("action_result") or {})}

    def paths(self, path: str) -> list[str]:
        return [sku for _, p, sku in self.calls if p == path]


@pytest.fixture
def warehouse() -> Iterator[tuple[Warehouse, ParticipantServer]]:
    participant = Warehouse()
    with serving(participant) as server:
        yield participant, server


def _step(step_id: str, order: int, url: str, action: str, undo: str,
          **extra: Any) -> dict[str, Any]:
    return {"id": step_id, "name": step_id.title(), "description": f"{step_id} the order",
            "order": order, "action": f"{url}/{action}", "compensation": f"{url}/{undo}",
            "max_retries": 0, "timeout": "10s", **extra}


def _order_saga(api: Api, url: str, *, tolerated: int | str | None = None) -> str:
    saga_id = f"order-{uuid.uuid4().hex[:10]}"
    reserve = _step("reserve", 3, url, "reserve", "release", for_each="$.input.lines",
                    max_concurrency=4, input={"sku": "$.item.sku", "qty": "$.item.qty"})
    if tolerated is not None:
        reserve["tolerated_failures"] = tolerated
    api.create_saga({"id": saga_id, "name": "Order", "version": "1.0.0",
                     "description": "an order that branches and fans out", "steps": [
                         _step("create", 1, url, "create", "cancel"),
                         _step("ship", 2, url, "ship", "unship",
                               when='$.input.kind != "digital"'),
                         reserve]})
    return saga_id


def _order(kind: str = "physical") -> dict[str, Any]:
    return {"kind": kind, "lines": [{"sku": f"sku-{n}", "qty": n} for n in range(1, LINES + 1)]}


def _steps(execution: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {step["step_id"]: step for step in execution["steps"]}


def test_a_refused_line_stops_new_items_and_undoes_each_reserved_one_with_its_own_result(
        api: Api, warehouse: tuple[Warehouse, ParticipantServer]) -> None:
    participant, server = warehouse
    participant.refuse = {"sku-9"}
    saga_id = _order_saga(api, server.url)
    execution = api.wait(api.execute(saga_id, input=_order())["id"], timeout_s=90)
    assert execution["status"] == "COMPENSATED", execution
    assert participant.most_at_once <= 4
    steps = _steps(execution)
    reserved = [sku for sku in participant.paths("/reserve") if sku != "sku-9"]
    assert steps["reserve"]["status"] == "FAILED"
    assert steps["reserve"]["error"]["type"] == "FanOutFailed"
    assert steps["reserve[8]"]["status"] == "FAILED"
    assert steps["reserve[8]"]["error"]["type"] == "OutOfStock"
    # No new item started once the refusal was recorded: items never sent stay PENDING.
    assert participant.refused_at is not None
    late = [sku for at, path, sku in participant.calls
            if path == "/reserve" and at > participant.refused_at + 1.0]
    assert late == []
    never = [f"reserve[{n}]" for n in range(LINES) if f"sku-{n + 1}" not in
             participant.paths("/reserve")]
    assert all(steps[run]["status"] == "PENDING" for run in never), never
    # Every reserved line was released once, with its own reservation, before the earlier
    # steps were undone (the shipment, then the order).
    released = participant.paths("/release")
    assert sorted(released) == sorted(reserved)
    undone = {sku: next(s for s in server.received if s.path == "/release"
                        and s.body["item"]["value"]["sku"] == sku).body["action_result"]
              for sku in released}
    assert all(result["reservation"] == f"r-{sku}" for sku, result in undone.items())
    order = [path for _, path, _ in participant.calls if path != "/reserve"]
    assert order[-2:] == ["/unship", "/cancel"], order
    assert all(steps[f"reserve[{int(sku[4:]) - 1}]"]["status"] == "COMPENSATED"
               for sku in released)


def test_a_tolerated_failure_completes_with_every_other_items_result(
        api: Api, warehouse: tuple[Warehouse, ParticipantServer]) -> None:
    participant, server = warehouse
    participant.refuse = {"sku-9"}
    saga_id = _order_saga(api, server.url, tolerated=1)
    execution = api.wait(api.execute(saga_id, input=_order("digital"))["id"], timeout_s=90)
    assert execution["status"] == "COMPLETED", execution
    steps = _steps(execution)
    items = steps["reserve"]["result"]["items"]
    assert len(items) == LINES and items[8] is None
    assert [item["reservation"] for n, item in enumerate(items) if n != 8] == [
        f"r-sku-{n}" for n in range(1, LINES + 1) if n != 9]
    # A digital order skips shipping: recorded, with the condition's value and what it read.
    assert steps["ship"]["status"] == "SKIPPED"
    assert steps["ship"]["condition"] == {"when": '$.input.kind != "digital"', "value": False,
                                          "operands": {"$.input.kind": "digital"}}
    assert "/ship" not in {path for _, path, _ in participant.calls}
    skipped = [e for e in outbox_events(execution["id"]) if e["type"] == "saga.step.skipped"]
    assert [e["data"]["step_id"] for e in skipped] == ["ship"]
    assert skipped[0]["data"]["condition"]["value"] is False
    assert skipped[0]["data"]["step"]["status"] == "SKIPPED"


def test_definition_mistakes_are_refused_naming_the_step(
        api: Api, warehouse: tuple[Warehouse, ParticipantServer]) -> None:
    _, server = warehouse
    url = server.url
    steps = [_step("create", 1, url, "create", "cancel"),
             _step("ship", 2, url, "ship", "unship", when="$.results.pay.ok == true"),
             _step("reserve", 3, url, "reserve", "release", for_each="$.execution.id"),
             {**_step("charge", 4, url, "charge", "refund", when="$.input.amount > 10"),
              "kind": "pivot"}]
    status, body = api.call("POST", "/sagas", {
        "id": f"bad-{uuid.uuid4().hex[:8]}", "name": "Bad", "version": "1.0.0",
        "description": "mistakes in branches", "steps": steps})
    assert status == 400, body
    found = {(v["field"], v["rule"]): v["message"] for v in body["error"]["violations"]}
    assert "'ship'" in found[("steps[1].when", "reference")]
    assert "no active step 'pay'" in found[("steps[1].when", "reference")]
    assert "'reserve'" in found[("steps[2].for_each", "list")]
    assert "not a list" in found[("steps[2].for_each", "list")]
    assert "'charge' is the pivot" in found[("steps[3].when", "pivot")]
    status, body = api.call("POST", "/sagas", {
        "id": f"bad-{uuid.uuid4().hex[:8]}", "name": "Bad", "version": "1.0.0",
        "description": "a condition that cannot hold", "steps": [
            _step("ship", 1, url, "ship", "unship", when='$.input.total < "ten"  and 3')]})
    assert status == 400, body
    [violation] = body["error"]["violations"]
    assert violation["field"] == "steps[0].when" and "'ship'" in violation["message"]


def test_an_input_that_breaks_a_fanout_is_refused_at_execute(
        api: Api, warehouse: tuple[Warehouse, ParticipantServer]) -> None:
    _, server = warehouse
    saga_id = _order_saga(api, server.url)
    too_many = {"kind": "digital", "lines": [{"sku": f"s{n}", "qty": 1} for n in range(101)]}
    for body, says in ((too_many, "has 101 items; a fan-out takes at most 100"),
                       ({"kind": "digital", "lines": "sku-1"}, "is a string, not a list"),
                       ({"kind": "digital"}, "which the input lacks")):
        status, answer = api.call("POST", f"/sagas/{saga_id}/execute", {"input": body})
        assert status == 400, answer
        message = answer["error"]["message"]
        assert says in message and "reserve" in message, answer
    status, listed = api.call("GET", f"/executions?saga_id={saga_id}")
    assert status == 200 and listed["items"] == [], listed


def _example(api: Api) -> str:
    definition = json.loads((EXAMPLES / "saga.json").read_text())
    definition["id"] = f"branches-{uuid.uuid4().hex[:8]}"
    return str(api.create_saga(definition)["id"])


def _example_order(name: str, customer: str) -> tuple[dict[str, Any], str]:
    """The example's order, its lines on a fresh SKU with 20 in stock."""
    order = json.loads((EXAMPLES / name).read_text())
    sku = f"SKU-{uuid.uuid4().hex[:6]}"
    with runtime.container().connector.transaction() as cur:
        demo_data.seed_stock(cur, sku, 20)
    order["lines"] = [{**line, "sku": sku} for line in order["lines"]]
    return {**order, "customer_id": customer, "amount": "30.00", "currency": "EUR"}, sku


def test_the_example_ships_a_physical_order_and_undoes_every_line_when_the_charge_fails(
        api: Api, demo: Callable[[], dict[str, Any]]) -> None:
    saga_id = _example(api)
    order, sku = _example_order("order.json", new_customer())
    done = api.wait(api.execute(saga_id, input=order)["id"], timeout_s=90)
    assert done["status"] == "COMPLETED", done
    wanted = sum(line["quantity"] for line in order["lines"])
    assert demo()["stock"][sku] == {"available": 20 - wanted, "reserved": wanted}
    assert [item["reserved"] for item in done["output"]["reserved"]] == [
        [{"sku": sku, "quantity": line["quantity"]}] for line in order["lines"]]
    assert done["output"]["shipment"]
    # The charge refused for good: each line's reservation, the shipment and the order undone.
    failed = api.wait(api.execute(saga_id, input=order, faults=[
        {"step_id": "charge", "error": "CardDeclined", "permanent": True}])["id"],
        timeout_s=90)
    assert failed["status"] == "COMPENSATED", failed
    steps = _steps(failed)
    assert {steps[f"reserve-lines[{n}]"]["status"] for n in range(len(order["lines"]))} == {
        "COMPENSATED"}
    assert steps["ship"]["status"] == "COMPENSATED"
    after = demo()
    assert after["stock"][sku] == {"available": 20 - wanted, "reserved": wanted}
    assert not [r for r in after["reservations"] if r["execution_id"] == failed["id"]]
    assert not [s for s in after["shipments"] if s["execution_id"] == failed["id"]]
    # The undo ran every line before the shipment, and the shipment before the order.
    events = [(e["type"], e["data"].get("step_id")) for e in outbox_events(failed["id"])
              if e["type"] == "saga.step.compensated"]
    undone = [step for _, step in events]
    assert undone.index("ship") > max(undone.index(f"reserve-lines[{n}]")
                                      for n in range(len(order["lines"])))
    assert undone[-1] == "create-order"


def test_the_example_skips_shipping_a_digital_order(
        api: Api, demo: Callable[[], dict[str, Any]]) -> None:
    saga_id = _example(api)
    order, _ = _example_order("digital-order.json", new_customer())
    done = api.wait(api.execute(saga_id, input=order)["id"], timeout_s=90)
    assert done["status"] == "COMPLETED", done
    steps = _steps(done)
    assert steps["ship"]["status"] == "SKIPPED"
    assert steps["ship"]["action_attempts"] == 0
    assert "shipment" not in done["output"]  # a skipped step's result is left out
    assert len(done["output"]["reserved"]) == 2
    assert not [s for s in demo()["shipments"] if s["execution_id"] == done["id"]]
