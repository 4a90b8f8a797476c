"""The late-action rule, with no server: an action whose outcome is unknown (cut at its
deadline, answered late, answered something that cannot be stored) is never taken for
"nothing happened". Its step is compensated, its compensation waits until no attempt can
still be in flight, attempt numbers only grow, and once an execution has ended a late writer
is logged, not recorded. Each test is a row of the issue that found it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from chalicelib.adapters.stepfunctions.compiler import compile_forward
from chalicelib.domain import event_types
from chalicelib.domain.lifecycle import (
    OUTCOME_UNKNOWN,
    OUTCOME_UNKNOWN_FINAL,
    ExecutionStatus,
    Outcome,
    Phase,
    StepStatus,
)
from chalicelib.domain.models import Step, StepDefinition
from chalicelib.domain.step_context import OutcomeUnknown, PermanentError, StepContext
from tests.support import asl_walk
from tests.support.step_world import PARTICIPANT, World, build_world
from tests.unit.test_compiler import TARGETS

MARGIN_S = 3
SAGA = {
    "id": "book", "name": "Book", "description": "reserve, pay", "version": "1.0.0",
    "steps": [
        {"id": "reserve", "name": "Reserve", "description": "stock", "order": 1,
         "action": "reserve_stock", "compensation": "release_stock", "max_retries": 0,
         "timeout": "10s"},
        {"id": "pay", "name": "Pay", "description": "a participant", "order": 2,
         "action": PARTICIPANT, "compensation": PARTICIPANT, "max_retries": 1,
         "timeout": "4s"},
    ]}


@pytest.fixture
def world() -> World:
    return build_world(SAGA, task_timeout_margin_s=MARGIN_S)


def _sent(world: World) -> list[StepContext]:
    """Every context the participant was sent, in order."""
    contexts: list[StepContext] = []
    previous = world.actions.script.get(PARTICIPANT)

    def keep(ctx: StepContext) -> None:
        contexts.append(ctx)
        if previous:
            previous(ctx)

    world.actions.script[PARTICIPANT] = keep
    return contexts


def _answers(world: World, *behaviours: Any) -> list[StepContext]:
    """The participant's action answers in turn: an exception to raise, or a result."""
    left = list(behaviours)
    sent: list[StepContext] = []

    def run(ctx: StepContext) -> Any:
        sent.append(ctx)
        if ctx.phase == Phase.ACTION and left:
            behaviour = left.pop(0)
            if isinstance(behaviour, Exception):
                raise behaviour
            if callable(behaviour):
                behaviour(ctx)

    world.actions.script[PARTICIPANT] = run
    return sent


def test_a_call_cut_at_its_deadline_is_retried_as_an_unknown_outcome(world: World) -> None:
    """Row 1 and 14: the step, not the engine, cuts the call; the retry is attempt 2."""
    world.deliver("reserve")
    sent = _answers(world, OutcomeUnknown("did not answer by its deadline"))
    with pytest.raises(OutcomeUnknown) as raised:
        world.deliver("pay")
    # Lambda reports the class name: the machines retry this one and catch it like a timeout.
    assert type(raised.value).__name__ == OUTCOME_UNKNOWN
    step = world.step("pay")
    assert step.status is StepStatus.OUTCOME_UNKNOWN and step.action_attempts == 1
    assert [(a.attempt, a.outcome, a.error_type) for a in step.attempts] == [
        (1, Outcome.UNKNOWN, OUTCOME_UNKNOWN)]
    assert sent[0].deadline == world.clock.wall + timedelta(seconds=4)
    assert world.events_of(event_types.STEP_RETRIED)[-1]["data"]["outcome"] == Outcome.UNKNOWN
    # The second attempt is numbered 2 and may succeed: then the step simply succeeded.
    assert world.deliver("pay")["status"] == "ok"
    assert [c.attempt for c in sent] == [1, 2]
    assert world.step("pay").status is StepStatus.SUCCEEDED
    assert world.step("pay").action_attempts == 2


def test_a_refusal_after_an_unknown_attempt_is_still_compensated(world: World) -> None:
    """Row 1 with retries: the first attempt may have committed, so the step's last failure
    does not make it 'did nothing': it stays unknown, and its own undo runs."""
    world.deliver("reserve")
    _answers(world, OutcomeUnknown("cut at the deadline"), PermanentError("answered 400"))
    with pytest.raises(OutcomeUnknown):
        world.deliver("pay")
    with pytest.raises(OutcomeUnknown) as raised:
        world.deliver("pay")
    assert type(raised.value).__name__ == OUTCOME_UNKNOWN_FINAL  # never retried
    step = world.step("pay")
    assert step.status is StepStatus.OUTCOME_UNKNOWN
    assert [a.outcome for a in step.attempts] == [Outcome.UNKNOWN, Outcome.UNKNOWN]
    assert world.event_types()[-1] == event_types.STEP_OUTCOME_UNKNOWN
    # The attempt keeps its own error; the step and the execution say why it is undone.
    assert step.attempts[-1].error_type == "PermanentError"
    error = world.execution().error
    assert error is not None and error.step_id == "pay" and error.type == OUTCOME_UNKNOWN
    assert "earlier attempt's outcome is unknown" in error.message


def test_the_compensation_waits_for_the_last_deadline_and_is_told_why(world: World) -> None:
    world.deliver("reserve")
    sent = _answers(world, OutcomeUnknown("no answer"), OutcomeUnknown("cut at the deadline"))
    for _ in range(2):  # max_retries 1: the second cut is the last
        with pytest.raises(OutcomeUnknown):
            world.deliver("pay")
    deadline = sent[1].deadline
    assert deadline is not None
    # The undo is delivered one second after the cut: it waits out the margin first.
    world.clock.sleep(1)
    world.deliver("pay", Phase.COMPENSATION)
    undo = sent[-1]
    assert undo.phase == Phase.COMPENSATION
    assert world.clock.wall >= deadline + timedelta(seconds=MARGIN_S)
    assert undo.action_result is None
    assert undo.action_error == {"type": OUTCOME_UNKNOWN, "message": "cut at the deadline"}
    assert world.step("pay").status is StepStatus.COMPENSATED


def test_an_action_answered_in_time_leaves_nothing_to_wait_for(world: World) -> None:
    """A success within the deadline is not in flight: its undo is sent at once, not after
    the deadline and margin (a 60 s step would otherwise hold every compensation a minute)."""
    world.deliver("reserve")
    sent = _answers(world, OutcomeUnknown("cut at the deadline"), lambda ctx: None)
    with pytest.raises(OutcomeUnknown):
        world.deliver("pay")
    world.clock.sleep(4 + MARGIN_S)  # the engine's retry comes once the Task timed out
    world.deliver("pay")
    assert world.step("pay").status is StepStatus.SUCCEEDED
    answered = world.clock.wall
    world.deliver("pay", Phase.COMPENSATION)
    assert sent[-1].phase == Phase.COMPENSATION
    assert world.clock.wall == answered  # no wait
    assert world.step("pay").status is StepStatus.COMPENSATED


def test_a_late_success_is_compensated_with_its_own_result(world: World) -> None:
    world.deliver("reserve")
    sent = _answers(world, OutcomeUnknown("answered after its deadline",
                                          result={"booking": "B-7"}))
    with pytest.raises(OutcomeUnknown):
        world.deliver("pay")
    assert world.step("pay").result == {"booking": "B-7"}
    retried = world.events_of(event_types.STEP_RETRIED)[-1]["data"]
    assert retried["result"] == {"booking": "B-7"} and retried["outcome"] == Outcome.UNKNOWN
    world.deliver("pay", Phase.COMPENSATION)
    assert sent[-1].action_result == {"booking": "B-7"}


@pytest.mark.parametrize(("answer", "why"), [
    ({"v": float("nan")}, "NaN"),
    (_deep := {"a": {}}, "nests"),
    ({"$set": 1, "a.b": 2}, "key"),
    ({"nul\u0000": 3}, "NUL"),
    ({"blob": "x" * 70_000}, "bytes"),
])
def test_an_answer_that_cannot_be_stored_is_an_unknown_outcome(
        world: World, answer: dict[str, Any], why: str) -> None:
    """Rows 2 and 6: the participant did its work; its answer cannot be kept, so the step is
    compensated, and the error names the problem, never a table."""
    if why == "nests":
        for _ in range(40):
            answer = {"a": answer}
    world.deliver("reserve")

    def odd(ctx: StepContext) -> Any:
        return answer

    world.actions.resolve = _returning(world, odd)  # type: ignore[method-assign]
    world.runtime.resolve_action = world.actions.resolve
    with pytest.raises(OutcomeUnknown, match=why):
        world.deliver("pay")
    step = world.step("pay")
    assert step.status is StepStatus.OUTCOME_UNKNOWN and step.result is None
    assert step.error is not None and "table" not in step.error["message"]


def _returning(world: World, answer: Any) -> Any:
    original = world.actions.resolve

    def resolve(name: str) -> Any:
        if name != PARTICIPANT:
            return original(name)
        return answer

    return resolve


@pytest.mark.parametrize("late", ["failure", "success"])
def test_once_the_execution_ended_a_late_attempt_is_logged_not_recorded(
        world: World, late: str) -> None:
    """Row 5: final is final; no event follows the execution's end event."""
    world.deliver("reserve")

    def meanwhile(ctx: StepContext) -> None:
        if ctx.phase != Phase.ACTION:
            return
        world.set_status(ExecutionStatus.COMPENSATED, {"pay": StepStatus.COMPENSATED})
        if late == "failure":
            raise PermanentError("answered 400 after its Task had given up")

    world.actions.script[PARTICIPANT] = meanwhile
    ended = world.event_types()
    with pytest.raises(PermanentError):  # StepAborted is one
        world.deliver("pay")
    assert world.event_types() == ended
    step = world.step("pay")
    assert step.status is StepStatus.COMPENSATED and step.attempts == []


def test_the_last_undo_skipped_while_running_fails_the_execution(world: World) -> None:
    """Row 4: nothing was compensated (the only step failed for good): the chain's end must
    not leave the execution RUNNING."""
    world.actions.script["reserve_stock"] = _raise(PermanentError("no stock"))
    with pytest.raises(PermanentError):
        world.deliver("reserve")
    assert world.deliver("reserve", Phase.COMPENSATION, last=True)["skipped"]
    assert world.execution().status is ExecutionStatus.FAILED
    assert world.event_types()[-1] == event_types.SAGA_FAILED


def _raise(error: Exception) -> Any:
    def run(ctx: StepContext) -> None:
        raise error

    return run


@pytest.mark.parametrize("how", ["timeout", "unknown", "unknown-final"])
def test_a_step_whose_outcome_is_unknown_is_undone_itself(how: str) -> None:
    steps = [Step.of(StepDefinition.model_validate(step)) for step in SAGA["steps"]]
    machine = compile_forward(steps, TARGETS)
    visited = asl_walk.walk(machine, {"step:pay": how}).visited
    assert visited[-3:] == ["undo:pay", "undo:reserve", "Compensated"]
    # A plain failure of the same step starts the undo at the step before.
    assert asl_walk.walk(machine, {"step:pay": "error"}).visited[-2:] == [
        "undo:reserve", "Compensated"]
