"""The ASL compiler: structure and compensation order for a failure anywhere (asl-validator:
tests/tools)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.adapters.stepfunctions.compiler import (
    CompileOptions,
    MachineTargets,
    compile_compensation,
    compile_forward,
)
from chalicelib.adapters.stepfunctions.machine_input import execution_input
from chalicelib.domain.lifecycle import DEFAULT_TASK_TIMEOUT_MARGIN_S
from chalicelib.domain.models import Step, StepDefinition
from tests.support import asl_walk

SEED = json.loads((Path(__file__).parents[1] / "fixtures" / "payment-saga.json").read_text())
STEPS = [Step.of(StepDefinition.model_validate(step)) for step in SEED["steps"]]
ARN = "arn:aws:lambda:us-east-1:000000000000:function:saga-{}"
TARGETS = MachineTargets(
    function_for=lambda step, phase: ARN.format(
        step.action if phase == "action" else step.compensation),
    recorder=ARN.format("recorder"),
)


def walk(machine: dict[str, Any], outcomes: dict[str, str]) -> list[str]:
    """The states a run enters, given each Task's final outcome ("ok" by default, "error" or
    "timeout")."""
    return asl_walk.walk(machine, outcomes).visited


def test_happy_path_is_one_state_per_step_then_the_recorded_completion() -> None:
    machine = compile_forward(STEPS, TARGETS)
    assert walk(machine, {}) == ["step:validate-payment", "step:process-payment",
                                 "step:send-notification", "RecordCompleted", "Completed"]
    assert machine["States"]["RecordCompleted"]["Parameters"]["outcome"] == "COMPLETED"


def test_a_timed_out_last_step_never_reaches_the_completion() -> None:
    machine = compile_forward(STEPS, TARGETS)
    visited = walk(machine, {"step:send-notification": "timeout"})
    assert "RecordCompleted" not in visited and visited[-1] == "Compensated"


def test_each_task_carries_the_step_timeout_and_retries() -> None:
    machine = compile_forward(STEPS, TARGETS)
    task = machine["States"]["step:process-payment"]
    assert task["Resource"] == ARN.format("process_payment")
    # The step cuts its own call at 60 s; its Task waits the margin longer (the late-action
    # rule: the step, not the engine, decides how an attempt ended).
    assert task["TimeoutSeconds"] == 60 + DEFAULT_TASK_TIMEOUT_MARGIN_S
    undo = machine["States"]["undo:process-payment"]
    assert undo["TimeoutSeconds"] == 2 * (60 + DEFAULT_TASK_TIMEOUT_MARGIN_S)
    # A step whose outcome is unknown is undone itself; any other failure starts the undo
    # at the step before.
    catch_own, catch_rest = task["Catch"]
    assert set(catch_own["ErrorEquals"]) == {"States.Timeout", "Saga.OutcomeUnknown",
                                             "Saga.OutcomeUnknownFinal"}
    assert catch_own["Next"] == "undo:process-payment"
    assert catch_rest["Next"] == "undo:validate-payment"
    assert task["ResultPath"] is None
    throttle, permanent, retryable = task["Retry"]
    assert throttle["ErrorEquals"][0] == "Lambda.TooManyRequestsException"
    assert permanent == {"MaxAttempts": 0, "ErrorEquals": [
        "PermanentError", "StepAborted", "Saga.OutcomeUnknownFinal"]}
    assert retryable["ErrorEquals"] == ["States.ALL"] and retryable["MaxAttempts"] == 3
    assert retryable["BackoffRate"] == 2.0
    assert task["Parameters"]["phase"] == "action" and task["Parameters"]["last"] is False
    assert machine["States"]["step:send-notification"]["Parameters"]["last"] is True


@pytest.mark.parametrize(("failing", "expected_undo"), [
    (0, []),
    (1, ["undo:validate-payment"]),
    (2, ["undo:process-payment", "undo:validate-payment"]),
])
def test_a_failed_step_compensates_the_completed_ones_in_reverse(
    failing: int, expected_undo: list[str]
) -> None:
    machine = compile_forward(STEPS, TARGETS)
    failing_state = f"step:{STEPS[failing].id}"
    visited = walk(machine, {failing_state: "error"})
    forward = [f"step:{s.id}" for s in STEPS[: failing + 1]]
    end = ["Compensated"] if expected_undo else ["RecordFailed", "Failed"]
    assert visited == forward + expected_undo + end


@pytest.mark.parametrize("failing", [0, 1, 2])
def test_a_timed_out_step_is_compensated_too(failing: int) -> None:
    machine = compile_forward(STEPS, TARGETS)
    visited = walk(machine, {f"step:{STEPS[failing].id}": "timeout"})
    undo = [f"undo:{s.id}" for s in reversed(STEPS[: failing + 1])]
    assert visited == [f"step:{s.id}" for s in STEPS[: failing + 1]] + undo + ["Compensated"]


def test_a_failing_compensation_ends_in_compensation_failed() -> None:
    machine = compile_forward(STEPS, TARGETS)
    visited = walk(machine, {"step:send-notification": "error",
                             "undo:process-payment": "error"})
    assert visited[-3:] == ["undo:process-payment", "RecordCompensationFailed",
                            "CompensationFailed"]
    undo = machine["States"]["undo:process-payment"]
    assert undo["Resource"] == ARN.format("refund_payment")
    assert undo["Retry"][2]["MaxAttempts"] == 3
    assert undo["TimeoutSeconds"] >= 10


def test_inactive_steps_are_left_out_and_order_decides() -> None:
    steps = [s.model_copy(update={"order": 10 - i}) for i, s in enumerate(STEPS)]
    steps[1] = steps[1].model_copy(update={"active": False})
    machine = compile_forward(steps, TARGETS)
    assert walk(machine, {}) == ["step:send-notification", "step:validate-payment",
                                 "RecordCompleted", "Completed"]
    assert "step:process-payment" not in machine["States"]


def test_compensation_machine_undoes_every_step_in_reverse() -> None:
    machine = compile_compensation(STEPS, TARGETS)
    assert walk(machine, {}) == ["undo:send-notification", "undo:process-payment",
                                 "undo:validate-payment", "Compensated"]


def test_sub_second_timeouts_round_up_and_input_is_small() -> None:
    fast = [STEPS[0].model_copy(update={"timeout": "500ms"})]
    assert compile_forward(fast, TARGETS)["States"]["step:validate-payment"]["TimeoutSeconds"] \
        == 1 + DEFAULT_TASK_TIMEOUT_MARGIN_S
    margin = CompileOptions(task_timeout_margin_s=9)
    assert compile_forward(fast, TARGETS, margin)["States"]["step:validate-payment"][
        "TimeoutSeconds"] == 10
    # Never past a Lambda's 15 minutes, whatever the step's timeout.
    slow = [STEPS[0].model_copy(update={"timeout": "899s"})]
    assert compile_forward(slow, TARGETS)["States"]["step:validate-payment"][
        "TimeoutSeconds"] == 900
    assert execution_input("e-1") == {"execution_id": "e-1", "error": None, "resume_at": ""}


def test_a_saga_without_active_steps_does_not_compile() -> None:
    with pytest.raises(ValueError, match="active step"):
        compile_forward([STEPS[0].model_copy(update={"active": False})], TARGETS)


# -- properties (as many examples as the hypothesis profile asks: tests/conftest.py) -------------

_step = st.builds(
    dict,
    retries=st.integers(0, 10),
    timeout=st.sampled_from(["1s", "500ms", "30s", "2m", "1h", "1h30m"]),
    active=st.booleans(),
)
_saga = st.lists(_step, min_size=1, max_size=50).filter(lambda s: any(x["active"] for x in s))


def _steps(spec: list[dict[str, Any]]) -> list[Step]:
    return [Step(id=f"s{i}", name=f"step {i}", order=i + 1, action=f"act{i}",
                 compensation=f"undo{i}", max_retries=s["retries"], timeout=s["timeout"],
                 active=s["active"])
            for i, s in enumerate(spec)]


@settings(deadline=None)
@given(_saga, st.data())
def test_any_failure_compensates_exactly_the_completed_steps(
    spec: list[dict[str, Any]], data: st.DataObject
) -> None:
    steps = _steps(spec)
    active = [s for s in steps if s.active]
    failing = data.draw(st.integers(0, len(active) - 1))
    kind = data.draw(st.sampled_from(["error", "timeout"]))
    visited = walk(compile_forward(steps, TARGETS), {f"step:{active[failing].id}": kind})
    done = active[: failing + 1] if kind == "timeout" else active[:failing]
    assert [v for v in visited if v.startswith("undo:")] == [
        f"undo:{s.id}" for s in reversed(done)]
    machine_states = len(compile_forward(steps, TARGETS)["States"])
    assert machine_states == 2 * len(active) + 7


LAMBDA_ERRORS = {"Lambda.TooManyRequestsException", "Lambda.ServiceException",
                 "Lambda.AWSLambdaException", "Lambda.SdkClientException"}


def _tasks(machine: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for s in machine["States"].values()
            if s["Type"] == "Task" and s["Parameters"].get("step_id")]


def _first_retrier_for(task: dict[str, Any], error: str) -> dict[str, Any]:
    # Step Functions uses the first retrier whose ErrorEquals names the error (or States.ALL).
    return next(r for r in task["Retry"]
                if error in r["ErrorEquals"] or "States.ALL" in r["ErrorEquals"])


def test_step_aborted_is_never_retried() -> None:
    for machine in (compile_forward(STEPS, TARGETS), compile_compensation(STEPS, TARGETS)):
        for task in _tasks(machine):
            for error in ("StepAborted", "PermanentError"):
                assert _first_retrier_for(task, error)["MaxAttempts"] == 0


def test_lambda_throttling_has_its_own_retry_apart_from_max_retries() -> None:
    steps = [step.model_copy(update={"max_retries": 0}) for step in STEPS]
    for machine in (compile_forward(STEPS, TARGETS), compile_forward(steps, TARGETS),
                    compile_compensation(STEPS, TARGETS)):
        for task in _tasks(machine):
            first = task["Retry"][0]
            assert set(first["ErrorEquals"]) == LAMBDA_ERRORS
            assert first["MaxAttempts"] == 6 and first["IntervalSeconds"] == 2
            assert first["JitterStrategy"] == "FULL"
            for error in LAMBDA_ERRORS:
                assert _first_retrier_for(task, error) is first
    # max_retries 0: a step error is not retried, but a throttle still is.
    task = compile_forward(steps, TARGETS)["States"]["step:process-payment"]
    assert [r["ErrorEquals"] for r in task["Retry"]][1:] == [
        ["PermanentError", "StepAborted", "Saga.OutcomeUnknownFinal"]]


def test_retry_disabled_compiles_no_step_retry() -> None:
    options = CompileOptions(retry_enabled=False)
    for machine in (compile_forward(STEPS, TARGETS, options),
                    compile_compensation(STEPS, TARGETS, options)):
        for task in _tasks(machine):
            assert all("States.ALL" not in r["ErrorEquals"] for r in task["Retry"])
            assert set(task["Retry"][0]["ErrorEquals"]) == LAMBDA_ERRORS
    assert any("States.ALL" in r["ErrorEquals"]
               for t in _tasks(compile_forward(STEPS, TARGETS)) for r in t["Retry"])


@pytest.mark.parametrize("failing", [0, 1, 2])
@pytest.mark.parametrize("outcome", ["error", "timeout"])
def test_compensation_disabled_ends_failed_with_nothing_undone(failing: int,
                                                               outcome: str) -> None:
    machine = compile_forward(STEPS, TARGETS, CompileOptions(compensation_enabled=False))
    names = ["step:validate-payment", "step:process-payment", "step:send-notification"]
    visited = walk(machine, {names[failing]: outcome})
    assert visited == [*names[:failing + 1], "RecordFailed", "Failed"]
    assert not any(name.startswith("undo:") for name in machine["States"])
    assert "compensation is disabled" in machine["States"]["Failed"]["Cause"]


def test_machine_names_are_injective_over_saga_ids() -> None:
    from chalicelib.adapters.stepfunctions.names import machine_name

    ids = ["adv.coll", "adv-coll", "adv_coll", "Adv-coll", "a" * 100, "a" * 99 + "b"]
    names = {machine_name("local", saga_id, 1, kind)
             for saga_id in ids for kind in ("forward", "compensation")}
    assert len(names) == 2 * len(ids)
    assert all(len(name) <= 80 for name in names)
    assert all(re.fullmatch(r"[A-Za-z0-9_-]+", name) for name in names)
    # Deterministic, so ARNs can be derived from the id.
    assert machine_name("local", "adv.coll", 3, "forward") == machine_name(
        "local", "adv.coll", 3, "forward")
    assert machine_name("local", "adv.coll", 1, "forward") != machine_name(
        "test", "adv.coll", 1, "forward")
