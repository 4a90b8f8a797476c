"""The step runtime's decisions, without a database: every step status against every
execution status, for both phases."""

from __future__ import annotations

import pytest

from chalicelib.domain import event_types
from chalicelib.domain.decisions import (
    StepRequest,
    Verdict,
    after_failure,
    after_success,
    decide,
    ends_compensation,
    starts_compensating,
)
from chalicelib.domain.lifecycle import COMPENSATION_RETRY, ExecutionStatus, Phase, StepStatus


def _request(phase: Phase, *, last: bool = False, skip_undone: bool = False) -> StepRequest:
    return StepRequest(execution_id="e1", step_id="s1", phase=phase, last=last,
                       skip_undone=skip_undone)


@pytest.mark.parametrize("execution", list(ExecutionStatus))
@pytest.mark.parametrize("step", list(StepStatus))
def test_an_action_runs_only_on_an_unfinished_step_of_a_running_execution(
        step: StepStatus, execution: ExecutionStatus) -> None:
    decision = decide(_request(Phase.ACTION), step, execution)
    if step in (StepStatus.SUCCEEDED, StepStatus.SKIPPED):
        # A repeated delivery does nothing (a skipped step's condition was decided once).
        assert decision.verdict is Verdict.DUPLICATE
    elif step in (StepStatus.PENDING, StepStatus.RUNNING, StepStatus.OUTCOME_UNKNOWN,
                  StepStatus.WAITING) and execution is ExecutionStatus.RUNNING:
        assert decision.verdict is Verdict.RUN
    else:
        assert decision.verdict is Verdict.ABORT
        assert decision.reason
    assert not decision.finish_compensation


def test_an_aborted_action_says_why() -> None:
    undone = decide(_request(Phase.ACTION), StepStatus.COMPENSATED, ExecutionStatus.RUNNING)
    assert undone.reason == "was compensated before it could run"
    late = decide(_request(Phase.ACTION), StepStatus.PENDING, ExecutionStatus.COMPENSATING)
    assert late.reason == "cannot run: it is pending and the execution is compensating"


@pytest.mark.parametrize("skip_undone", [False, True])
@pytest.mark.parametrize("step", list(StepStatus))
def test_a_compensation_runs_unless_there_is_nothing_to_undo(step: StepStatus,
                                                             skip_undone: bool) -> None:
    decision = decide(_request(Phase.COMPENSATION, skip_undone=skip_undone), step,
                      ExecutionStatus.COMPENSATING)
    # A step whose action failed for good did nothing, a skipped one never ran; in a
    # compensation-only run one that never started did nothing either.
    nothing = step in (StepStatus.COMPENSATED, StepStatus.FAILED, StepStatus.SKIPPED) or (
        skip_undone and step is StepStatus.PENDING)
    assert decision.verdict is (Verdict.SKIP if nothing else Verdict.RUN)
    assert not decision.finish_compensation


def test_a_skipped_last_undo_still_ends_the_compensation() -> None:
    decision = decide(_request(Phase.COMPENSATION, last=True, skip_undone=True),
                      StepStatus.PENDING, ExecutionStatus.COMPENSATING)
    assert decision.verdict is Verdict.SKIP and decision.finish_compensation


def test_an_action_failure_retries_until_max_retries_then_fails_for_good() -> None:
    first = after_failure(Phase.ACTION, 1, 2, permanent=False)
    assert (first.target, first.event, first.final) == (StepStatus.RUNNING,
                                                        event_types.STEP_RETRIED, False)
    last = after_failure(Phase.ACTION, 3, 2, permanent=False)
    assert (last.target, last.event, last.final) == (StepStatus.FAILED, event_types.STEP_FAILED,
                                                     True)
    permanent = after_failure(Phase.ACTION, 1, 5, permanent=True)
    assert permanent.target is StepStatus.FAILED and permanent.final


def test_a_compensation_failure_is_final_after_the_policys_retries() -> None:
    retries = COMPENSATION_RETRY.retries
    retried = after_failure(Phase.COMPENSATION, retries, 0, permanent=False)
    assert (retried.target, retried.final) == (StepStatus.COMPENSATING, False)
    final = after_failure(Phase.COMPENSATION, retries + 1, 0, permanent=False)
    assert (final.target, final.event) == (StepStatus.COMPENSATION_FAILED,
                                           event_types.STEP_COMPENSATION_FAILED)


def test_successes() -> None:
    assert after_success(Phase.ACTION).target is StepStatus.SUCCEEDED
    assert after_success(Phase.COMPENSATION).event == event_types.STEP_COMPENSATED


def test_only_a_forward_run_starts_compensating_at_its_first_undo() -> None:
    assert starts_compensating(Phase.COMPENSATION, ExecutionStatus.RUNNING)
    assert not starts_compensating(Phase.COMPENSATION, ExecutionStatus.COMPENSATING)
    assert not starts_compensating(Phase.ACTION, ExecutionStatus.RUNNING)


def test_the_last_undo_ends_the_compensation_once() -> None:
    last = _request(Phase.COMPENSATION, last=True)
    assert ends_compensation(last, ExecutionStatus.COMPENSATING)
    assert not ends_compensation(last, ExecutionStatus.COMPENSATED)
    assert not ends_compensation(_request(Phase.COMPENSATION), ExecutionStatus.COMPENSATING)
    assert not ends_compensation(_request(Phase.ACTION, last=True),
                                 ExecutionStatus.RUNNING)


def test_a_request_names_a_known_phase() -> None:
    with pytest.raises(ValueError, match="phase"):
        StepRequest.model_validate({"execution_id": "e", "step_id": "s", "phase": "undo"})
