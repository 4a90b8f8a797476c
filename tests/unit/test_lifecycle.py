"""The lifecycle tables, walked: every transition, event, end and retry rule, and that the
compiler and the step runtime say the same as the tables."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from chalicelib.adapters.stepfunctions.compiler import (
    MachineTargets,
    compile_compensation,
    compile_forward,
)
from chalicelib.domain import event_types, lifecycle
from chalicelib.domain.lifecycle import (
    ACTIVE,
    FINAL,
    TRANSITIONS,
    ExecutionStatus,
    Outcome,
    Phase,
    StepStatus,
)
from chalicelib.domain.models import Step, StepDefinition
from chalicelib.domain.step_context import PermanentError
from chalicelib.usecases.steps.failures import StepAborted, outcome_unknown

SEED = json.loads((Path(__file__).parents[1] / "fixtures" / "payment-saga.json").read_text())
STEPS = [Step.of(StepDefinition.model_validate(step)) for step in SEED["steps"]]
TARGETS = MachineTargets(function_for=lambda step, phase: f"arn:fn:{phase}:{step.id}",
                         recorder="arn:fn:recorder")


def test_every_status_is_active_or_final_and_only_running_ones_are_active() -> None:
    assert set(ExecutionStatus) == ACTIVE | FINAL
    assert not ACTIVE & FINAL
    assert {ExecutionStatus.RUNNING, ExecutionStatus.COMPENSATING} == ACTIVE
    assert all(status.is_final for status in FINAL)
    assert lifecycle.RESOLVABLE <= FINAL and ExecutionStatus.COMPLETED not in lifecycle.RESOLVABLE


@pytest.mark.parametrize("move", TRANSITIONS, ids=lambda t: f"{t.source}->{t.target}")
def test_each_transition(move: lifecycle.Transition) -> None:
    # The orchestration moves only executions still going; an operator only reopens final ones.
    assert (move.source in FINAL) is move.by_operator
    assert move.source is not move.target
    assert lifecycle.can_transition(move.source, move.target, by_operator=move.by_operator)
    assert not lifecycle.can_transition(move.source, move.target,
                                        by_operator=not move.by_operator)
    assert move.source in lifecycle.allowed_from(move.target, by_operator=move.by_operator)
    # The event it emits says which status it brings (TIMED_OUT's saga.failed carries it).
    assert move.event == lifecycle.EVENT_OF[move.target]
    brought = lifecycle.STATUS_OF_EVENT[move.event]
    assert brought is move.target or (move.target is ExecutionStatus.TIMED_OUT
                                      and move.event == event_types.SAGA_FAILED)


def test_no_pair_outside_the_table_is_allowed() -> None:
    pairs = {(t.source, t.target, t.by_operator) for t in TRANSITIONS}
    for source in ExecutionStatus:
        for target in ExecutionStatus:
            for by_operator in (False, True):
                assert lifecycle.can_transition(source, target, by_operator=by_operator) is (
                    (source, target, by_operator) in pairs)


def test_every_final_status_is_reachable_from_running() -> None:
    reached, frontier = {ExecutionStatus.RUNNING}, [ExecutionStatus.RUNNING]
    while frontier:  # bounded: at most one visit per status
        current = frontier.pop()
        for move in TRANSITIONS:
            if move.source is current and not move.by_operator and move.target not in reached:
                reached.add(move.target)
                frontier.append(move.target)
    assert reached == set(ExecutionStatus)


def test_step_transitions_cover_every_phase_outcome_and_finality_once() -> None:
    keys = [(t.phase, t.outcome, t.final) for t in lifecycle.STEP_TRANSITIONS]
    assert len(keys) == len(set(keys))
    for phase in Phase:
        assert lifecycle.step_transition(phase, Outcome.SUCCEEDED, final=False).final
        retried = lifecycle.step_transition(phase, Outcome.FAILED, final=False)
        assert retried.event == event_types.STEP_RETRIED and not retried.final
    for move in lifecycle.STEP_TRANSITIONS:
        # An undo's outcome leaves the step undoing or undone, never runnable again.
        assert (move.target in lifecycle.UNDOING) is (move.phase is Phase.COMPENSATION)
        assert lifecycle.PHASE_OF_EVENT[move.event] is (
            Phase.ACTION if move.event == event_types.STEP_RETRIED else move.phase)
        if move.final:
            assert lifecycle.STEP_EVENT_RESULT[move.event] == (move.target, move.outcome)
    # An action runs only on a step that has not ended (a waiting callback's next attempt
    # included); a compensation on any not yet undone.
    assert lifecycle.STEP_SOURCES[Phase.ACTION] == {StepStatus.PENDING, StepStatus.RUNNING,
                                                    StepStatus.OUTCOME_UNKNOWN,
                                                    StepStatus.WAITING}
    # An unknown outcome sticks through failures (only a success replaces it), and is never
    # among the steps an undo skips.
    for final in (False, True):
        assert lifecycle.step_transition(Phase.ACTION, Outcome.UNKNOWN, final=final).target \
            is StepStatus.OUTCOME_UNKNOWN
    assert lifecycle.failure_outcome(unknown=False, was_unknown=True) is Outcome.UNKNOWN
    assert StepStatus.OUTCOME_UNKNOWN not in lifecycle.NEVER_DONE | lifecycle.FAILED_FOR_GOOD
    assert StepStatus.COMPENSATED not in lifecycle.STEP_SOURCES[Phase.COMPENSATION]
    assert lifecycle.STEP_SOURCES[Phase.COMPENSATION] >= lifecycle.NEVER_DONE


def test_the_errors_steps_raise_to_stop_retries_are_the_ones_never_retried() -> None:
    # Lambda reports an error by its class name: the names must be the classes' own.
    assert {PermanentError.__name__, StepAborted.__name__,
            type(outcome_unknown("x", final=True)).__name__} == set(lifecycle.NEVER_RETRIED)
    # The one that is retried (attempts remain) is the one caught like a timeout.
    assert type(outcome_unknown("x", final=False)).__name__ == lifecycle.OUTCOME_UNKNOWN
    assert {lifecycle.OUTCOME_UNKNOWN, lifecycle.OUTCOME_UNKNOWN_FINAL} < set(
        lifecycle.UNDO_ITSELF)
    assert issubclass(StepAborted, PermanentError)


def _tasks(machine: dict[str, Any]) -> list[dict[str, Any]]:
    return [state for state in machine["States"].values() if state["Type"] == "Task"]


def test_the_compiled_machines_use_the_tables_names() -> None:
    forward = compile_forward(STEPS, TARGETS)
    undo = compile_compensation(STEPS, TARGETS)
    for machine in (forward, undo):
        for task in _tasks(machine):
            if "phase" not in task["Parameters"]:
                assert task["Parameters"]["outcome"] in lifecycle.RECORDED_OUTCOMES
                continue
            never = [r for r in task["Retry"] if r["ErrorEquals"] == list(
                lifecycle.NEVER_RETRIED)]
            assert never == [{"ErrorEquals": list(lifecycle.NEVER_RETRIED), "MaxAttempts": 0}]
            if task["Parameters"]["phase"] == Phase.COMPENSATION:
                # The runtime calls a compensation failed for good after exactly these.
                step_retry = task["Retry"][-1]
                assert step_retry["ErrorEquals"] == [lifecycle.ANY_ERROR]
                assert step_retry["MaxAttempts"] == lifecycle.COMPENSATION_RETRY.retries
    fails = {state["Error"] for machine in (forward, undo)
             for state in machine["States"].values() if state["Type"] == "Fail"}
    # Only a saga with retriable steps can park.
    assert fails == {end.error for end in lifecycle.ENDS} - {
        lifecycle.END_OF[lifecycle.ExecutionStatus.PARKED].error}


def test_the_runtime_counts_attempts_as_the_machine_retries() -> None:
    retries = lifecycle.COMPENSATION_RETRY.retries
    assert not lifecycle.compensation_final(retries)  # the machine still has a retry left
    assert lifecycle.compensation_final(retries + 1)
    assert not lifecycle.action_final(2, 2, permanent=False)
    assert lifecycle.action_final(3, 2, permanent=False)
    assert lifecycle.action_final(1, 5, permanent=True)


def test_operator_actions_start_where_the_operators_transitions_do() -> None:
    from chalicelib.domain.lifecycle import OPERATOR_ACTIONS, RESOLVABLE, allowed_from

    actions = OPERATOR_ACTIONS
    assert actions["compensate"] | actions["retry_compensation"] == allowed_from(
        ExecutionStatus.COMPENSATING, by_operator=True)
    assert actions["retry_forward"] == allowed_from(ExecutionStatus.RUNNING, by_operator=True)
    assert actions["resolve"] == RESOLVABLE
