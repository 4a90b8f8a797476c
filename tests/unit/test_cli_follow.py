"""What `saga run --follow` prints for a shaped saga: the shape when it starts, a line naming
a parallel group when its first step ends, and the parked and resumed events."""

from __future__ import annotations

from typing import Any

from infra.cli_service import GroupHeaders, describe, shape_line

SHAPE = [{"step_id": "create-order", "group": 1, "kind": "compensatable"},
         {"step_id": "reserve-stock", "group": 2, "kind": "compensatable"},
         {"step_id": "authorize-payment", "group": 2, "kind": "compensatable"},
         {"step_id": "capture-payment", "group": 3, "kind": "pivot"},
         {"step_id": "ship", "group": 4, "kind": "retriable"},
         {"step_id": "notify", "group": 4, "kind": "retriable"}]


def _event(kind: str, **data: Any) -> dict[str, Any]:
    return {"type": kind, "key": "e-1", "data": data}


def test_the_start_prints_the_shape() -> None:
    assert shape_line(SHAPE) == ("create-order → reserve-stock ∥ authorize-payment → "
                                 "capture-payment (pivot) → ship ∥ notify (retriable)")
    line = describe(_event("saga.execution.started", saga_id="fulfil", version="1.0.0",
                           steps=[s["step_id"] for s in SHAPE], shape=SHAPE))
    assert line == ("▶ fulfil 1.0.0: 6 steps: create-order → reserve-stock ∥ "
                    "authorize-payment → capture-payment (pivot) → ship ∥ notify (retriable)")


def test_a_group_is_named_once_per_phase_before_its_steps() -> None:
    headers = GroupHeaders()
    assert headers.header(_event("saga.execution.started", shape=SHAPE)) is None

    def step(step_id: str, group: int, phase: str = "action") -> dict[str, Any]:
        return _event("saga.step.succeeded", step_id=step_id, phase=phase,
                      step={"group": group})

    assert headers.header(step("create-order", 1)) is None  # a group of one
    assert headers.header(step("authorize-payment", 2)) == (
        "  ∥ group 2, running in parallel: reserve-stock, authorize-payment")
    assert headers.header(step("reserve-stock", 2)) is None
    assert headers.header(step("reserve-stock", 2, "compensation")) == (
        "  ∥ group 2, compensating in parallel: reserve-stock, authorize-payment")


def test_parking_and_retrying_forward_are_told() -> None:
    parked = describe(_event("saga.parked", status="PARKED", execution_error={
        "step_id": "ship", "type": "CarrierDown", "message": "no carrier"}))
    assert parked == ("  ⏸ parked after the pivot: ship CarrierDown: no carrier; retry it "
                      "forward (`saga executions retry-forward e-1`) or resolve it")
    assert describe(_event("saga.resumed", by="ops")) == "▶ retried forward by ops"


def test_an_unknown_outcome_says_the_step_will_be_undone() -> None:
    line = describe(_event("saga.step.outcome_unknown", step_id="book", attempt=2, error={
        "type": "Saga.OutcomeUnknown", "message": "no answer by its deadline"}))
    assert line == ("  ? book may have done its work (attempt 2): Saga.OutcomeUnknown: no "
                    "answer by its deadline; it will be compensated")
