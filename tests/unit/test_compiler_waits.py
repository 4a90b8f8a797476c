"""Steps that wait in the compiled machines, walked by the ASL simulator (tests/support/
asl_walk.py) over random sagas: plain steps, callbacks (with an action, or approvals) and
timers, with or without a pivot, and a failure anywhere, of any kind a callback can end with.
Every step that may have taken effect before the pivot is compensated exactly once, a timer
or an approval never, nothing after the pivot ever; asl-validator checks the same machines
(tests/tools/test_asl_validator.py)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.adapters.stepfunctions.compiler import compile_compensation, compile_forward
from chalicelib.domain.lifecycle import (
    CALLBACK_COMPLETED,
    HEARTBEAT_TIMEOUT,
    TASK_TIMEOUT,
    StepKind,
)
from chalicelib.domain.models import Step
from tests.support import asl_walk
from tests.unit.test_compiler_groups import TARGETS

# How a Task may end, by the kind of its step (a timer's Tasks are the recorder's).
ENDINGS = {StepKind.CALLBACK: ["error", "timeout", "heartbeat", "callback-failed",
                               "completed-early"],
           StepKind.WAIT: ["error"]}
PLAIN_ENDINGS = ["error", "timeout", "unknown", "unknown-final"]
# What an ending leaves the step as: it may have done its work, or it did nothing.
TOOK_EFFECT = {"ok", "timeout", "heartbeat", "unknown", "unknown-final", "completed-early"}


def _step(index: int, kind: StepKind, *, pivot_passed: bool, approval: bool = False) -> Step:
    step_id = f"s{index}"
    if kind is StepKind.WAIT:
        return Step(id=step_id, order=index, action=None, compensation=None, max_retries=0,
                    timeout="30s", active=True, kind=kind, wait="15m")
    if kind is StepKind.CALLBACK:
        return Step(id=step_id, order=index, action=None if approval else f"do-{step_id}",
                    compensation=None if approval or pivot_passed else f"undo-{step_id}",
                    max_retries=0, timeout="7d", active=True, kind=kind, heartbeat="1m",
                    call_timeout="10s")
    return Step(id=step_id, order=index, action=f"do-{step_id}",
                compensation=None if kind is StepKind.RETRIABLE else f"undo-{step_id}",
                max_retries=1, timeout="10s", active=True, kind=kind)


@dataclass
class Saga:
    steps: list[Step]
    pivot: int | None  # the pivot's index

    def undoable(self, step: Step) -> bool:
        """Undone when a later step fails: before (or at) the pivot, with something to undo."""
        before = self.pivot is None or step.order <= self.steps[self.pivot].order
        return before and step.compensation is not None


@st.composite
def sagas(draw: st.DrawFn) -> Saga:
    count = draw(st.integers(1, 7))
    pivot = draw(st.none() | st.integers(0, count - 1))
    steps = []
    for index in range(count):
        after = pivot is not None and index > pivot
        if index == pivot:
            kind = StepKind.PIVOT
        else:
            kind = draw(st.sampled_from([StepKind.RETRIABLE if after else
                                         StepKind.COMPENSATABLE, StepKind.CALLBACK,
                                         StepKind.WAIT]))
        steps.append(_step(index + 1, kind, pivot_passed=after,
                           approval=kind is StepKind.CALLBACK and draw(st.booleans())))
    return Saga(steps, pivot)


def _task_of(step: Step) -> str:
    return f"step:{step.id}"


def _walk(saga: Saga, failing: Step | None, ending: str) -> tuple[asl_walk.Run, dict[str, str]]:
    outcomes = {} if failing is None else {_task_of(failing): ending}
    run = asl_walk.walk(compile_forward(saga.steps, TARGETS), outcomes)
    ended: dict[str, str] = {}
    for _, params, outcome in run.tasks:
        if params.get("phase") == "action" and params.get("timer") != "fired":
            ended[params["step_id"]] = outcome
    return run, ended


@settings(deadline=None)
@given(sagas(), st.data())
def test_a_failure_anywhere_undoes_exactly_what_may_have_taken_effect(
        saga: Saga, data: st.DataObject) -> None:
    failing = data.draw(st.none() | st.sampled_from(saga.steps))
    ending = "ok" if failing is None else data.draw(st.sampled_from(
        ENDINGS.get(failing.kind, PLAIN_ENDINGS)))
    run, ended = _walk(saga, failing, ending)
    undone = Counter(params["step_id"] for _, params, outcome in run.tasks
                     if params.get("phase") == "compensation" and outcome == "ok")
    # Every step ran at most once (a callback is called once), in order, none after the end.
    order = [s.id for s in saga.steps]
    assert list(ended) == order[:len(ended)]
    if failing is None or ending == "completed-early":
        assert run.end == "Completed" and not undone
        assert list(ended) == order
        # Every timer's Wait state was entered.
        assert all(f"wait:{s.id}" in run.visited for s in saga.steps if s.kind is StepKind.WAIT)
        return
    position = order.index(failing.id)
    assert list(ended) == order[:position + 1]
    if saga.pivot is not None and position > saga.pivot:
        assert run.end == "Parked" and not undone
        return
    # What may have taken effect and can be undone is undone once; nothing else is.
    expected = {s.id for s in saga.steps[:position + 1]
                if saga.undoable(s) and ended.get(s.id, "ok") in TOOK_EFFECT}
    assert undone == Counter({step_id: 1 for step_id in expected})
    assert run.end == ("Compensated" if expected else "Failed")
    # Reverse order.
    undo_order = [params["step_id"] for _, params, outcome in run.tasks
                  if params.get("phase") == "compensation"]
    assert undo_order == sorted(undo_order, key=order.index, reverse=True)


@settings(deadline=None)
@given(sagas())
def test_the_compensation_machine_skips_timers_and_approvals(saga: Saga) -> None:
    run = asl_walk.walk(compile_compensation(saga.steps, TARGETS), {})
    undone = [params["step_id"] for _, params, _ in run.tasks
              if params.get("phase") == "compensation"]
    assert undone == [s.id for s in reversed(saga.steps) if saga.undoable(s)]
    assert run.end == "Compensated"


def test_a_callback_task_waits_for_its_token_with_the_whole_wait_and_its_heartbeat() -> None:
    step = _step(1, StepKind.CALLBACK, pivot_passed=False)
    task = compile_forward([step], TARGETS)["States"]["step:s1"]
    assert task["Resource"] == "arn:aws:states:::lambda:invoke.waitForTaskToken"
    assert task["Parameters"]["Payload"]["task_token.$"] == "$$.Task.Token"
    assert task["TimeoutSeconds"] == 7 * 24 * 3600 + 5 and task["HeartbeatSeconds"] == 60
    # Called once: only Lambda's own throttling is retried.
    assert [r["ErrorEquals"][0] for r in task["Retry"]] == ["Lambda.TooManyRequestsException",
                                                            "PermanentError"]
    catches = {error: c["Next"] for c in task["Catch"] for error in c["ErrorEquals"]}
    assert catches[CALLBACK_COMPLETED] == "RecordCompleted"
    assert catches[TASK_TIMEOUT] == catches[HEARTBEAT_TIMEOUT] == "undo:s1"


def test_an_approval_runs_in_the_recorder_and_a_timer_reads_its_moment() -> None:
    approval = _step(1, StepKind.CALLBACK, pivot_passed=False, approval=True)
    timer = _step(2, StepKind.WAIT, pivot_passed=False)
    states = compile_forward([approval, timer], TARGETS)["States"]
    assert states["step:s1"]["Parameters"]["FunctionName"] == TARGETS.recorder
    assert states["step:s2"]["ResultPath"] == "$.timer"
    assert states["wait:s2"] == {"Type": "Wait", "TimestampPath": "$.timer.until",
                                 "Next": "fired:s2"}
    # Nothing of either is ever undone, so no undo state exists for them.
    assert not [name for name in states if name.startswith("undo:")]


def machines(saga: Saga) -> list[dict[str, Any]]:
    """The saga's forward and compensation machines (asl-validator checks them)."""
    return [compile_forward(saga.steps, TARGETS), compile_compensation(saga.steps, TARGETS)]
