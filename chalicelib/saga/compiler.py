"""Saga definition version -> Amazon States Language. Pure: no I/O, no AWS client.

Forward machine, for active steps s1..sn in `order`:

    s1 -> s2 -> ... -> sn -> RecordCompleted -> Completed
                                            every Task's ResultPath is null, so the small
                                            input {execution_id, ...} flows through unchanged
    si fails for good (Catch)   -> undo s(i-1) -> ... -> undo s1 -> Compensated
    si times out (Catch)        -> undo si -> undo s(i-1) -> ...     (its outcome is unknown)
    s1 fails, nothing done      -> Failed
    an undo fails for good      -> CompensationFailed

The happy path has no state between steps: n Task states, then the recorder. Step Lambdas record
their own outcome; the saga's completion is recorded only once every Task has succeeded (a late
action of a timed-out step must never make the saga look COMPLETED).
The compensation-only machine (to undo a COMPLETED execution) is the undo chain alone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from chalicelib.saga.durations import parse_duration_ms
from chalicelib.saga.lifecycle import (
    ANY_ERROR,
    COMPENSATION_RETRY,
    END_OF,
    LAMBDA_SERVICE_ERRORS,
    NEVER_RETRIED,
    TASK_TIMEOUT,
    ExecutionStatus,
    Phase,
    RetryPolicy,
)
from chalicelib.saga.models import Step


@dataclass(frozen=True)
class CompileOptions:
    action_retry: RetryPolicy = RetryPolicy()
    # Compensation retries are lifecycle.COMPENSATION_RETRY, which the step runtime counts
    # attempts against: not an option. Compensations get at least this long, whatever the
    # step's own timeout.
    min_compensation_timeout_s: int = 10
    # False: Tasks get no step Retry (max_retries is ignored); Lambda throttling still retries.
    retry_enabled: bool = True
    # False: a failed step ends the saga FAILED with nothing undone (no compensation Catch).
    compensation_enabled: bool = True
    lambda_retry_attempts: int = 6
    lambda_retry: RetryPolicy = RetryPolicy(interval_seconds=2, backoff_rate=2.0,
                                            max_delay_seconds=60)


@dataclass(frozen=True)
class MachineTargets:
    """Where each Task goes: the step's action/compensation Lambda, and the recorder Lambda."""

    function_for: Callable[[Step, Phase], str]  # (step, phase) -> function ARN
    recorder: str  # ARN of the Lambda that records Failed / CompensationFailed outcomes


def _state_name(prefix: str, step: Step) -> str:
    # Names are unique per machine (step ids are unique) and at most 80 characters.
    return f"{prefix}{step.id}"[:80]


# A Lambda runs 15 minutes at most, so a step's Task can wait no longer than that.
LAMBDA_MAX_TIMEOUT_S = 900


def task_timeout_seconds(step: Step, phase: Phase,
                         options: CompileOptions | None = None) -> int:
    """How long the phase's Task waits for its Lambda (TimeoutSeconds)."""
    if phase is Phase.ACTION:
        return _timeout_seconds(step)
    return max(_timeout_seconds(step), (options or CompileOptions()).min_compensation_timeout_s)


def _timeout_seconds(step: Step) -> int:
    # ASL takes whole seconds; a sub-second timeout rounds up to 1 s.
    seconds = max(1, -(-parse_duration_ms(step.timeout) // 1000))
    return min(seconds, LAMBDA_MAX_TIMEOUT_S)


def _retrier(errors: Sequence[str], attempts: int, policy: RetryPolicy) -> dict[str, Any]:
    retrier: dict[str, Any] = {
        "ErrorEquals": list(errors),
        "IntervalSeconds": policy.interval_seconds,
        "MaxAttempts": attempts,
        "BackoffRate": policy.backoff_rate,
        "MaxDelaySeconds": policy.max_delay_seconds,
    }
    if policy.jitter:
        retrier["JitterStrategy"] = "FULL"
    return retrier


def _retriers(attempts: int, policy: RetryPolicy,
              options: CompileOptions) -> list[dict[str, Any]]:
    # Step Functions picks the first retrier whose ErrorEquals matches, and each retrier
    # counts its own attempts: a Lambda throttle uses the first one and never the step's.
    retriers: list[dict[str, Any]] = [
        _retrier(LAMBDA_SERVICE_ERRORS, options.lambda_retry_attempts, options.lambda_retry),
        {"ErrorEquals": list(NEVER_RETRIED), "MaxAttempts": 0},
    ]
    if attempts > 0 and options.retry_enabled:
        retriers.append(_retrier([ANY_ERROR], attempts, policy))
    return retriers


def _task(function_arn: str, step: Step, phase: Phase, *, timeout_s: int,
          retriers: list[dict[str, Any]], last: bool,
          skip_undone: bool = False) -> dict[str, Any]:
    parameters: dict[str, Any] = {
        "execution_id.$": "$.execution_id",
        "step_id": step.id,
        "phase": phase.value,
        "last": last,
        "attempt.$": "$$.State.RetryCount",
        "error.$": "$.error",
    }
    if skip_undone:
        parameters["skip_undone"] = True
    return {
        "Type": "Task",
        "Resource": function_arn,
        "Parameters": parameters,
        "ResultPath": None,
        "TimeoutSeconds": timeout_s,
        "Retry": retriers,
    }


def _recorder(arn: str, outcome: ExecutionStatus) -> dict[str, Any]:
    return {
        "Type": "Task",
        "Resource": arn,
        "Parameters": {"execution_id.$": "$.execution_id", "outcome": outcome.value,
                       "error.$": "$.error"},
        "ResultPath": None,
        "TimeoutSeconds": 30,
        "Retry": [{"ErrorEquals": [ANY_ERROR], "IntervalSeconds": 1, "MaxAttempts": 5,
                   "BackoffRate": 2.0}],
    }


def _active_in_order(steps: Sequence[Step]) -> list[Step]:
    active = sorted((s for s in steps if s.active), key=lambda s: s.order)
    if not active:
        raise ValueError("a saga needs at least one active step to compile")
    return active


def _undo_chain(steps: Sequence[Step], targets: MachineTargets,
                options: CompileOptions, *, skip_undone: bool) -> dict[str, dict[str, Any]]:
    """undo(sn) -> ... -> undo(s1) -> Compensated; any of them failing -> CompensationFailed.

    skip_undone (the compensation-only machine): steps that never did anything (FAILED, or
    never started) are left as they are. In the forward machine's chain a not-yet-finished
    step may be a timed-out one still at work, so it is always compensated."""
    states: dict[str, dict[str, Any]] = {}
    ordered = list(reversed(steps))
    for index, step in enumerate(ordered):
        is_last = index == len(ordered) - 1
        state = _task(
            targets.function_for(step, Phase.COMPENSATION), step, Phase.COMPENSATION,
            timeout_s=task_timeout_seconds(step, Phase.COMPENSATION, options),
            retriers=_retriers(COMPENSATION_RETRY.retries, COMPENSATION_RETRY.policy,
                               options),
            last=is_last, skip_undone=skip_undone)
        state["Catch"] = [{"ErrorEquals": [ANY_ERROR], "ResultPath": "$.error",
                           "Next": "RecordCompensationFailed"}]
        if is_last:
            state["Next"] = "Compensated"
        else:
            state["Next"] = _state_name("undo:", ordered[index + 1])
        states[_state_name("undo:", step)] = state
    states["Compensated"] = {"Type": "Fail",
                             "Error": END_OF[ExecutionStatus.COMPENSATED].error,
                             "Cause": "a step failed; the completed steps were compensated"}
    states["RecordCompensationFailed"] = {
        **_recorder(targets.recorder, ExecutionStatus.COMPENSATION_FAILED),
        "Next": "CompensationFailed"}
    states["CompensationFailed"] = {"Type": "Fail",
                                    "Error": END_OF[ExecutionStatus.COMPENSATION_FAILED].error,
                                    "Cause": "a compensation failed after its retries"}
    return states


def compile_forward(steps: Sequence[Step], targets: MachineTargets,
                    options: CompileOptions = CompileOptions(), *,
                    comment: str = "") -> dict[str, Any]:
    active = _active_in_order(steps)
    states: dict[str, dict[str, Any]] = {}
    for index, step in enumerate(active):
        is_last = index == len(active) - 1
        state = _task(targets.function_for(step, Phase.ACTION), step, Phase.ACTION,
                      timeout_s=_timeout_seconds(step),
                      retriers=_retriers(step.max_retries, options.action_retry,
                                         options),
                      last=is_last)
        if options.compensation_enabled:
            # A timed-out step may have done its work: undo it too. Any other failure means
            # the step did nothing (actions are atomic), so undo starts at the step before.
            previous = active[index - 1] if index else None
            after_other = _state_name("undo:", previous) if previous else "RecordFailed"
            state["Catch"] = [
                {"ErrorEquals": [TASK_TIMEOUT], "ResultPath": "$.error",
                 "Next": _state_name("undo:", step)},
                {"ErrorEquals": [ANY_ERROR], "ResultPath": "$.error", "Next": after_other},
            ]
        else:
            state["Catch"] = [{"ErrorEquals": [ANY_ERROR], "ResultPath": "$.error",
                               "Next": "RecordFailed"}]
        if is_last:
            state["Next"] = "RecordCompleted"
        else:
            state["Next"] = _state_name("step:", active[index + 1])
        states[_state_name("step:", step)] = state
    if options.compensation_enabled:
        states.update(_undo_chain(active, targets, options, skip_undone=False))
        cause = "the first step failed; there was nothing to compensate"
    else:
        cause = "a step failed; compensation is disabled, so nothing was undone"
    states["RecordCompleted"] = {**_recorder(targets.recorder, ExecutionStatus.COMPLETED),
                                 "Next": "Completed"}
    states["Completed"] = {"Type": "Succeed"}
    states["RecordFailed"] = {**_recorder(targets.recorder, ExecutionStatus.FAILED),
                              "Next": "Failed"}
    states["Failed"] = {"Type": "Fail", "Error": END_OF[ExecutionStatus.FAILED].error,
                        "Cause": cause}
    return {"Comment": comment or "saga", "StartAt": _state_name("step:", active[0]),
            "States": states}


def compile_compensation(steps: Sequence[Step], targets: MachineTargets,
                         options: CompileOptions = CompileOptions(), *,
                         comment: str = "") -> dict[str, Any]:
    active = _active_in_order(steps)
    states = _undo_chain(active, targets, options, skip_undone=True)
    return {"Comment": comment or "saga compensation",
            "StartAt": _state_name("undo:", active[-1]), "States": states}


def execution_input(execution_id: str) -> dict[str, Any]:
    """The whole input of an execution: ids only (payloads are capped at 256 KB).

    "error" is there from the start because every Task's Parameters read "$.error"."""
    return {"execution_id": execution_id, "error": None}

