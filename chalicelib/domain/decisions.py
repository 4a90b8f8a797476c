"""What one delivery of a step may do, decided from the recorded statuses alone. Pure.

The step runtime reads the step run and its execution under their row locks, asks `decide`
whether to run, and after the attempt asks `after_failure` what the failure makes of the step;
it then writes what these return. Nothing here reads or writes storage, so every rule is tested
without a server.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from chalicelib.domain.fanout import item_run_id
from chalicelib.domain.lifecycle import (
    FAILED_FOR_GOOD,
    FORWARD_DONE,
    NEVER_DONE,
    UNDOING,
    ExecutionStatus,
    Outcome,
    Phase,
    StepStatus,
    StepTransition,
    action_final,
    compensation_final,
    failure_outcome,
    step_transition,
)
from chalicelib.domain.step_runs import LockedStep


class StepRequest(BaseModel):
    """The Task's Parameters (see the compiler)."""

    model_config = ConfigDict(extra="ignore")

    execution_id: str = Field(min_length=1)
    step_id: str = Field(min_length=1)
    phase: Phase
    last: bool = False
    # Compensation-only runs: leave steps that never did anything as they are.
    skip_undone: bool = False
    attempt: int = 0
    error: dict[str, Any] | None = None
    # A retriable step's attempts per round, as its machine retries them.
    max_attempts: int | None = Field(default=None, ge=1)
    # A callback step's Task: the engine's token for completing it (kept in the write model,
    # never sent to anyone).
    task_token: str | None = Field(default=None, min_length=1, max_length=8192)
    # A timer step's Tasks: set it ("start") or record that it fired ("fired").
    timer: Literal["start", "fired"] | None = None
    # A fan-out's recorder Tasks: start its items, gather them, list the items to undo, end
    # their undo (chalicelib.usecases.steps.fanouts).
    fanout: Literal["expand", "gather", "undo-items", "undone"] | None = None
    # An item of a fan-out (its Map iteration's): the attempt runs the item's own run,
    # "<step id>[<index>]", which step_id becomes.
    item: int | None = Field(default=None, ge=0)
    # A child step's recorder Tasks: make and start its child, settle the step on the child's
    # end, start the child's undo, record it (chalicelib.usecases.steps.children); machine:
    # the running machine's ARN (the child's machines are beside it).
    child: Literal["start", "settle", "expired", "undo", "undone"] | None = None
    machine: str | None = Field(default=None, max_length=2048)

    @model_validator(mode="after")
    def _item_run(self) -> StepRequest:
        if self.item is not None and "[" not in self.step_id:
            self.step_id = item_run_id(self.step_id, self.item)
        return self


class Verdict(StrEnum):
    RUN = "run"  # run the action or compensation, then record its outcome
    DUPLICATE = "duplicate"  # it already succeeded: do nothing, say so
    SKIP = "skip"  # nothing to undo: record nothing (but may end the compensation)
    ABORT = "abort"  # must not run: refuse with StepAborted


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    reason: str = ""
    # The last undo of the chain was skipped: the compensation still ends here.
    finish_compensation: bool = False


def decide(request: StepRequest, step: StepStatus, execution: ExecutionStatus, *,
           failed_elsewhere: bool = False) -> Decision:
    """Whether this delivery runs, given the step's and the execution's recorded statuses.

    failed_elsewhere: a step of the execution already failed for good and this delivery would
    start a new attempt; a group's other steps finish the attempt they are in, but start no
    other (the run is about to compensate, or to park)."""
    if request.phase is Phase.ACTION:
        if step in FORWARD_DONE:
            return Decision(Verdict.DUPLICATE)
        if step in UNDOING:
            return Decision(Verdict.ABORT, "was compensated before it could run")
        if step is StepStatus.FAILED or execution is not ExecutionStatus.RUNNING:
            # A late or repeated delivery: the step failed for good, or the execution moved
            # on (it is being undone, or ended), so running it now could never be compensated.
            return Decision(Verdict.ABORT, f"cannot run: it is {step.value.lower()} and the "
                                           f"execution is {execution.value.lower()}")
        if failed_elsewhere:
            return Decision(Verdict.ABORT, "starts no new attempt: another step of its "
                                           "execution failed for good")
        return Decision(Verdict.RUN)
    # An undo does nothing for a step whose action failed for good (it did nothing), nor, in
    # a compensation-only run, for one that never ran.
    if step is StepStatus.COMPENSATED or step in FAILED_FOR_GOOD or (
            request.skip_undone and step in NEVER_DONE):
        return Decision(Verdict.SKIP, finish_compensation=request.last)
    return Decision(Verdict.RUN)


def after_failure(phase: Phase, attempt: int, max_retries: int, *, permanent: bool,
                  unknown: bool = False, was_unknown: bool = False) -> StepTransition:
    """What a failed attempt (1-based, counted in its round) makes of its step: retried, or
    failed for good; an action's outcome unknown when this attempt's is (unknown) or an
    earlier one's was (was_unknown), so that its step is compensated, never skipped."""
    final = (action_final(attempt, max_retries, permanent=permanent) if phase is Phase.ACTION
             else compensation_final(attempt, permanent=permanent))
    outcome = (failure_outcome(unknown=unknown, was_unknown=was_unknown)
               if phase is Phase.ACTION else Outcome.FAILED)
    return step_transition(phase, outcome, final=final)


def after_success(phase: Phase) -> StepTransition:
    return step_transition(phase, Outcome.SUCCEEDED, final=True)


def starts_compensating(phase: Phase, execution: ExecutionStatus) -> bool:
    """A forward run being undone starts compensating with its first successful undo (an
    operator's compensation moved the execution to COMPENSATING before its machine started)."""
    return phase is Phase.COMPENSATION and execution is ExecutionStatus.RUNNING


def ends_compensation(request: StepRequest, execution: ExecutionStatus) -> bool:
    """The last undo of the chain ends the compensation, unless it already ended."""
    return (request.phase is Phase.COMPENSATION and request.last
            and execution is not ExecutionStatus.COMPENSATED)


def compensation_facts(run: LockedStep, cause: Mapping[str, Any] | None) -> dict[str, Any]:
    """What a compensation is told of the action it undoes and of why: the action's result
    (None when it never succeeded, as when it timed out), the action's error when it failed,
    and the failure that made the saga compensate ({step_id, type, message})."""
    reason = ({"step_id": cause.get("step_id"), "type": cause.get("type") or "Error",
               "message": cause.get("message")} if cause else None)
    action_error: dict[str, Any] | None = None
    if run.status is StepStatus.OUTCOME_UNKNOWN and run.error:
        # Why its outcome is unknown, as the step recorded it (the saga's cause may be a
        # timeout of the machine's, or another step's failure).
        action_error = {"type": run.error.get("type") or "Error",
                        "message": run.error.get("message")}
    elif reason is not None and reason["step_id"] == run.step_id:
        action_error = {"type": reason["type"], "message": reason["message"]}
    elif run.result is None and run.compensation_attempts == 0 and run.error:
        # Before the first compensation attempt the step's error is still its action's.
        action_error = {"type": run.error.get("type") or "Error",
                        "message": run.error.get("message")}
    return {"action_result": run.result, "action_error": action_error, "reason": reason}
