"""A saga's deadline: validated against saga.max_wait, run beside the forward path in one
Parallel state of the forward machine (walked by tests/support/asl_walk.py), and decided by
the recorder under the execution's lock (DeadlineKeeper, over the in-memory step ledger)."""

from __future__ import annotations

import copy
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from chalicelib.adapters.stepfunctions.compiler import (
    DEADLINE_STATE,
    Deadline,
    compile_forward,
)
from chalicelib.config import load_settings
from chalicelib.domain import event_types
from chalicelib.domain.errors import Conflict
from chalicelib.domain.lifecycle import (
    DEADLINE,
    DEADLINE_PASSED,
    END_OF,
    FORWARD_ENDED,
    HANDED_OFF,
    DeadlineVerdict,
    ExecutionStatus,
    StepStatus,
)
from chalicelib.domain.models import Step, StepDefinition
from chalicelib.domain.requests import SucceedRequest
from chalicelib.domain.step_context import StepContext
from chalicelib.domain.validation import ValidationPolicy, parse_definition, validate_definition
from chalicelib.testing.orchestrator import ScriptedEngine
from chalicelib.usecases.steps.callbacks import CallbackService, Caller
from chalicelib.usecases.steps.deadlines import DeadlineKeeper
from chalicelib.usecases.steps.revisions import StepDefinitions
from tests.support import asl_walk
from tests.support.step_world import PARTICIPANT, World, build_world
from tests.unit.test_compiler_groups import TARGETS

POLICY = ValidationPolicy.from_settings(load_settings(environ={}).saga)
UNDO_MACHINE = "arn:aws:states:us-east-1:000000000000:stateMachine:s-r1-undo"
SAGA: dict[str, Any] = {
    "id": "order", "name": "Order", "description": "reserve, then wait for the provider",
    "version": "1.0.0", "deadline": "8s",
    "steps": [
        {"id": "reserve", "name": "Reserve", "description": "reserve the stock", "order": 1,
         "action": "reserve_stock", "compensation": "release_stock", "max_retries": 0,
         "timeout": "30s"},
        {"id": "confirm", "name": "Confirm", "description": "the provider confirms",
         "order": 2, "kind": "callback", "action": PARTICIPANT, "compensation": PARTICIPANT,
         "timeout": "60s", "call_timeout": "10s"},
    ]}


# -- validation ------------------------------------------------------------------------------

@pytest.mark.parametrize(("deadline", "rule"), [
    ("8s", None), ("24h", None), ("30d", None),
    ("soon", "format"), ("500ms", "min"), ("31d", "max_wait"), ("", "format")])
def test_a_deadline_is_a_duration_within_saga_max_wait(deadline: str, rule: str | None) -> None:
    found = {(v.field, v.rule) for v in validate_definition(
        parse_definition({**SAGA, "deadline": deadline}), POLICY)}
    assert found == (set() if rule is None else {("deadline", rule)})


def test_a_deadline_that_is_not_a_string_is_refused_with_the_others() -> None:
    payload = {**SAGA, "deadline": 30, "description": "short"}
    with pytest.raises(Exception) as refused:
        parse_definition(payload)
    fields = {v.field for v in refused.value.violations}  # type: ignore[attr-defined]
    assert "deadline" in fields


# -- the machine ----------------------------------------------------------------------------

def _steps(definition: dict[str, Any] = SAGA) -> list[Step]:
    return [Step.of(StepDefinition.model_validate(s)) for s in definition["steps"]]


def _machine(definition: dict[str, Any] = SAGA, **options: Any) -> dict[str, Any]:
    return compile_forward(_steps(definition), TARGETS,
                           deadline=Deadline(8, UNDO_MACHINE), **options)


def test_without_a_deadline_the_machine_has_no_parallel_around_it() -> None:
    machine = compile_forward(_steps(), TARGETS)
    assert DEADLINE_STATE not in machine["States"]
    assert machine["States"]["Completed"] == {"Type": "Succeed"}


def test_the_forward_path_runs_beside_a_wait_of_the_deadline() -> None:
    machine = _machine()
    assert machine["StartAt"] == DEADLINE_STATE
    parallel = machine["States"][DEADLINE_STATE]
    forward, deadline = parallel["Branches"]
    plain = compile_forward(_steps(), TARGETS)
    # The forward branch is the machine without a deadline, but for its end: it fails with
    # FORWARD_ENDED, so the Parallel state ends without waiting for the deadline.
    assert forward["StartAt"] == plain["StartAt"]
    assert {k: v for k, v in forward["States"].items() if k != "Completed"} == {
        k: v for k, v in plain["States"].items() if k != "Completed"}
    assert forward["States"]["Completed"]["Error"] == FORWARD_ENDED
    waits = [s for s in deadline["States"].values() if s["Type"] == "Wait"]
    assert waits == [{"Type": "Wait", "Seconds": 8, "Next": "deadline:record"}]


def test_a_forward_path_that_ends_first_ends_the_run_as_it_would_without_a_deadline() -> None:
    completed = asl_walk.walk(_machine(), {})
    assert completed.end == "end:Completed"
    assert "deadline:record" not in [name for name, _, _ in completed.tasks]
    # reserve succeeded, the callback's wait timed out: its own undo, then reserve's.
    timed_out = asl_walk.walk(_machine(), {"step:confirm": "timeout"})
    assert timed_out.end == f"end:{END_OF[ExecutionStatus.COMPENSATED].error}"
    assert [name for name, _, _ in timed_out.tasks][-2:] == ["undo:confirm", "undo:reserve"]
    # An Express run's own hand-off (a step's failure) is passed on as the run's end.
    express = _machine(handoff_to=UNDO_MACHINE)["States"]
    forward = express[DEADLINE_STATE]["Branches"][0]["States"]
    assert forward["HandedOff"]["Error"] == HANDED_OFF
    passed_on = next(c for c in express[DEADLINE_STATE]["Catch"]
                     if c["ErrorEquals"] == [HANDED_OFF])
    assert express[passed_on["Next"]]["Error"] == HANDED_OFF


def _deadline_branch(resume_at: str, verdict: str) -> asl_walk.Run:
    """The deadline branch alone, as if its Wait ended before the forward path."""
    branch = _machine()["States"][DEADLINE_STATE]["Branches"][1]
    return asl_walk.walk(branch, {}, {"execution_id": "e-1", "error": None,
                                      "resume_at": resume_at},
                         answers={"deadline:record": {"verdict": verdict}})


@pytest.mark.parametrize(("verdict", "error"), [
    (DeadlineVerdict.COMPENSATE, DEADLINE_PASSED),
    (DeadlineVerdict.PARK, END_OF[ExecutionStatus.PARKED].error),
    (DeadlineVerdict.FAIL, END_OF[ExecutionStatus.FAILED].error)])
def test_a_deadline_that_acts_fails_its_branch_and_the_parallel_routes_it(
        verdict: DeadlineVerdict, error: str) -> None:
    run = _deadline_branch("", verdict.value)
    assert [name for name, _, _ in run.tasks] == ["deadline:record"]
    assert run.tasks[0][1] == {"execution_id": "e-1", "deadline": True}
    branch = _machine()["States"][DEADLINE_STATE]["Branches"][1]
    assert branch["States"][run.end] == {"Type": "Fail", "Error": error,
                                         "Cause": f"the saga's deadline passed ({verdict})"}
    states = _machine()["States"]
    caught = next(c for c in states[DEADLINE_STATE]["Catch"] if error in c["ErrorEquals"])
    if verdict is DeadlineVerdict.COMPENSATE:
        handoff = states[caught["Next"]]
        assert handoff["Parameters"]["StateMachineArn"] == UNDO_MACHINE
        assert handoff["Parameters"]["Input"]["resume_at"] == ""
        assert states[handoff["Next"]]["Error"] == HANDED_OFF
    else:
        assert states[caught["Next"]] == {
            "Type": "Fail", "Error": error,
            "Cause": "the forward path ended so (its record says why)"}


def test_a_deadline_that_finds_the_execution_moved_on_leaves_the_forward_path_be() -> None:
    run = _deadline_branch("", DeadlineVerdict.NONE.value)
    assert run.end == "deadline:not-now"


def test_a_retry_forward_runs_without_the_deadline() -> None:
    run = _deadline_branch("step:confirm", DeadlineVerdict.COMPENSATE.value)
    assert run.tasks == [] and run.end == "deadline:not-now"


# -- the recorder's decision ----------------------------------------------------------------

def _waiting_on_confirm(definition: dict[str, Any] = SAGA) -> World:
    world = build_world(definition)
    world.deliver("reserve")
    world.actions.script[PARTICIPANT] = lambda context: None
    world.deliver("confirm", task_token="token")
    assert world.step("confirm").status is StepStatus.WAITING
    return world


def _keeper(world: World, *, compensation_enabled: bool = True) -> DeadlineKeeper:
    return DeadlineKeeper(world.ledger, world.definitions,
                          compensation_enabled=compensation_enabled, clock=world.clock.now)


def test_a_deadline_compensates_what_completed_and_abandons_the_waiting_step() -> None:
    world = _waiting_on_confirm()
    assert _keeper(world).passed("e1") is DeadlineVerdict.COMPENSATE
    execution = world.execution()
    assert execution.status is ExecutionStatus.COMPENSATING
    assert execution.error is not None
    assert (execution.error.type, execution.error.step_id) == (DEADLINE, "confirm")
    assert "deadline (8s) passed" in execution.error.message
    assert world.step("reserve").status is StepStatus.SUCCEEDED  # undone by the compensation
    confirm = world.step("confirm")
    assert confirm.status is StepStatus.OUTCOME_UNKNOWN
    assert confirm.error is not None and confirm.error["type"] == DEADLINE
    started = world.events_of(event_types.COMPENSATION_STARTED)
    assert [e["data"]["reason"] for e in started] == ["deadline"]
    assert started[0]["data"]["execution_error"]["type"] == DEADLINE
    unknown = world.events_of(event_types.STEP_OUTCOME_UNKNOWN)
    assert [(e["data"]["step_id"], e["data"]["error"]["type"]) for e in unknown] == [
        ("confirm", DEADLINE)]
    # A repeated delivery finds it moved on: nothing more is written.
    events = len(world.store.events)
    assert _keeper(world).passed("e1") is DeadlineVerdict.NONE
    assert len(world.store.events) == events


def test_a_callback_completed_after_the_deadline_is_refused_and_changes_nothing() -> None:
    sent: list[StepContext] = []
    world = build_world(SAGA)
    world.deliver("reserve")
    world.actions.script[PARTICIPANT] = sent.append
    world.deliver("confirm", task_token="token")
    _keeper(world).passed("e1")
    engine = ScriptedEngine()
    service = CallbackService(world.ledger, engine, world.runtime.outcomes,
                              StepDefinitions(world.definitions), clock=world.clock.now)
    secret = parse_qs(urlsplit(sent[0].callback["succeed_url"]).query)["secret"][0]
    with pytest.raises(Conflict, match="moved on"):
        service.succeed(sent[0].callback["id"], SucceedRequest(result={"ok": True}),
                        Caller(secret=secret))
    assert world.step("confirm").status is StepStatus.OUTCOME_UNKNOWN
    assert world.execution().status is ExecutionStatus.COMPENSATING


def test_past_the_pivot_a_deadline_parks_the_execution() -> None:
    definition = copy.deepcopy(SAGA)
    definition["steps"][0]["kind"] = "pivot"
    world = _waiting_on_confirm(definition)
    assert _keeper(world).passed("e1") is DeadlineVerdict.PARK
    execution = world.execution()
    assert execution.status is ExecutionStatus.PARKED
    assert execution.error is not None and execution.error.type == DEADLINE
    parked = world.events_of(event_types.SAGA_PARKED)
    assert [e["data"]["reason"] for e in parked] == ["deadline"]


def test_with_compensation_disabled_a_deadline_fails_the_execution() -> None:
    world = _waiting_on_confirm()
    assert _keeper(world, compensation_enabled=False).passed("e1") is DeadlineVerdict.FAIL
    assert world.execution().status is ExecutionStatus.FAILED


@pytest.mark.parametrize("status", [ExecutionStatus.COMPLETED, ExecutionStatus.COMPENSATING])
def test_an_execution_that_moved_on_is_left_as_it_is(status: ExecutionStatus) -> None:
    world = _waiting_on_confirm()
    world.set_status(status)
    events = len(world.store.events)
    assert _keeper(world).passed("e1") is DeadlineVerdict.NONE
    assert world.execution().status is status
    assert world.step("confirm").status is StepStatus.WAITING
    assert len(world.store.events) == events
