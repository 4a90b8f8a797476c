"""An approval's record, driven through the in-memory step ledger: its wait says it is an
approval and carries what the person decides on (the step's input as its mapping resolved,
bounded), the waiting event carries the same, a mapping that cannot resolve fails the step
for good as it would a participant's, and a rejection's comment is the execution's error,
as written, with who gave it."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.domain import event_types
from chalicelib.domain.callbacks import wait_input
from chalicelib.domain.executions import Execution, ExecutionError, execution_error
from chalicelib.domain.lifecycle import StepStatus
from chalicelib.domain.requests import FailRequest, SucceedRequest
from chalicelib.domain.step_context import PermanentError
from chalicelib.testing.orchestrator import ScriptedEngine
from chalicelib.usecases.steps.callbacks import CallbackService, Caller
from chalicelib.usecases.steps.revisions import StepDefinitions
from tests.support.step_world import World, build_world


def _saga(approval_input: dict[str, Any] | None) -> dict[str, Any]:
    approve: dict[str, Any] = {"id": "approve", "name": "Manager approval",
                               "description": "A manager approves the refund", "order": 2,
                               "kind": "callback", "timeout": "1h"}
    if approval_input is not None:
        approve["input"] = approval_input
    return {"id": "refund", "name": "Refund", "description": "reserve, approve",
            "version": "1.0.0", "steps": [
                {"id": "reserve", "name": "Reserve", "description": "stock", "order": 1,
                 "action": "reserve_stock", "compensation": "release_stock",
                 "max_retries": 0, "timeout": "30s"},
                approve]}


INPUT = {"customer": "c-1", "amount": "25.00", "notes": ["urgent"]}


def _waiting_approval(world: World) -> str:
    world.deliver("reserve")
    answer = world.deliver("approve", task_token="token-of-approve")
    assert answer["result"]["status"] == StepStatus.WAITING.value
    return str(answer["result"]["callback_id"])


def _service(world: World, engine: ScriptedEngine) -> CallbackService:
    return CallbackService(world.ledger, engine, world.runtime.outcomes,
                           StepDefinitions(world.definitions), clock=world.clock.now)


def test_an_approval_waits_with_what_the_person_decides_on() -> None:
    world = build_world(_saga({"who": "$.input.customer", "amount": "$.input.amount",
                               "reserved": "$.results.reserve.by", "fixed": 3}),
                        saga_input=INPUT)
    _waiting_approval(world)
    waiting = world.step("approve").waiting
    decided_on = {"who": "c-1", "amount": "25.00", "reserved": "reserve_stock", "fixed": 3}
    assert waiting is not None and waiting.approval is True
    assert waiting.input == decided_on
    # The waiting event carries the step's record with it, for the read model.
    [event] = world.events_of(event_types.STEP_WAITING)
    record = event["data"]["step"]["waiting"]
    assert (record["approval"], record["input"]) == (True, decided_on)
    assert world.actions.calls[-1][0] == "reserve_stock"  # nobody else was called


def test_an_approval_without_a_mapping_decides_on_the_execution_input() -> None:
    world = build_world(_saga(None), saga_input=INPUT)
    _waiting_approval(world)
    waiting = world.step("approve").waiting
    assert waiting is not None and (waiting.approval, waiting.input) == (True, INPUT)


def test_a_callback_with_an_action_is_no_approval() -> None:
    from tests.unit.test_waits import SAGA, TOKEN

    world = build_world(SAGA)
    world.deliver("reserve")
    world.deliver("confirm", task_token=TOKEN)
    waiting = world.step("confirm").waiting
    # Not an approval; its wait keeps what the call was sent (no mapping: the execution's
    # input), for the attempt recorded when the callback is completed.
    sent = dict(world.execution().input)
    assert waiting is not None and (waiting.approval, waiting.input) == (False, sent)


def test_an_approval_whose_mapping_cannot_resolve_fails_for_good() -> None:
    world = build_world(_saga({"who": "$.input.nobody"}), saga_input=INPUT)
    world.deliver("reserve")
    with pytest.raises(PermanentError, match="nobody"):
        world.deliver("approve", task_token="token-of-approve")
    step = world.step("approve")
    assert step.status is StepStatus.FAILED and step.waiting is None
    assert not world.store.callbacks  # rolled back with the attempt: nothing to complete


def test_an_input_too_large_to_carry_is_left_to_the_execution() -> None:
    assert wait_input({"a": "x" * 10}, 100) == {"a": "x" * 10}
    assert wait_input({"a": "x" * 100}, 100) is None
    world = build_world(_saga({"copy": "$.input", "again": "$.input"}),
                        saga_input={"blob": "y" * 3000}, max_result_bytes=4096)
    _waiting_approval(world)
    waiting = world.step("approve").waiting
    assert waiting is not None and waiting.approval is True and waiting.input is None


def test_an_approval_approved_keeps_its_wait_and_says_who() -> None:
    world = build_world(_saga({"amount": "$.input.amount"}), saga_input=INPUT)
    callback_id = _waiting_approval(world)
    engine = ScriptedEngine()
    engine.waiting.add("token-of-approve")
    _service(world, engine).succeed(
        callback_id, SucceedRequest(result={"approved": True, "comment": "fine"}),
        Caller(subject="alice"))
    step = world.step("approve")
    assert step.status is StepStatus.SUCCEEDED
    assert step.result == {"approved": True, "comment": "fine"}
    assert step.waiting is not None and step.waiting.completed_by == "caller:alice"
    assert (step.waiting.approval, step.waiting.input) == (True, {"amount": "25.00"})


# Slashes, a URL with a query, a second line: what a person writes, not a traceback.
COMMENT = "No: the 50/50 split breaks policy, see https://wiki.example/refunds?id=7\nAsk Bob."


def test_a_rejection_is_the_executions_error_with_the_comment_as_written() -> None:
    world = build_world(_saga(None), saga_input=INPUT)
    callback_id = _waiting_approval(world)
    engine = ScriptedEngine()
    engine.waiting.add("token-of-approve")
    _service(world, engine).fail(callback_id, FailRequest(error="Rejected", reason=COMMENT),
                                 Caller(subject="bob"))
    execution = world.execution()
    assert execution.error is not None
    assert execution.error.model_dump() == {"step_id": "approve", "phase": "action",
                                            "type": "Rejected", "message": COMMENT,
                                            "by": "caller:bob"}
    assert world.step("approve").error == {"type": "Rejected", "message": COMMENT}
    waiting = world.step("approve").waiting
    assert waiting is not None and waiting.completed_by == "caller:bob"
    # Read back (the write model's row, the read model's document), it stays as written.
    again = Execution.model_validate(execution.model_dump(mode="json"))
    assert again.error == execution.error


def test_other_errors_are_still_cleaned_and_keep_their_four_fields() -> None:
    cleaned = execution_error("s", "action", "Boom", "Traceback (most recent call last)\n"
                              'File "/var/task/app.py", line 3\nit broke in /var/task/x.py')
    assert cleaned == {"step_id": "s", "phase": "action", "type": "Boom",
                       "message": "it broke in <path>"}
    assert ExecutionError.model_validate(cleaned).model_dump() == cleaned
    # A stored error without `by` is cleaned when read, as before.
    raw = {"step_id": "s", "phase": "action", "type": "Boom", "message": "see /etc/x/y"}
    assert ExecutionError.model_validate(raw).message == "see <path>"
