"""Saga definition version -> Amazon States Language. Pure: no I/O, no AWS client.

Active steps that share an `order` form a group; a group of one is a plain Task, a larger one a
Parallel state whose branches are its steps' Tasks. Forward machine, for groups g1..gn:

    s1 -> s2 -> ... -> sn -> RecordCompleted -> Completed
                                            every Task's ResultPath is null, so the small
                                            input {execution_id, ...} flows through unchanged
    si fails for good (Catch)   -> undo s(i-1) -> ... -> undo s1 -> Compensated
    si's outcome is unknown     -> undo si -> undo s(i-1) -> ...
        (Catch of States.Timeout, Saga.OutcomeUnknown, Saga.OutcomeUnknownFinal: it may have
        done its work; the step cuts its own call at the deadline, and its Task waits that
        long plus saga.task_timeout_margin, so the step, not the engine, decides)
    s1 fails, nothing done      -> Failed
    an undo fails for good      -> CompensationFailed

The happy path has no state between steps: n Task states, then the recorder. Step Lambdas record
their own outcome; the saga's completion is recorded only once every Task has succeeded (a late
action of a timed-out step must never make the saga look COMPLETED).
The compensation-only machine (to undo a COMPLETED execution) is the undo chain alone.

A group's branches catch their own failure, so a failing step never cuts its siblings short:
their current attempts end (the step runtime refuses new ones once a step of the execution has
failed for good), then a Choice sends the run to the group's undo, which compensates what
succeeded or timed out in the group (the runtime skips steps whose action failed for good),
then the earlier groups, each group's compensations in parallel.

With a pivot step, the groups after it are retriable: their Tasks retry up to
saga.retriable_max_attempts and a failure parks the execution (RecordParked) instead of
compensating. Such a machine starts with a Choice on $.resume_at, so an operator's retry
forward starts it again at the parked group.

Steps that wait run alone in their group, and the engine does the waiting (no Lambda runs):

    callback   step:<id>   a lambda:invoke.waitForTaskToken Task: its Lambda commits the
                           callback (id, secret, token) and calls the action once (an
                           approval calls nobody); the API completes the token later.
                           TimeoutSeconds is the whole wait plus the margin; HeartbeatSeconds
                           when it has heartbeat. A timeout (or heartbeats that stop) is an
                           unknown outcome: its own compensation runs. /fail raises
                           Saga.CallbackFailed (a failure for good, never retried). A callback
                           completed before its call answered raises Saga.CallbackCompleted
                           from the Lambda, caught as the step's success.
    wait       step:<id> -> wait:<id> -> fired:<id>: the recorder sets the timer (a duration
                           from now, or a timestamp read from the input or a result) into
                           $.timer.until; a Wait state waits for it; the recorder records it
                           fired. Never compensated.

A child step (one with `saga`) also runs alone, and the engine waits for the child's run:

    forward    step:<id> -> child?:<id> -> child:<id> -> settle:<id>: the recorder makes the
               child's execution (a derived id, the step's input) and answers its run; the
               run starts with startExecution.sync:2, named by the child's id (a repeated
               start is the same run) and waited for, its end caught whatever it was; the
               recorder settles the step from the child's record: COMPLETED, its output is
               the step's result; any other end fails the step (the child undid itself); not
               ended yet, Saga.ChildRunning is retried. TimeoutSeconds is the step's timeout:
               past it, expired:<id> settles the step as an unknown outcome, so its undo runs.
    undo       undo:<id> -> undo-child?:<id> -> undo-child:<id> -> undone:<id>: the recorder
               moves a COMPLETED child to COMPENSATING (a child still running is waited for
               first: Saga.ChildRunning, retried) and answers its compensation machine's run,
               which the engine runs and waits for; the recorder records the step compensated,
               or its compensation failed with the child's.

A step with nothing to undo (a timer, an approval) has no undo state: a failure after it goes
to the undo of the last step before it that has one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from chalicelib.adapters.stepfunctions.names import HANDOFF_SUFFIX
from chalicelib.config import DEFAULT_RETRIABLE_MAX_ATTEMPTS
from chalicelib.domain.lifecycle import (
    ANY_ERROR,
    CALLBACK_COMPLETED,
    CALLBACK_NEVER_RETRIED,
    CALLBACK_UNDO_ITSELF,
    CHILD_RUNNING,
    COMPENSATION_RETRY,
    DEADLINE_PASSED,
    DEFAULT_TASK_TIMEOUT_MARGIN_S,
    END_OF,
    ENDS,
    FANOUT_FAILED,
    FORWARD_ENDED,
    HANDED_OFF,
    LAMBDA_SERVICE_ERRORS,
    NEVER_RETRIED,
    RETRIABLE_RETRY,
    STEP_SKIPPED,
    TASK_TIMEOUT,
    UNDO_ITSELF,
    DeadlineVerdict,
    ExecutionStatus,
    Phase,
    RetryPolicy,
    StepKind,
    action_retries,
    compensation_task_timeout_s,
    is_compensated,
    task_timeout_s,
    wait_task_timeout_s,
)
from chalicelib.domain.models import Step
from chalicelib.durations import parse_duration_ms


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
    # saga.retriable_max_attempts: attempts of a retriable step before the execution parks.
    retriable_max_attempts: int = DEFAULT_RETRIABLE_MAX_ATTEMPTS
    # saga.task_timeout_margin: how much longer a Task waits than its step's call may take.
    task_timeout_margin_s: int = DEFAULT_TASK_TIMEOUT_MARGIN_S
    # saga.max_fanout_concurrency: a fan-out's Map runs at most this many items at once.
    max_fanout_concurrency: int = 40


@dataclass(frozen=True)
class MachineTargets:
    """Where each Task goes: the step's action/compensation Lambda, and the recorder Lambda."""

    function_for: Callable[[Step, Phase], str]  # (step, phase) -> function ARN
    recorder: str  # ARN of the Lambda that records Failed / CompensationFailed outcomes


def _state_name(prefix: str, step: Step) -> str:
    # Names are unique per machine (step ids are unique) and at most 80 characters.
    return f"{prefix}{step.id}"[:80]


def task_timeout_seconds(step: Step, phase: Phase,
                         options: CompileOptions | None = None) -> int:
    """How long the phase's Task waits for its Lambda (TimeoutSeconds): the step's timeout
    plus the margin for an action; for a compensation, also the wait for its action's last
    deadline (lifecycle's late-action rule)."""
    options = options or CompileOptions()
    timeout_ms = parse_duration_ms(step.call_timeout_text)
    if phase is Phase.ACTION:
        return task_timeout_s(timeout_ms, options.task_timeout_margin_s)
    return compensation_task_timeout_s(timeout_ms, options.task_timeout_margin_s,
                                       options.min_compensation_timeout_s)


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


def _retriers(attempts: int, policy: RetryPolicy, options: CompileOptions,
              never: Sequence[str] = NEVER_RETRIED) -> list[dict[str, Any]]:
    # Step Functions picks the first retrier whose ErrorEquals matches, and each retrier
    # counts its own attempts: a Lambda throttle uses the first one and never the step's.
    retriers: list[dict[str, Any]] = [
        _retrier(LAMBDA_SERVICE_ERRORS, options.lambda_retry_attempts, options.lambda_retry),
        {"ErrorEquals": list(never), "MaxAttempts": 0},
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


def groups_of(steps: Sequence[Step]) -> list[list[Step]]:
    """The active steps as groups in order: steps that share an order run in parallel."""
    groups: list[list[Step]] = []
    for step in _active_in_order(steps):
        if groups and groups[-1][0].order == step.order:
            groups[-1].append(step)
        else:
            groups.append([step])
    return groups


def forward_name(group: list[Step]) -> str:
    """The forward machine's state that runs the group (where a retry forward enters)."""
    return _state_name("step:", group[0]) if len(group) == 1 else f"group:{group[0].order}"


def _undo_name(group: list[Step]) -> str:
    return _state_name("undo:", group[0]) if len(group) == 1 else f"undo-group:{group[0].order}"


def _has_undo(group: list[Step]) -> bool:
    """Whether a failure later on undoes anything of the group (a timer and an approval,
    alone in their groups, did nothing to undo)."""
    return any(is_compensated(step.kind, has_action=step.action is not None or step.calls_saga)
               for step in group)


def _undo_before(groups: list[list[Step]], index: int) -> str:
    """Where a failure that did nothing goes: the undo of the last group before `index`
    with something to undo, or FAILED when none has."""
    for group in reversed(groups[:index]):
        if _has_undo(group):
            return _undo_name(group)
    return "RecordFailed"


def _split_at_pivot(groups: list[list[Step]]) -> tuple[list[list[Step]], list[list[Step]]]:
    """(the groups a failure compensates: up to and with the pivot; the retriable ones)."""
    for index, group in enumerate(groups):
        if any(step.kind is StepKind.PIVOT for step in group):
            return groups[:index + 1], groups[index + 1:]
    return groups, []


def _catch_all(target: str, result_path: str = "$.error") -> list[dict[str, Any]]:
    return [{"ErrorEquals": [ANY_ERROR], "ResultPath": result_path, "Next": target}]


def _parallel(name: str, group: list[Step], branch_task: Callable[[Step], dict[str, Any]],
              branch_prefix: str, failed_prefix: str, *, on_failure: Callable[[Step], str],
              on_success: str, crash: str) -> dict[str, dict[str, Any]]:
    """A group as one Parallel state. Each branch catches its own step's failure and ends,
    so its siblings run on; the Choice after it sends the run to on_failure(step) for the
    first branch that failed, or on to on_success. crash: where an error of the Parallel
    state itself goes.

    A branch ends with {"done": true} or {"failure": {"Error": ...}} and nothing more: the
    Parallel's result holds one per branch, and a state's data is capped at 256 KiB (the
    failed step's full error is in its record, not in the machine)."""
    branches = []
    for step in group:
        task_name, failed_name = _state_name(branch_prefix, step), _state_name(failed_prefix, step)
        task = {**branch_task(step), "ResultSelector": {"done": True}, "ResultPath": "$",
                "End": True, "Catch": _catch_all(failed_name, "$")}
        failed = {"Type": "Pass", "Parameters": {"failure": {"Error.$": "$.Error"}},
                  "End": True}
        branches.append({"StartAt": task_name,
                         "States": {task_name: task, failed_name: failed}})
    check = f"check-{name}"
    states: dict[str, dict[str, Any]] = {
        name: {"Type": "Parallel", "Branches": branches,
               # Each branch starts from the ids and the error alone: whatever else the
               # run carries is not copied n times into the branches.
               "Parameters": {"execution_id.$": "$.execution_id", "error.$": "$.error"},
               "ResultPath": "$.branches", "Next": check,
               "Catch": _catch_all(crash)},
        check: {"Type": "Choice", "Default": on_success, "Choices": [
            {"Variable": f"$.branches[{index}].failure", "IsPresent": True,
             "Next": on_failure(step)}
            for index, step in enumerate(group)]},
    }
    return states


def _failed_branch(index: int, step: Step, target: str) -> dict[str, Any]:
    """The failed branch's error as $.error, with the step it came from, then on to target."""
    return {"Type": "Pass", "InputPath": f"$.branches[{index}].failure",
            "Parameters": {"Error.$": "$.Error", "step_id": step.id,
                           "Cause": f"step {step.id} failed; its record says why"},
            "ResultPath": "$.error", "Next": target}


def _undo_task(step: Step, targets: MachineTargets, options: CompileOptions, *,
               last: bool, skip_undone: bool) -> dict[str, Any]:
    return _task(
        targets.function_for(step, Phase.COMPENSATION), step, Phase.COMPENSATION,
        timeout_s=task_timeout_seconds(step, Phase.COMPENSATION, options),
        retriers=_retriers(COMPENSATION_RETRY.retries, COMPENSATION_RETRY.policy, options),
        last=last, skip_undone=skip_undone)


def _undo_chain(groups: list[list[Step]], targets: MachineTargets,
                options: CompileOptions, *, skip_undone: bool) -> dict[str, dict[str, Any]]:
    """undo(gn) -> ... -> undo(g1) -> Compensated; any undo failing for good ->
    CompensationFailed (a group's other compensations end first).

    skip_undone (the compensation-only machine): steps that never did anything (FAILED, or
    never started) are left as they are. In the forward machine's chain a not-yet-finished
    step may be a timed-out one still at work, so only FAILED ones are skipped."""
    states: dict[str, dict[str, Any]] = {}
    ordered = list(reversed(groups))
    for index, group in enumerate(ordered):
        is_last = index == len(ordered) - 1
        name = _undo_name(group)
        if group[0].fans_out or group[0].calls_saga:
            build = _fanout_undo_states if group[0].fans_out else _child_undo_states
            states.update(build(
                group[0], targets, options, last=is_last, skip_undone=skip_undone,
                after="Compensated" if is_last else _undo_name(ordered[index + 1])))
            continue
        if len(group) == 1:
            # The last single undo ends the compensation itself (no recorder state).
            state = _undo_task(group[0], targets, options, last=is_last,
                               skip_undone=skip_undone)
            state["Catch"] = _catch_all("RecordCompensationFailed")
            state["Next"] = "Compensated" if is_last else _undo_name(ordered[index + 1])
            states[name] = state
            continue
        after = "RecordCompensated" if is_last else _undo_name(ordered[index + 1])
        states.update(_parallel(
            name, group,
            lambda step: _undo_task(step, targets, options, last=False,
                                    skip_undone=skip_undone),
            "undo:", "undo-failed:", on_failure=lambda _: "RecordCompensationFailed",
            on_success=after, crash="RecordCompensationFailed"))
        if is_last:
            states["RecordCompensated"] = {
                **_recorder(targets.recorder, ExecutionStatus.COMPENSATED),
                "Next": "Compensated"}
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


def _callback_task(step: Step, targets: MachineTargets, options: CompileOptions, *,
                   last: bool, after: str, on_timeout: str, on_error: str) -> dict[str, Any]:
    """A callback: its Lambda (the action's, or the recorder's for an approval) is handed the
    task token, commits the callback and calls the action once; the engine waits until the
    API completes the token, the wait times out, or a heartbeat is missed."""
    function = (targets.function_for(step, Phase.ACTION) if step.action is not None
                else targets.recorder)
    plain = _task(function, step, Phase.ACTION, timeout_s=0, retriers=[], last=last)
    payload = {**plain["Parameters"], "task_token.$": "$$.Task.Token"}
    assert step.timeout is not None
    task: dict[str, Any] = {
        "Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
        "Parameters": {"FunctionName": function, "Payload": payload},
        "ResultPath": None,
        "TimeoutSeconds": wait_task_timeout_s(parse_duration_ms(step.timeout),
                                              options.task_timeout_margin_s),
        # Called once: only Lambda's own throttling is retried (the call never ran).
        "Retry": _retriers(0, options.action_retry, options,
                           never=(*CALLBACK_NEVER_RETRIED, *_skips(step))),
        "Catch": [{"ErrorEquals": [CALLBACK_COMPLETED, *_skips(step)], "ResultPath": None,
                   "Next": after},
                  *([{"ErrorEquals": list(CALLBACK_UNDO_ITSELF), "ResultPath": "$.error",
                      "Next": on_timeout}] if on_timeout != on_error else []),
                  *_catch_all(on_error)],
        "Next": after,
    }
    if step.heartbeat is not None:
        task["HeartbeatSeconds"] = max(1, parse_duration_ms(step.heartbeat) // 1000)
    return task


def _skips(step: Step) -> list[str]:
    """What a waiting step's Task raises when its condition is false (caught: move on)."""
    return [STEP_SKIPPED] if step.when is not None else []


def _timer_states(step: Step, targets: MachineTargets, options: CompileOptions, *,
                  after: str, on_error: str) -> dict[str, dict[str, Any]]:
    """A timer: the recorder sets it ($.timer.until, a UTC timestamp), a Wait state waits
    for that moment, the recorder records it fired. Nothing runs meanwhile."""
    start, wait, fired = (_state_name(prefix, step) for prefix in ("step:", "wait:", "fired:"))
    retriers = _retriers(3, options.action_retry, options,
                         never=(*NEVER_RETRIED, *_skips(step)))

    def recorder_task(timer: str) -> dict[str, Any]:
        task = _task(targets.recorder, step, Phase.ACTION, timeout_s=30, retriers=retriers,
                     last=False)
        task["Parameters"]["timer"] = timer
        task["Catch"] = _catch_all(on_error)
        return task

    first = recorder_task("start")
    if step.when is not None:  # a false condition skips the timer: on to what follows it
        first["Catch"] = [{"ErrorEquals": [STEP_SKIPPED], "ResultPath": None, "Next": after},
                          *first["Catch"]]
    return {
        start: {**first, "ResultSelector": {"until.$": "$.until"},
                "ResultPath": "$.timer", "Next": wait},
        wait: {"Type": "Wait", "TimestampPath": "$.timer.until", "Next": fired},
        fired: {**recorder_task("fired"), "Next": after},
    }


def _fanout_task(step: Step, targets: MachineTargets, options: CompileOptions, task: str, *,
                 last: bool = False, skip_undone: bool = False) -> dict[str, Any]:
    """One of a fan-out's recorder Tasks (expand, gather, undo-items, undone)."""
    parameters: dict[str, Any] = {"execution_id.$": "$.execution_id", "step_id": step.id,
                                  "phase": (Phase.ACTION if task in ("expand", "gather")
                                            else Phase.COMPENSATION).value,
                                  "fanout": task, "last": last, "error.$": "$.error"}
    if skip_undone:
        parameters["skip_undone"] = True
    return {"Type": "Task", "Resource": targets.recorder, "Parameters": parameters,
            "ResultPath": None, "TimeoutSeconds": 60,
            "Retry": _retriers(3, options.action_retry, options,
                               never=(*NEVER_RETRIED, FANOUT_FAILED))}


def _item_map(step: Step, items_path: str, item_task: dict[str, Any], *, prefix: str,
              options: CompileOptions) -> dict[str, Any]:
    """An inline Map that runs item_task once per index in items_path, at most the step's
    max_concurrency at once. Each iteration catches its own failure and ends (its item's
    record says why), so one failing item never cuts the others short; its result is
    dropped (the items' results are in MySQL)."""
    task_name, failed_name = _state_name(f"{prefix}item:", step), _state_name(
        f"{prefix}item-failed:", step)
    task = {**item_task, "End": True, "Catch": _catch_all(failed_name, "$.failure")}
    task["Parameters"] = {**task["Parameters"], "item.$": "$.item"}
    return {
        "Type": "Map", "ItemsPath": items_path,
        "MaxConcurrency": min(step.max_concurrency or options.max_fanout_concurrency,
                              options.max_fanout_concurrency),
        "ItemSelector": {"execution_id.$": "$.execution_id", "item.$": "$$.Map.Item.Value",
                         "error.$": "$.error"},
        "ItemProcessor": {"ProcessorConfig": {"Mode": "INLINE"}, "StartAt": task_name,
                          "States": {task_name: task,
                                     failed_name: {"Type": "Pass", "Result": {},
                                                   "End": True}}},
        "ResultPath": None,
    }


def _fanout_states(step: Step, targets: MachineTargets, options: CompileOptions, *,
                   after: str, on_error: str, on_unknown: str) -> dict[str, dict[str, Any]]:
    """expand (its list checked, its items added) -> the items' Map -> gather. A failure of
    expand did nothing (on_error); past it, items may have done their work (on_unknown: the
    step's own undo)."""
    expand, items, gather = (_state_name(prefix, step)
                             for prefix in ("step:", "items:", "gather:"))
    return {
        expand: {**_fanout_task(step, targets, options, "expand"),
                 "ResultSelector": {"items.$": "$.items"}, "ResultPath": "$.fanout",
                 "Catch": _catch_all(on_error), "Next": items},
        items: {**_item_map(step, "$.fanout.items",
                            _forward_task(step, targets, options, last=False), prefix="",
                            options=options),
                "Catch": _catch_all(on_unknown), "Next": gather},
        gather: {**_fanout_task(step, targets, options, "gather"),
                 "Catch": _catch_all(on_unknown), "Next": after},
    }


def _fanout_undo_states(step: Step, targets: MachineTargets, options: CompileOptions, *,
                        last: bool, skip_undone: bool, after: str) -> dict[str, dict[str, Any]]:
    """undo-items (the items that may have acted) -> their compensations' Map -> undone
    (the step compensated; the chain's last undo ends the compensation)."""
    listed, undo_map, undone = (_state_name(prefix, step)
                                for prefix in ("undo:", "undo-items:", "undone:"))
    failed = _catch_all("RecordCompensationFailed")
    return {
        listed: {**_fanout_task(step, targets, options, "undo-items",
                                skip_undone=skip_undone),
                 "ResultSelector": {"items.$": "$.items"}, "ResultPath": "$.undo",
                 "Catch": failed, "Next": undo_map},
        undo_map: {**_item_map(step, "$.undo.items",
                               _undo_task(step, targets, options, last=False,
                                          skip_undone=skip_undone), prefix="undo-",
                               options=options),
                   "Catch": failed, "Next": undone},
        undone: {**_fanout_task(step, targets, options, "undone", last=last),
                 "Catch": failed, "Next": after},
    }


# Step Functions' integration that starts another machine's run and waits for it to end, its
# output as JSON (the child's machines end in a Fail state when it compensates, so every end is
# caught, and the child's record says how it went).
START_RUN_AND_WAIT = "arn:aws:states:::states:startExecution.sync:2"
# A child that has not ended when its Task asks: waited for with backoff, up to about 5 minutes
# (settling after its run ended) or about 50 minutes (undoing one still running).
_CHILD_SETTLE_WAIT = RetryPolicy(interval_seconds=2, backoff_rate=2.0, max_delay_seconds=60)
_CHILD_UNDO_WAIT = RetryPolicy(interval_seconds=5, backoff_rate=2.0, max_delay_seconds=300)


def _child_task(step: Step, targets: MachineTargets, options: CompileOptions, task: str, *,
                last: bool = False, skip_undone: bool = False) -> dict[str, Any]:
    """One of a child step's recorder Tasks (start, settle, expired, undo, undone)."""
    undoing = task in ("undo", "undone")
    parameters: dict[str, Any] = {
        "execution_id.$": "$.execution_id", "step_id": step.id,
        "phase": (Phase.COMPENSATION if undoing else Phase.ACTION).value, "child": task,
        "machine.$": "$$.StateMachine.Id", "last": last, "error.$": "$.error"}
    if skip_undone:
        parameters["skip_undone"] = True
    waits = (_retrier([CHILD_RUNNING], 10, _CHILD_UNDO_WAIT) if undoing
             else _retrier([CHILD_RUNNING], 8, _CHILD_SETTLE_WAIT))
    retriers = _retriers(3, options.action_retry, options)
    return {"Type": "Task", "Resource": targets.recorder, "Parameters": parameters,
            "ResultPath": None, "TimeoutSeconds": 60,
            "Retry": [*retriers[:2], waits, *retriers[2:]]}


def _child_run(spec: str, *, timeout_s: int | None, after: str) -> dict[str, Any]:
    """The child's run, started and waited for; every end of it goes on to `after`."""
    state: dict[str, Any] = {
        "Type": "Task", "Resource": START_RUN_AND_WAIT,
        "Parameters": {"StateMachineArn.$": f"{spec}.machine", "Name.$": f"{spec}.name",
                       "Input.$": f"{spec}.input"},
        "ResultPath": None,
        "Catch": [{"ErrorEquals": [ANY_ERROR], "ResultPath": None, "Next": after}],
        "Next": after}
    if timeout_s is not None:
        state["TimeoutSeconds"] = timeout_s
    return state


def _child_states(step: Step, targets: MachineTargets, options: CompileOptions, *,
                  after: str, on_error: str, on_unknown: str) -> dict[str, dict[str, Any]]:
    """start -> (its run, if it has one to start) -> settle. A failure of start made no
    child (on_error); past it, the child may have done its work (on_unknown: the step's own
    undo, which waits for the child to end and undoes what it did)."""
    start, choose, run, settle, expired = (_state_name(prefix, step) for prefix in (
        "step:", "child?:", "child:", "settle:", "expired:"))
    waited = _child_run("$.child.run", timeout_s=wait_task_timeout_s(
        parse_duration_ms(step.timeout), options.task_timeout_margin_s), after=settle)
    waited["Catch"] = [{"ErrorEquals": [TASK_TIMEOUT], "ResultPath": None, "Next": expired},
                       *waited["Catch"]]
    return {
        start: {**_child_task(step, targets, options, "start"),
                "ResultSelector": {"run.$": "$.run", "skipped.$": "$.skipped"},
                "ResultPath": "$.child", "Catch": _catch_all(on_error), "Next": choose},
        choose: {"Type": "Choice", "Default": settle, "Choices": [
            {"Variable": "$.child.skipped", "BooleanEquals": True, "Next": after},
            {"Variable": "$.child.run", "IsNull": False, "Next": run}]},
        run: waited,
        settle: {**_child_task(step, targets, options, "settle"),
                 "Catch": _catch_all(on_unknown), "Next": after},
        expired: {**_child_task(step, targets, options, "expired"),
                  "Catch": _catch_all(on_unknown), "Next": after},
    }


def _child_undo_states(step: Step, targets: MachineTargets, options: CompileOptions, *,
                       last: bool, skip_undone: bool, after: str) -> dict[str, dict[str, Any]]:
    """undo (the child moved to COMPENSATING, once it has ended) -> its compensation run ->
    undone (the step compensated; the chain's last undo ends the compensation)."""
    undo, choose, run, undone = (_state_name(prefix, step) for prefix in (
        "undo:", "undo-child?:", "undo-child:", "undone:"))
    failed = _catch_all("RecordCompensationFailed")
    return {
        undo: {**_child_task(step, targets, options, "undo", skip_undone=skip_undone),
               "ResultSelector": {"run.$": "$.run"}, "ResultPath": "$.child",
               "Catch": failed, "Next": choose},
        choose: {"Type": "Choice", "Default": undone, "Choices": [
            {"Variable": "$.child.run", "IsNull": False, "Next": run}]},
        run: _child_run("$.child.run", timeout_s=None, after=undone),
        undone: {**_child_task(step, targets, options, "undone", last=last),
                 "Catch": failed, "Next": after},
    }


def _forward_task(step: Step, targets: MachineTargets, options: CompileOptions, *,
                  last: bool) -> dict[str, Any]:
    retries = action_retries(step.kind, step.max_retries, options.retriable_max_attempts)
    policy = RETRIABLE_RETRY if step.kind is StepKind.RETRIABLE else options.action_retry
    task = _task(targets.function_for(step, Phase.ACTION), step, Phase.ACTION,
                 timeout_s=task_timeout_seconds(step, Phase.ACTION, options),
                 retriers=_retriers(retries, policy, options), last=last)
    if step.kind is StepKind.RETRIABLE:
        # The runtime counts a round against the attempts this machine makes.
        task["Parameters"]["max_attempts"] = options.retriable_max_attempts
    return task


# Step Functions' optimised integration that starts another machine's run (request and
# response: the only pattern an Express machine may use).
START_RUN = "arn:aws:states:::states:startExecution"
# What a hand-off's StartExecution raises when the run exists (a duplicate Express run's).
RUN_EXISTS = "StepFunctions.ExecutionAlreadyExistsException"


def _handoff_states(compensation_machine: str, options: CompileOptions, *,
                    name: str = "HandOff", ended: str = "HandedOff"
                    ) -> dict[str, dict[str, Any]]:
    """An Express run's way out when a step fails (and any run's when its deadline passes):
    start the version's Standard compensation machine for the execution (one run per
    execution, named after it) and stop. That run undoes every group that did something
    (skip_undone) and records the end."""
    return {
        name: {
            "Type": "Task", "Resource": START_RUN,
            "Parameters": {
                "StateMachineArn": compensation_machine,
                "Name.$": f"States.Format('{{}}{HANDOFF_SUFFIX}', $.execution_id)",
                "Input": {"execution_id.$": "$.execution_id", "error.$": "$.error",
                          "resume_at": ""}},
            "ResultPath": None,
            "Retry": [{"ErrorEquals": [RUN_EXISTS], "MaxAttempts": 0},
                      _retrier([ANY_ERROR], options.lambda_retry_attempts,
                               options.lambda_retry)],
            "Catch": [{"ErrorEquals": [RUN_EXISTS], "ResultPath": None, "Next": ended}],
            "Next": ended},
        ended: {"Type": "Fail", "Error": HANDED_OFF,
                      "Cause": "a step failed; the compensation runs on the version's "
                               "Standard compensation machine"},
    }


def compile_forward(steps: Sequence[Step], targets: MachineTargets,
                    options: CompileOptions = CompileOptions(), *,
                    comment: str = "", handoff_to: str | None = None,
                    deadline: Deadline | None = None) -> dict[str, Any]:
    """The forward machine. handoff_to (an Express machine's): the compensation machine a
    failure is handed to, in place of the undo chain. deadline: the saga's, run beside the
    forward path (_deadline_states)."""
    groups = groups_of(steps)
    undoable, retriable = _split_at_pivot(groups)
    compensate = options.compensation_enabled
    states: dict[str, dict[str, Any]] = {}
    for index, group in enumerate(groups):
        name = forward_name(group)
        after = "RecordCompleted" if index == len(groups) - 1 else forward_name(groups[index + 1])
        previous = _undo_before(groups, index)
        own_undo = _undo_name(group) if _has_undo(group) else previous
        if handoff_to is not None:
            # Anything to undo is undone on Standard; nothing to undo fails here as always.
            previous = previous if previous == "RecordFailed" else "HandOff"
            own_undo = own_undo if own_undo == "RecordFailed" else "HandOff"
        if group in retriable:
            on_error = on_timeout = "RecordParked"
        elif compensate:
            # A step whose outcome is unknown (timed out, cut at its deadline, an answer
            # that cannot be recorded) may have done its work: its group is undone too. Any
            # other failure of a single step means it did nothing (actions are atomic, and an
            # earlier unknown attempt makes the last one unknown too), so undo starts at the
            # group before; a group is undone whatever failed in it (its
            # steps that failed for good are skipped there).
            on_timeout = own_undo
            on_error = previous if len(group) == 1 else on_timeout
        else:
            on_error = on_timeout = "RecordFailed"
        if group[0].kind is StepKind.CALLBACK:
            states[name] = _callback_task(group[0], targets, options,
                                          last=after == "RecordCompleted", after=after,
                                          on_timeout=on_timeout, on_error=on_error)
            continue
        if group[0].kind is StepKind.WAIT:
            states.update(_timer_states(group[0], targets, options, after=after,
                                        on_error=on_error))
            continue
        if group[0].fans_out:
            states.update(_fanout_states(group[0], targets, options, after=after,
                                         on_error=on_error, on_unknown=on_timeout))
            continue
        if group[0].calls_saga:
            states.update(_child_states(group[0], targets, options, after=after,
                                        on_error=on_error, on_unknown=on_timeout))
            continue
        if len(group) == 1:
            state = _forward_task(group[0], targets, options, last=after == "RecordCompleted")
            state["Catch"] = ([{"ErrorEquals": list(UNDO_ITSELF), "ResultPath": "$.error",
                                "Next": on_timeout}] if on_timeout != on_error else []) \
                + _catch_all(on_error)
            state["Next"] = after
            states[name] = state
            continue
        failed = {step.id: _state_name("caught:", step) for step in group}
        states.update(_parallel(
            name, group,
            lambda step, last=after == "RecordCompleted": _forward_task(step, targets,
                                                                        options, last=last),
            "step:", "failed:", on_failure=lambda step, by_id=failed: by_id[step.id],
            on_success=after,
            crash=on_timeout))
        for position, step in enumerate(group):
            states[failed[step.id]] = _failed_branch(position, step, on_error)
    if compensate and handoff_to is not None:
        states.update(_handoff_states(handoff_to, options))
        cause = "the first step failed; there was nothing to compensate"
    elif compensate:
        states.update(_undo_chain([g for g in undoable if _has_undo(g)], targets, options,
                                  skip_undone=False))
        cause = "the first step failed; there was nothing to compensate"
    else:
        cause = "a step failed; compensation is disabled, so nothing was undone"
    if retriable:
        states["RecordParked"] = {**_recorder(targets.recorder, ExecutionStatus.PARKED),
                                  "Next": "Parked"}
        states["Parked"] = {"Type": "Fail", "Error": END_OF[ExecutionStatus.PARKED].error,
                            "Cause": "a retriable step ran out of attempts after the pivot; "
                                     "retry it forward or resolve it"}
    states["RecordCompleted"] = {**_recorder(targets.recorder, ExecutionStatus.COMPLETED),
                                 "Next": "Completed"}
    states["Completed"] = {"Type": "Succeed"}
    states["RecordFailed"] = {**_recorder(targets.recorder, ExecutionStatus.FAILED),
                              "Next": "Failed"}
    states["Failed"] = {"Type": "Fail", "Error": END_OF[ExecutionStatus.FAILED].error,
                        "Cause": cause}
    start = forward_name(groups[0])
    if retriable:
        # A retry forward starts the run again at the parked group ($.resume_at).
        states["Resume"] = {"Type": "Choice", "Default": start, "Choices": [
            {"Variable": "$.resume_at", "StringEquals": forward_name(group),
             "Next": forward_name(group)} for group in retriable]}
        start = "Resume"
    forward = _reachable(states, start)
    if deadline is not None:
        return {"Comment": comment or "saga", "StartAt": DEADLINE_STATE,
                "States": _deadline_states(forward, start, deadline, targets, options)}
    return {"Comment": comment or "saga", "StartAt": start, "States": forward}


@dataclass(frozen=True)
class Deadline:
    """A saga's deadline as its forward machine runs it: how long from the run's start, and
    the compensation machine what completed is handed to when it passes."""

    seconds: int
    compensation_machine: str


DEADLINE_STATE = "Deadline"
# The forward machine's ends, as the deadline's Parallel state passes them on.
_ENDS_PASSED_ON = (*(end.error for end in ENDS), HANDED_OFF)


def _deadline_states(forward: dict[str, dict[str, Any]], start: str, deadline: Deadline,
                     targets: MachineTargets, options: CompileOptions
                     ) -> dict[str, dict[str, Any]]:
    """The forward path beside its deadline, in one Parallel state. A run's own
    TimeoutSeconds cannot be caught (the run simply ends, nothing compensated), so the
    deadline is a branch: a Wait of the deadline's length from the run's start, then the
    recorder, which decides under the execution's lock (DeadlineVerdict) and, unless the
    execution has already moved on, records it and fails the branch. A Parallel state stops
    its other branch when one fails: the step at work is abandoned (its outcome unknown), and
    what completed is handed to the compensation machine (or the execution parks, or fails).

    A Parallel state succeeds only once both branches have, so the forward path never
    succeeds inside it: its Completed state fails with FORWARD_ENDED, caught as the run's
    success; its other ends are passed on as they are. A retry forward ($.resume_at set) runs
    without the deadline: an operator decided to go on."""
    inner = {**forward, "Completed": {"Type": "Fail", "Error": FORWARD_ENDED,
                                      "Cause": "every step succeeded; its end is recorded"}}
    verdict_error = {DeadlineVerdict.COMPENSATE: DEADLINE_PASSED,
                     DeadlineVerdict.PARK: END_OF[ExecutionStatus.PARKED].error,
                     DeadlineVerdict.FAIL: END_OF[ExecutionStatus.FAILED].error}
    armed, wait, record, verdict, off = ("deadline:armed", "deadline:wait", "deadline:record",
                                         "deadline:verdict", "deadline:not-now")
    branch = {
        armed: {"Type": "Choice", "Default": off, "Choices": [
            {"Variable": "$.resume_at", "StringEquals": "", "Next": wait}]},
        wait: {"Type": "Wait", "Seconds": deadline.seconds, "Next": record},
        record: {"Type": "Task", "Resource": targets.recorder,
                 "Parameters": {"execution_id.$": "$.execution_id", "deadline": True},
                 "ResultSelector": {"verdict.$": "$.verdict"}, "ResultPath": "$.deadline",
                 "TimeoutSeconds": 30,
                 "Retry": [{"ErrorEquals": [ANY_ERROR], "IntervalSeconds": 1,
                            "MaxAttempts": 5, "BackoffRate": 2.0}],
                 # A recorder that cannot be reached must not end a healthy saga: the
                 # forward path goes on (its steps' own timeouts still bound it).
                 "Catch": [{"ErrorEquals": [ANY_ERROR], "ResultPath": None, "Next": off}],
                 "Next": verdict},
        verdict: {"Type": "Choice", "Default": off, "Choices": [
            {"Variable": "$.deadline.verdict", "StringEquals": value.value,
             "Next": f"deadline:{value.value}"} for value in verdict_error]},
        off: {"Type": "Succeed"},
        **{f"deadline:{value.value}": {"Type": "Fail", "Error": error,
                                       "Cause": f"the saga's deadline passed ({value.value})"}
           for value, error in verdict_error.items()},
    }
    ends = {error: f"end:{error}" for error in _ENDS_PASSED_ON}
    handoff = _handoff_states(deadline.compensation_machine, options,
                              name="deadline:hand-off", ended=ends[HANDED_OFF])
    return {
        DEADLINE_STATE: {
            "Type": "Parallel",
            "Branches": [{"StartAt": start, "States": inner},
                         {"StartAt": armed, "States": branch}],
            "ResultPath": None, "Next": "end:Completed",
            "Catch": [{"ErrorEquals": [FORWARD_ENDED], "ResultPath": None,
                       "Next": "end:Completed"},
                      {"ErrorEquals": [DEADLINE_PASSED], "ResultPath": "$.error",
                       "Next": "deadline:hand-off"},
                      *({"ErrorEquals": [error], "ResultPath": None, "Next": state}
                        for error, state in ends.items())]},
        "end:Completed": {"Type": "Succeed"},
        **handoff,
        **{state: {"Type": "Fail", "Error": error,
                   "Cause": "the forward path ended so (its record says why)"}
           for error, state in ends.items() if state not in handoff},
    }


def _reachable(states: dict[str, dict[str, Any]], start: str) -> dict[str, dict[str, Any]]:
    """The states a run can enter (ASL refuses a machine with an unreachable state: when the
    first group is a Parallel, nothing ends FAILED without compensating first)."""
    seen, todo = set(), [start]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        state = states[name]
        todo += [t for t in (state.get("Next"), state.get("Default")) if t]
        todo += [rule["Next"] for rule in state.get("Choices", [])]
        todo += [catch["Next"] for catch in state.get("Catch", [])]
    return {name: state for name, state in states.items() if name in seen}


def compile_compensation(steps: Sequence[Step], targets: MachineTargets,
                         options: CompileOptions = CompileOptions(), *,
                         comment: str = "") -> dict[str, Any]:
    """Undo a COMPLETED execution (or retry a failed compensation): the groups up to the
    pivot, in reverse (after a pivot nothing is undone)."""
    undoable, _ = _split_at_pivot(groups_of(steps))
    undoable = [group for group in undoable if _has_undo(group)]
    if not undoable:  # only timers and approvals: nothing to undo, the undo is recorded
        return {"Comment": comment or "saga compensation", "StartAt": "RecordCompensated",
                "States": {"RecordCompensated": {
                    **_recorder(targets.recorder, ExecutionStatus.COMPENSATED),
                    "Next": "Compensated"},
                    "Compensated": {"Type": "Fail",
                                    "Error": END_OF[ExecutionStatus.COMPENSATED].error,
                                    "Cause": "nothing of the saga had anything to undo"}}}
    states = _undo_chain(undoable, targets, options, skip_undone=True)
    return {"Comment": comment or "saga compensation",
            "StartAt": _undo_name(undoable[-1]), "States": states}
