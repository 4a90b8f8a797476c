"""Child steps in milliseconds: the child's id, the decisions on its status, the definition
rules (a cycle, a pivot, a missing saga), the machines the compiler writes for them, and the
recorder's Tasks (chalicelib.usecases.steps.children) through the in-memory step ledger."""

from __future__ import annotations

import re
from typing import Any

import pytest

from chalicelib.adapters.stepfunctions.child_runs import StepFunctionsChildRuns
from chalicelib.adapters.stepfunctions.compiler import compile_compensation, compile_forward
from chalicelib.domain import event_types
from chalicelib.domain.children import (
    MAX_CHILD_ID,
    ChildMove,
    child_execution_id,
    find_cycle,
    on_settle,
    on_start,
    on_undo,
    on_undone,
)
from chalicelib.domain.decisions import StepRequest
from chalicelib.domain.executions import ParentRef
from chalicelib.domain.lifecycle import ExecutionStatus, Phase, StepStatus
from chalicelib.domain.models import SagaDefinition, Step
from chalicelib.domain.step_context import OutcomeUnknown, PermanentError
from chalicelib.domain.validation import DefinitionInvalid, ValidationPolicy, validate_definition
from chalicelib.testing import InMemoryDefinitionStore, InMemoryExecutionStore, ScriptedEngine
from chalicelib.usecases.definitions import DefinitionService, Limits
from chalicelib.usecases.ports import Actor
from chalicelib.usecases.steps.children import ChildRunner, ChildRunning
from tests.support import asl_walk
from tests.support.step_world import World, build_world
from tests.unit.test_compiler_groups import TARGETS

ACTOR = Actor("ops")
PARENT_MACHINE = "arn:aws:states:eu-west-1:123456789012:stateMachine:test-order-r1"
SAFE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?")


def _step(step_id: str, order: int, **extra: Any) -> dict[str, Any]:
    return {"id": step_id, "name": step_id.title(), "description": f"the {step_id} step",
            "order": order, "action": f"do_{step_id}", "compensation": f"undo_{step_id}",
            "max_retries": 0, "timeout": "10s", **extra}


def _child(step_id: str, order: int, saga: str, **extra: Any) -> dict[str, Any]:
    return {"id": step_id, "name": step_id.title(), "description": f"the {step_id} step",
            "order": order, "saga": saga, **extra}


def _saga(saga_id: str, steps: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"id": saga_id, "name": saga_id.title(), "description": f"the {saga_id} saga",
            "version": "1.0.0", "steps": steps, **extra}


# -- the child's id --------------------------------------------------------------------------

@pytest.mark.parametrize(("parent", "step"), [
    ("e1", "pay"), ("a" * 64, "b" * 100), ("x.y_z-1", "pay.now"), ("9" * 64, "s")])
def test_a_child_id_is_derived_safe_and_short_enough_for_every_run_name(
        parent: str, step: str) -> None:
    child = child_execution_id(parent, step)
    assert child == child_execution_id(parent, step)
    assert len(child) <= MAX_CHILD_ID and SAFE.fullmatch(child), child
    # The longest run name made from it (a compensation's) fits Step Functions' 80.
    assert len(f"{child}-c12345678") <= 80


def test_child_ids_differ_by_parent_step_and_round() -> None:
    ids = {child_execution_id("e1", "pay"), child_execution_id("e2", "pay"),
           child_execution_id("e1", "pay2"), child_execution_id("e1", "pay", 3),
           child_execution_id("E1", "pay")}
    assert len(ids) == 5
    # Ids the readable part cannot tell apart are told apart by the hash.
    assert child_execution_id("a.b", "c") != child_execution_id("a-b", "c")


# -- decisions -------------------------------------------------------------------------------

S = ExecutionStatus


@pytest.mark.parametrize(("child", "start", "settle"), [
    (None, ChildMove.RUN, ChildMove.FAIL),
    (S.RUNNING, ChildMove.RUN, ChildMove.WAIT),
    (S.COMPLETED, ChildMove.SETTLE, ChildMove.SUCCEED),
    (S.COMPENSATING, ChildMove.SETTLE, ChildMove.WAIT),
    (S.COMPENSATED, ChildMove.SETTLE, ChildMove.FAIL),
    (S.FAILED, ChildMove.SETTLE, ChildMove.FAIL),
    (S.COMPENSATION_FAILED, ChildMove.SETTLE, ChildMove.FAIL),
    (S.TIMED_OUT, ChildMove.SETTLE, ChildMove.FAIL),
    (S.PARKED, ChildMove.SETTLE, ChildMove.FAIL)])
def test_the_forward_tasks_decide_on_the_childs_status(
        child: ExecutionStatus | None, start: ChildMove, settle: ChildMove) -> None:
    assert on_start(child) is start
    assert on_settle(child) is settle


@pytest.mark.parametrize(("child", "ours", "undo", "undone"), [
    (None, False, ChildMove.UNDONE, ChildMove.UNDONE),
    (S.RUNNING, False, ChildMove.WAIT, ChildMove.WAIT),
    (S.COMPLETED, False, ChildMove.BEGIN_UNDO, ChildMove.UNDONE),
    (S.COMPENSATING, True, ChildMove.RUN, ChildMove.WAIT),
    (S.COMPENSATING, False, ChildMove.WAIT, ChildMove.WAIT),
    (S.COMPENSATED, False, ChildMove.UNDONE, ChildMove.UNDONE),
    (S.FAILED, False, ChildMove.UNDONE, ChildMove.UNDONE),
    (S.COMPENSATION_FAILED, False, ChildMove.UNDO_FAILED, ChildMove.UNDO_FAILED)])
def test_the_undo_tasks_decide_on_the_childs_status(
        child: ExecutionStatus | None, ours: bool, undo: ChildMove, undone: ChildMove) -> None:
    assert on_undo(child, compensated_by_parent=ours) is undo
    assert on_undone(child) is undone


def test_a_cycle_is_found_through_other_sagas_and_a_walk_ends_by_itself() -> None:
    calls = {"b": ["c"], "c": ["a"], "d": ["d"]}
    assert find_cycle("a", ["b"], lambda saga: calls.get(saga, [])) == ["a", "b", "c", "a"]
    assert find_cycle("a", ["d"], lambda saga: calls.get(saga, [])) is None
    # An endless chain of sagas (never back to "a") is walked a bounded number of times.
    asked: list[str] = []
    assert find_cycle("a", ["s0"], lambda saga: asked.append(saga) or [
        f"s{int(saga[1:]) + 1}"]) is None
    assert len(asked) <= 1000


# -- definitions -----------------------------------------------------------------------------

def _violations(definition: dict[str, Any], **policy: Any) -> dict[str, str]:
    found = validate_definition(SagaDefinition.model_validate(definition),
                                ValidationPolicy(**policy))
    return {v.field: v.rule for v in found}


def test_a_child_step_takes_a_saga_and_none_of_an_action_steps_fields() -> None:
    assert _violations(_saga("order", [_step("reserve", 1), _child("pay", 2, "payment")])) == {}
    bad = {**_child("pay", 2, "payment"), "action": "charge", "compensation": "refund",
           "max_retries": 2, "for_each": "$.input.lines", "saga_version": "one"}
    assert _violations(_saga("order", [_step("reserve", 1), bad])) == {
        "steps[1].action": "child", "steps[1].compensation": "child",
        "steps[1].max_retries": "child", "steps[1].for_each": "child",
        "steps[1].saga_version": "format"}
    waiting = {**_child("pay", 2, "payment"), "kind": "wait"}
    assert _violations(_saga("order", [_step("reserve", 1), waiting]))["steps[1].kind"] == \
        "child"
    assert _violations(_saga("order", [_child("pay", 1, "no spaces!")])) == {
        "steps[0].saga": "charset"}
    assert _violations(_saga("order", [_step("a", 1, saga_version="1.0.0")])) == {
        "steps[0].saga_version": "child"}


def test_a_child_step_runs_alone_within_saga_max_wait_and_never_on_express() -> None:
    shared = _saga("order", [_step("reserve", 1), _child("pay", 1, "payment")])
    assert _violations(shared)["steps[1].order"] == "waiting_alone"
    long = _saga("order", [_child("pay", 1, "payment", timeout="2d")])
    assert _violations(long, max_wait_s=86400) == {"steps[0].timeout": "max_wait"}
    express = _saga("order", [_child("pay", 1, "payment")], workflow="express")
    assert _violations(express) == {"steps[0].saga": "workflow"}


def _service() -> DefinitionService:
    definitions = InMemoryDefinitionStore()
    return DefinitionService(definitions, ValidationPolicy(), Limits(20, 200),
                             executions=InMemoryExecutionStore(definitions),
                             engine=ScriptedEngine())


def _refused(service: DefinitionService, definition: dict[str, Any]) -> list[dict[str, Any]]:
    with pytest.raises(DefinitionInvalid) as refused:
        service.create(SagaDefinition.model_validate(definition), ACTOR)
    return [v.as_dict() for v in refused.value.violations]


def test_a_cycle_of_three_sagas_is_refused_naming_the_step() -> None:
    service = _service()
    service.create(SagaDefinition.model_validate(_saga("c", [_step("work", 1)])), ACTOR)
    service.create(SagaDefinition.model_validate(_saga("b", [_child("call-c", 1, "c")])),
                   ACTOR)
    service.create(SagaDefinition.model_validate(_saga("a", [_child("call-b", 1, "b")])),
                   ACTOR)
    # c's next version calls a: a -> b -> c -> a.
    [cycle] = _refused(service, {**_saga("c", [_step("work", 1), _child("call-a", 2, "a")]),
                                 "version": "1.1.0"})
    assert (cycle["field"], cycle["rule"]) == ("steps[1].saga", "cycle")
    assert "step call-a" in cycle["message"] and "c -> a -> b -> c" in cycle["message"]
    assert service.get("c").version == "1.0.0"  # nothing was stored
    [itself] = _refused(service, _saga("d", [_child("again", 1, "d")]))
    assert itself["rule"] == "cycle" and "step again" in itself["message"]


def test_a_compensatable_child_whose_saga_has_a_pivot_is_refused_but_allowed_as_retriable(
        ) -> None:
    service = _service()
    service.create(SagaDefinition.model_validate(_saga("payment", [
        _step("authorize", 1), {**_step("capture", 2, kind="pivot")}])), ACTOR)
    [pivot] = _refused(service, _saga("order", [_child("pay", 1, "payment")]))
    assert (pivot["field"], pivot["rule"]) == ("steps[0].kind", "child_pivot")
    assert "step pay" in pivot["message"] and "'capture'" in pivot["message"]
    stored = service.create(SagaDefinition.model_validate(_saga("order", [
        {**_step("reserve", 1), "kind": "pivot"},
        {**_child("pay", 2, "payment"), "kind": "retriable"}])), ACTOR)
    assert stored.step("pay") is not None


def test_a_child_of_a_saga_that_does_not_exist_is_refused() -> None:
    [missing] = _refused(_service(), _saga("order", [_child("pay", 1, "payment")]))
    assert (missing["field"], missing["rule"]) == ("steps[0].saga", "exists")
    service = _service()
    service.create(SagaDefinition.model_validate(_saga("payment", [_step("a", 1)])), ACTOR)
    [version] = _refused(service, _saga("order", [
        _child("pay", 1, "payment", saga_version="2.0.0")]))
    assert "at version 2.0.0" in version["message"]


# -- the machines ----------------------------------------------------------------------------

def _steps(*definitions: dict[str, Any]) -> list[Step]:
    saga = SagaDefinition.model_validate(_saga("order", list(definitions)))
    return [Step.of(step) for step in saga.steps]


ORDER = _steps(_step("reserve", 1), _child("pay", 2, "payment"), _step("ship", 3))


def test_the_forward_machine_starts_the_child_waits_for_it_and_settles_the_step() -> None:
    machine = compile_forward(ORDER, TARGETS)
    run = asl_walk.walk(machine, {}, answers={"step:pay": {
        "run": {"machine": "m", "name": "n", "input": {"execution_id": "n"}},
        "skipped": False}})
    assert run.end == "Completed"
    assert [name for name, _, _ in run.tasks] == [
        "step:reserve", "step:pay", "child:pay", "settle:pay", "step:ship", "RecordCompleted"]
    tasks = {name: params for name, params, _ in run.tasks}
    assert tasks["step:pay"]["child"] == "start"
    assert tasks["step:pay"]["machine"] == asl_walk.context_of()["StateMachine"]["Id"]
    assert tasks["child:pay"] == {"StateMachineArn": "m", "Name": "n",
                                  "Input": {"execution_id": "n"}}
    waited = machine["States"]["child:pay"]
    assert waited["Resource"] == "arn:aws:states:::states:startExecution.sync:2"
    assert waited["TimeoutSeconds"] == 3600 + 5  # the step's timeout (default 1h) + margin
    # A child that has ended already (a repeat) is settled without a run.
    again = asl_walk.walk(machine, {}, answers={"step:pay": {"run": None, "skipped": False}})
    assert "child:pay" not in [name for name, _, _ in again.tasks]
    assert again.end == "Completed"
    skipped = asl_walk.walk(machine, {}, answers={"step:pay": {"run": None, "skipped": True}})
    assert [name for name, _, _ in skipped.tasks][-2:] == ["step:ship", "RecordCompleted"]


def test_a_failed_child_undoes_the_step_and_then_the_ones_before_it() -> None:
    machine = compile_forward(ORDER, TARGETS)
    answers = {"step:pay": {"run": {"machine": "m", "name": "n", "input": {}},
                            "skipped": False},
               "undo:pay": {"run": {"machine": "u", "name": "n-u", "input": {}}}}
    failed = asl_walk.walk(machine, {"settle:pay": "permanent"}, answers=answers)
    assert [name for name, _, _ in failed.tasks][4:] == [
        "undo:pay", "undo-child:pay", "undone:pay", "undo:reserve"]
    assert failed.end == "Compensated"
    # A failure of start made no child: the undo starts before it.
    refused = asl_walk.walk(machine, {"step:pay": "permanent"}, answers=answers)
    assert [name for name, _, _ in refused.tasks][2:] == ["undo:reserve"]
    # A later failure undoes the completed child as a whole, in reverse order.
    later = asl_walk.walk(machine, {"step:ship": "error"}, answers=answers)
    assert [name for name, _, _ in later.tasks][5:] == [
        "undo:pay", "undo-child:pay", "undone:pay", "undo:reserve"]
    tasks = {name: params for name, params, _ in later.tasks}
    assert tasks["undo:pay"]["child"] == "undo" and tasks["undone:pay"]["child"] == "undone"
    assert tasks["undo-child:pay"]["StateMachineArn"] == "u"
    # Past the step's timeout, the step is settled as unknown, and undone.
    late = asl_walk.walk(machine, {"child:pay": "timeout", "expired:pay": "unknown-final"},
                         answers=answers)
    assert [name for name, _, _ in late.tasks][3:6] == ["expired:pay", "undo:pay",
                                                        "undo-child:pay"]


def test_the_compensation_machine_undoes_a_child_with_its_own_run() -> None:
    machine = compile_compensation(ORDER, TARGETS)
    run = asl_walk.walk(machine, {}, answers={
        "undo:pay": {"run": {"machine": "u", "name": "n-u", "input": {}}}})
    assert [name for name, _, _ in run.tasks] == [
        "undo:ship", "undo:pay", "undo-child:pay", "undone:pay", "undo:reserve"]
    assert machine["States"]["undo:pay"]["Parameters"]["skip_undone"] is True
    retried = machine["States"]["undo:pay"]["Retry"]
    assert any(r["ErrorEquals"] == ["Saga.ChildRunning"] and r["MaxAttempts"] == 10
               for r in retried)
    nothing = asl_walk.walk(machine, {}, answers={"undo:pay": {"run": None}})
    assert "undo-child:pay" not in [name for name, _, _ in nothing.tasks]


def test_the_child_runs_are_named_by_the_child_beside_the_parents_machine() -> None:
    runs = StepFunctionsChildRuns("test")
    store = InMemoryDefinitionStore()
    saga = store.insert_version(SagaDefinition.model_validate(_saga("payment", [
        _step("a", 1)])), expected_revision=None, actor=ACTOR, action="create")
    forward = runs.forward(saga, "e1.pay.0123", beside=PARENT_MACHINE)
    assert forward.machine.startswith("arn:aws:states:eu-west-1:123456789012:stateMachine:"
                                      "test-payment-")
    assert forward.machine.endswith("-r1")
    assert (forward.name, forward.input) == ("e1.pay.0123", {
        "execution_id": "e1.pay.0123", "error": None, "resume_at": ""})
    undo = runs.compensation(saga, "e1.pay.0123", beside=PARENT_MACHINE, error={"type": "X"})
    assert undo.machine == forward.machine + "-undo"
    assert undo.name == "e1.pay.0123-u" and undo.input["error"] == {"type": "X"}
    # An Express version runs forward on its Express machine (it has no Standard one unless
    # it can park); its compensation still runs on Standard.
    express = saga.model_copy(update={"workflow_type": "express"})
    assert runs.forward(express, "e1.pay.0123", beside=PARENT_MACHINE).machine == \
        forward.machine + "-express"
    assert runs.compensation(express, "e1.pay.0123", beside=PARENT_MACHINE,
                             error={}).machine == undo.machine


# -- the recorder's Tasks --------------------------------------------------------------------

class Family:
    """An order saga (e1) whose step pay runs the payment saga, in one in-memory world."""

    def __init__(self, *, max_depth: int = 5, payment_output: bool = True) -> None:
        payment = _saga("payment", [_step("authorize", 1, input={"amount": "$.input.amount"}),
                                    _step("capture", 2)])
        if payment_output:
            payment["output"] = {"paid": "$.input.amount"}
        self.world: World = build_world(_saga("order", [
            _step("reserve", 1), _child("pay", 2, "payment", input={"amount": "$.input.total"}),
            _step("ship", 3)]), saga_input={"total": 42})
        self.world.definitions.insert_version(SagaDefinition.model_validate(payment),
                                              expected_revision=None, actor=ACTOR,
                                              action="create")
        self.runner = ChildRunner(self.world.ledger, self.world.definitions,
                                  self.world.runtime.outcomes, StepFunctionsChildRuns("test"),
                                  self.world.clock.now, max_depth=max_depth)

    def task(self, task: str, **extra: Any) -> dict[str, Any]:
        phase = Phase.COMPENSATION if task in ("undo", "undone") else Phase.ACTION
        return self.runner.run(StepRequest.model_validate({
            "execution_id": "e1", "step_id": "pay", "phase": phase.value, "child": task,
            "machine": PARENT_MACHINE, **extra}))

    def child_id(self) -> str:
        return child_execution_id("e1", "pay")

    def finish_child(self, status: ExecutionStatus) -> None:
        """The child's machine ran: its steps succeeded, and it ended in `status`."""
        store = self.world.store
        child = store.get(self.child_id())
        assert child is not None
        child.status = status
        for step in child.steps:
            step.status = StepStatus.SUCCEEDED
            step.result = {"by": step.step_id}
        if status is ExecutionStatus.COMPLETED:
            child.output = {"paid": 42}
        store.put(child)


def test_start_makes_the_child_with_its_link_and_input_and_a_repeat_finds_it() -> None:
    family = Family()
    family.world.deliver("reserve")
    answer = family.task("start")
    child_id = family.child_id()
    assert answer["skipped"] is False and answer["run"]["name"] == child_id
    assert answer["run"]["machine"].startswith("arn:aws:states:eu-west-1:123456789012:")
    child = family.world.store.get(child_id)
    assert child is not None and child.status is ExecutionStatus.RUNNING
    assert (child.parent, child.depth, child.input) == (
        ParentRef(execution_id="e1", step_id="pay"), 1, {"amount": 42})
    assert [s.step_id for s in child.steps] == ["authorize", "capture"]
    pay = family.world.step("pay")
    assert (pay.status, pay.child, pay.action_attempts) == (StepStatus.RUNNING, child_id, 1)
    started = [e for e in family.world.store.events if e["key"] == child_id]
    assert [e["type"] for e in started] == [event_types.EXECUTION_STARTED]
    assert started[0]["data"]["parent"] == {"execution_id": "e1", "step_id": "pay"}
    assert started[0]["data"]["depth"] == 1
    # A repeated start (a retried Task) answers the same run, and makes nothing new.
    assert family.task("start") == answer
    assert len([e for e in family.world.store.events if e["key"] == child_id]) == 1
    assert family.world.step("pay").action_attempts == 1


def test_settle_gives_the_step_the_childs_output_or_its_steps_results() -> None:
    family = Family()
    family.world.deliver("reserve")
    family.task("start")
    with pytest.raises(ChildRunning):
        family.task("settle")
    family.finish_child(ExecutionStatus.COMPLETED)
    assert family.task("settle") == {"status": "SUCCEEDED", "child": family.child_id()}
    pay = family.world.step("pay")
    assert (pay.status, pay.result) == (StepStatus.SUCCEEDED, {"paid": 42})
    assert family.task("settle") == {"status": "SUCCEEDED"}  # a repeat
    assert family.task("start") == {"run": None, "skipped": False}
    # A child saga with no output mapping: its steps' results by step id.
    bare = Family(payment_output=False)
    bare.world.deliver("reserve")
    bare.task("start")
    bare.finish_child(ExecutionStatus.COMPLETED)
    child = bare.world.store.get(bare.child_id())
    assert child is not None
    child.output = None
    bare.world.store.put(child)
    bare.task("settle")
    assert bare.world.step("pay").result == {"steps": {"authorize": {"by": "authorize"},
                                                       "capture": {"by": "capture"}}}


def test_a_child_that_ended_unfinished_fails_the_step_for_good() -> None:
    family = Family()
    family.world.deliver("reserve")
    family.task("start")
    family.finish_child(ExecutionStatus.COMPENSATED)
    with pytest.raises(PermanentError, match="ended COMPENSATED") as failed:
        family.task("settle")
    assert failed.value.error_type == "ChildSagaFailed"
    pay = family.world.step("pay")
    assert pay.status is StepStatus.FAILED and pay.error["type"] == "ChildSagaFailed"
    assert family.world.execution().error is not None
    assert family.world.execution().error.step_id == "pay"


def test_a_child_still_running_past_the_steps_timeout_makes_its_outcome_unknown() -> None:
    family = Family()
    family.world.deliver("reserve")
    family.task("start")
    with pytest.raises(Exception, match="had not ended") as late:
        family.task("expired")
    assert late.value.__class__.__name__ == "Saga.OutcomeUnknownFinal" or isinstance(
        late.value, OutcomeUnknown)
    assert family.world.step("pay").status is StepStatus.OUTCOME_UNKNOWN


def test_a_child_deeper_than_the_limit_fails_the_step_before_it_is_made() -> None:
    family = Family(max_depth=1)
    parent = family.world.execution()
    parent.depth = 1
    family.world.store.put(parent)
    family.world.deliver("reserve")
    with pytest.raises(PermanentError, match=r"saga\.max_child_depth") as refused:
        family.task("start")
    assert refused.value.error_type == "ChildDepthExceeded"
    assert family.world.store.get(family.child_id()) is None
    assert family.world.step("pay").status is StepStatus.FAILED


def test_undo_compensates_a_completed_child_once_and_waits_for_one_still_running() -> None:
    family = Family()
    family.world.deliver("reserve")
    family.task("start")
    # The parent stopped waiting while the child runs: the undo waits for it to end.
    with pytest.raises(ChildRunning):
        family.task("undo")
    family.finish_child(ExecutionStatus.COMPLETED)
    family.task("settle")
    answer = family.task("undo")
    assert answer["run"]["name"] == f"{family.child_id()}-u"
    assert answer["run"]["machine"].endswith("-undo")
    child = family.world.store.get(family.child_id())
    assert child is not None and child.status is ExecutionStatus.COMPENSATING
    assert child.error is not None and child.error.type == "ParentCompensates"
    moved = [e["type"] for e in family.world.store.events if e["key"] == family.child_id()]
    assert moved[-1] == event_types.COMPENSATION_STARTED
    # A repeat answers the same run (the child is being undone at its parent's request).
    assert family.task("undo") == answer
    assert moved == [e["type"] for e in family.world.store.events
                     if e["key"] == family.child_id()]
    with pytest.raises(ChildRunning):
        family.task("undone")
    child.status = ExecutionStatus.COMPENSATED
    family.world.store.put(child)
    assert family.task("undone") == {"status": "undone"}
    assert family.world.step("pay").status is StepStatus.COMPENSATED
    assert family.world.execution().status is ExecutionStatus.COMPENSATING


def test_a_childs_failed_compensation_fails_the_steps() -> None:
    family = Family()
    family.world.deliver("reserve")
    family.task("start")
    family.finish_child(ExecutionStatus.COMPLETED)
    family.task("settle")
    family.task("undo")
    child = family.world.store.get(family.child_id())
    assert child is not None
    child.status = ExecutionStatus.COMPENSATION_FAILED
    family.world.store.put(child)
    with pytest.raises(PermanentError, match="compensation failed"):
        family.task("undone")
    assert family.world.step("pay").status is StepStatus.COMPENSATION_FAILED


# -- around the child: faults, verify ----------------------------------------------------

def test_a_fault_aimed_at_a_child_step_is_refused() -> None:
    from chalicelib.domain.errors import BadRequest
    from chalicelib.domain.requests import ExecuteRequest
    from chalicelib.testing import InMemoryReadModel
    from chalicelib.usecases.executions import ExecutionPolicy, ExecutionService

    store = InMemoryDefinitionStore()
    for definition in (_saga("payment", [_step("authorize", 1)]),
                       _saga("order", [_step("reserve", 1), _child("pay", 2, "payment")])):
        store.insert_version(SagaDefinition.model_validate(definition), expected_revision=None,
                             actor=ACTOR, action="create")
    service = ExecutionService(store, InMemoryExecutionStore(store), ScriptedEngine(),
                               ExecutionPolicy(faults_enabled=True, max_input_bytes=10_000),
                               InMemoryReadModel())
    with pytest.raises(BadRequest, match="runs saga 'payment'") as refused:
        service.execute("order", ExecuteRequest.model_validate(
            {"input": {}, "faults": [{"step_id": "pay", "error": "Boom"}]}), ACTOR)
    assert "faults.0.step_id" in str(refused.value)


def test_verify_leaves_a_child_step_to_its_own_saga_and_expects_it_undone() -> None:
    from infra.verify.plan import plan

    cases, skipped = plan(ORDER, retriable_max_attempts=3, task_timeout_margin_s=5)
    assert [(s.step_id, s.reason) for s in skipped] == [
        ("pay", "a child step: verify saga payment on its own")]
    ship_fails = next(c for c in cases if c.name == "ship fails for good")
    assert ship_fails.undone == frozenset({"reserve", "pay"})
    assert not any("pay" in c.name for c in cases)


@pytest.mark.parametrize("value", ["0", "21"])
def test_saga_max_child_depth_out_of_range_is_refused_and_reaches_the_runner(value: str) -> None:
    from pydantic import ValidationError

    from chalicelib.config import load_settings
    from chalicelib.roots.step_wiring import StepContainer

    with pytest.raises(ValidationError, match="max_child_depth"):
        load_settings(environ={"SAGA__SAGA__MAX_CHILD_DEPTH": value})
    settings = load_settings(environ={"SAGA__SAGA__MAX_CHILD_DEPTH": "2"})
    assert StepContainer(settings).child_runner.max_depth == 2
    assert load_settings(environ={}).saga.max_child_depth == 5
