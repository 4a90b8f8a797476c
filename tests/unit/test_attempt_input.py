"""Each attempt keeps the step's input as it was sent (its mapping resolved), failed or not,
bounded so its events stay publishable and storable; the read model folds it from the events."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.domain import event_types
from chalicelib.domain.lifecycle import Phase
from chalicelib.domain.step_context import RetryableError
from chalicelib.domain.storable import MAX_ATTEMPT_INPUT_DEPTH, kept_input
from tests.support.step_world import build_world


def _saga() -> dict[str, Any]:
    return {"id": "order", "name": "Order", "description": "input mapped per step",
            "version": "1.0.0", "steps": [
                {"id": "create", "name": "Create", "description": "the order", "order": 1,
                 "action": "create_order", "compensation": "cancel_order", "max_retries": 2,
                 "timeout": "10s"},
                {"id": "ship", "name": "Ship", "description": "the parcel", "order": 2,
                 "action": "ship", "compensation": "unship", "max_retries": 2,
                 "timeout": "10s", "input": {"sku": "$.input.sku",
                                             "order": "$.results.create.by"}}]}


def _busy(ctx: Any) -> None:
    raise RetryableError("carrier busy")


def test_each_attempt_keeps_what_it_was_sent_failed_or_not() -> None:
    world = build_world(_saga(), saga_input={"sku": "A-1", "note": "fragile"})
    world.deliver("create")
    world.actions.script["ship"] = _busy
    with pytest.raises(RetryableError):
        world.deliver("ship")
    world.actions.script.pop("ship")
    world.deliver("ship")
    sent = {"sku": "A-1", "order": "create_order"}
    assert [(a.attempt, a.outcome, a.input) for a in world.step("ship").attempts] == [
        (1, "failed", sent), (2, "succeeded", sent)]
    # A step without a mapping is sent the execution's input.
    assert world.step("create").attempts[0].input == {"sku": "A-1", "note": "fragile"}
    # The events say it too (the read model folds each attempt from them).
    shipped = [e["data"] for e in world.store.events if e["data"].get("step_id") == "ship"
               and e["type"] in (event_types.STEP_RETRIED, event_types.STEP_SUCCEEDED)]
    assert [data["input"] for data in shipped] == [sent, sent]
    # Its compensation is sent the same input, and keeps it.
    world.deliver("ship", Phase.COMPENSATION)
    undo = [a for a in world.step("ship").attempts if a.phase == Phase.COMPENSATION]
    assert [a.input for a in undo] == [sent]


def test_an_input_over_its_bounds_is_not_kept() -> None:
    small = {"sku": "A-1"}
    assert kept_input(small, max_bytes=100, max_depth=MAX_ATTEMPT_INPUT_DEPTH) == small
    assert kept_input({"pad": "x" * 200}, max_bytes=100,
                      max_depth=MAX_ATTEMPT_INPUT_DEPTH) is None
    deep: dict[str, Any] = {"leaf": 1}
    for _ in range(MAX_ATTEMPT_INPUT_DEPTH):
        deep = {"down": deep}
    assert kept_input(deep, max_bytes=10_000, max_depth=MAX_ATTEMPT_INPUT_DEPTH) is None


def test_executions_show_prints_what_each_steps_latest_attempt_was_sent() -> None:
    from infra.cli_service import _timeline

    world = build_world(_saga(), saga_input={"sku": "A-1", "note": "fragile"})
    world.deliver("create")
    world.deliver("ship")
    shown = _timeline(world.execution().model_dump(mode="json"))
    assert '       sent: {"order": "create_order", "sku": "A-1"}' in shown.splitlines()
    assert '       sent: {"note": "fragile", "sku": "A-1"}' in shown.splitlines()
