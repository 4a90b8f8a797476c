"""Conditions and fan-outs in the step runtime, through the in-memory step ledger: a false
condition skips its step (recorded, with its event, never undone), a fan-out starts its items,
stops starting new ones past its tolerance, gathers their results in order, and lists for its
undo exactly the items that may have acted."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.domain import event_types
from chalicelib.domain.decisions import StepRequest
from chalicelib.domain.lifecycle import ExecutionStatus, Phase, StepStatus
from chalicelib.domain.step_context import PermanentError
from chalicelib.usecases.steps.fanouts import FanOutRunner
from tests.support.step_world import World, build_world

LINES = [{"sku": f"sku-{n}", "qty": n} for n in range(1, 6)]


def _saga(**reserve: Any) -> dict[str, Any]:
    return {"id": "order", "name": "Order", "description": "branch and fan out",
            "version": "1.0.0", "steps": [
                {"id": "create", "name": "Create", "description": "the order", "order": 1,
                 "action": "create_order", "compensation": "cancel_order", "max_retries": 0,
                 "timeout": "10s"},
                {"id": "ship", "name": "Ship", "description": "physical goods", "order": 2,
                 "action": "ship", "compensation": "unship", "max_retries": 0,
                 "timeout": "10s", "when": '$.input.kind != "digital" and '
                                           "$.results.create.by == \"create_order\""},
                {"id": "reserve", "name": "Reserve", "description": "each line", "order": 3,
                 "action": "reserve", "compensation": "release", "max_retries": 0,
                 "timeout": "10s", "for_each": "$.input.lines", "max_concurrency": 2,
                 "input": {"sku": "$.item.sku", "shipped": "$.results.ship.by"},
                 **reserve}]}


def _world(kind: str = "digital", **reserve: Any) -> tuple[World, FanOutRunner]:
    world = build_world(_saga(**reserve), saga_input={"kind": kind, "lines": LINES})
    fanouts = FanOutRunner(world.ledger, world.definitions, world.runtime.outcomes,
                           world.clock.now, max_items=100, max_concurrency=40)
    return world, fanouts


def _fanout(fanouts: FanOutRunner, task: str, **extra: Any) -> dict[str, Any]:
    phase = Phase.ACTION if task in ("expand", "gather") else Phase.COMPENSATION
    return fanouts.run(StepRequest.model_validate({
        "execution_id": "e1", "step_id": "reserve", "phase": phase.value, "fanout": task,
        **extra}))


def test_a_false_condition_skips_its_step_with_what_it_read() -> None:
    world, _ = _world("digital")
    world.deliver("create")
    answer = world.deliver("ship")
    assert answer == {"status": "SKIPPED", "skipped": True}
    ship = world.step("ship")
    assert ship.status is StepStatus.SKIPPED and ship.action_attempts == 0
    assert ship.condition == {"when": _saga()["steps"][1]["when"], "value": False,
                              "operands": {"$.input.kind": "digital"}}
    assert world.actions.ran("ship") == 0
    [skipped] = world.events_of(event_types.STEP_SKIPPED)
    assert skipped["data"]["condition"] == ship.condition
    assert skipped["data"]["step"]["status"] == "SKIPPED"
    # A repeated delivery is told again, and its undo does nothing.
    assert world.deliver("ship") == {"status": "SKIPPED", "duplicate": True}
    assert world.deliver("ship", Phase.COMPENSATION)["skipped"] is True
    assert world.actions.ran("unship") == 0


def test_a_true_condition_runs_its_step() -> None:
    world, _ = _world("physical")
    world.deliver("create")
    assert world.deliver("ship")["status"] == "ok"
    assert world.step("ship").status is StepStatus.SUCCEEDED
    assert world.step("ship").condition is None


def test_a_condition_that_meets_the_wrong_type_fails_its_step_for_good() -> None:
    bad = {**_saga()["steps"][1], "when": "$.input.kind > \"a\""}
    world = build_world({**_saga(), "steps": [_saga()["steps"][0], bad]},
                        saga_input={"kind": 3})
    world.deliver("create")
    with pytest.raises(PermanentError, match="ship's condition"):
        world.deliver("ship")
    assert world.step("ship").status is StepStatus.FAILED


def test_a_fanout_starts_its_items_and_gathers_their_results_in_order() -> None:
    world, fanouts = _world("digital")
    world.deliver("create")
    world.deliver("ship")
    assert _fanout(fanouts, "expand") == {"items": [0, 1, 2, 3, 4]}
    assert world.step("reserve").status is StepStatus.RUNNING
    assert world.step("reserve").fanout == {"items": 5, "max_concurrency": 2, "tolerated": 0}
    assert [s.step_id for s in world.execution().steps][-5:] == [
        f"reserve[{n}]" for n in range(5)]
    for index in reversed(range(5)):
        assert world.deliver("reserve", item=index)["status"] == "ok"
    # Each item got its own element; a skipped step's result is left out of the input.
    calls = [ctx for ctx in world.actions.contexts if ctx.step_id.startswith("reserve[")]
    assert {ctx.step_id: (ctx.item["value"]["sku"], dict(ctx.saga_input)) for ctx in calls} == {
        f"reserve[{n}]": (f"sku-{n + 1}", {"sku": f"sku-{n + 1}"}) for n in range(5)}
    assert len({ctx.idempotency_key for ctx in calls}) == 5
    assert _fanout(fanouts, "gather") == {"status": "SUCCEEDED", "items": 5}
    reserve = world.step("reserve")
    assert reserve.status is StepStatus.SUCCEEDED
    assert [item["attempt"] for item in reserve.result["items"]] == [1] * 5
    # A repeated expand gives the same items and adds none.
    assert _fanout(fanouts, "expand") == {"items": [0, 1, 2, 3, 4]}
    assert len(world.execution().steps) == 3 + 5
    assert event_types.STEP_FANNED_OUT in world.event_types()


def test_past_its_tolerance_a_fanout_starts_no_new_item_and_undoes_what_acted() -> None:
    world, fanouts = _world("digital", tolerated_failures=1)
    world.deliver("create")
    world.deliver("ship")
    _fanout(fanouts, "expand")
    world.deliver("reserve", item=0)
    world.actions.script["reserve"] = _refuse
    for index in (1, 2):
        with pytest.raises(PermanentError):
            world.deliver("reserve", item=index)
    assert world.execution().error is None  # an item does not decide the saga's end
    world.actions.script.pop("reserve")
    # Two failures, one tolerated: no new item starts.
    assert world.deliver("reserve", item=3) == {"status": "PENDING", "skipped": True}
    assert world.step("reserve[3]").status is StepStatus.PENDING
    with pytest.raises(Exception, match="2 of 5 items failed for good; 1 tolerated; 2 never "
                                        "started"):
        _fanout(fanouts, "gather")
    reserve = world.step("reserve")
    assert reserve.status is StepStatus.FAILED and reserve.error["type"] == "FanOutFailed"
    assert world.execution().error.step_id == "reserve"
    assert _fanout(fanouts, "undo-items") == {"items": [0]}
    world.deliver("reserve", Phase.COMPENSATION, item=0)
    assert world.step("reserve[0]").status is StepStatus.COMPENSATED
    [release] = [ctx for ctx in world.actions.contexts if ctx.phase == Phase.COMPENSATION]
    assert release.action_result == {"by": "reserve", "attempt": 1}
    assert _fanout(fanouts, "undone") == {"status": "undone"}


def test_the_undo_of_a_completed_fanout_compensates_the_step_and_can_end_the_saga() -> None:
    world, fanouts = _world("digital")
    world.deliver("create")
    world.deliver("ship")
    _fanout(fanouts, "expand")
    for index in range(5):
        world.deliver("reserve", item=index)
    _fanout(fanouts, "gather")
    world.set_status(ExecutionStatus.COMPENSATING)
    assert _fanout(fanouts, "undo-items", skip_undone=True) == {"items": [0, 1, 2, 3, 4]}
    for index in range(5):
        world.deliver("reserve", Phase.COMPENSATION, item=index, skip_undone=True)
    _fanout(fanouts, "undone", last=True)
    assert world.step("reserve").status is StepStatus.COMPENSATED
    assert world.execution().status is ExecutionStatus.COMPENSATED


def test_a_fanout_over_what_is_not_a_list_fails_for_good() -> None:
    world = build_world(_saga(), saga_input={"kind": "digital", "lines": {"a": 1}})
    fanouts = FanOutRunner(world.ledger, world.definitions, world.runtime.outcomes,
                           world.clock.now, max_items=100, max_concurrency=40)
    with pytest.raises(PermanentError, match="is an object, not a list"):
        _fanout(fanouts, "expand")


def test_an_items_result_over_its_share_of_one_event_fails_the_item_for_good() -> None:
    # So many items allowed that an item's even share of an event is 1 byte: the items' answer
    # ({"by": ..., "attempt": ...}) is over it, while the same answer is fine for a plain step.
    world = build_world(_saga(), saga_input={"kind": "digital", "lines": LINES},
                        max_fanout_items=200_000)
    fanouts = FanOutRunner(world.ledger, world.definitions, world.runtime.outcomes,
                           world.clock.now, max_items=100, max_concurrency=40)
    assert world.deliver("create")["status"] == "ok"
    world.deliver("ship")
    _fanout(fanouts, "expand")
    with pytest.raises(PermanentError, match=r"reserve\[0\]'s result is \d+ bytes; the limit "
                                             r"is 1 \(config saga.max_result_bytes, shared by "
                                             r"saga.max_fanout_items items\)"):
        world.deliver("reserve", item=0)
    item = world.step("reserve[0]")
    assert item.status is StepStatus.FAILED and item.result is None
    assert world.step("create").result == {"by": "create_order", "attempt": 1}


def _refuse(ctx: Any) -> None:
    raise PermanentError("no stock")
