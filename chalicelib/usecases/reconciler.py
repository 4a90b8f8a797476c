"""Finds executions the write model believes are running while the engine says they ended
(or never started), and records how they really ended, so nothing stays RUNNING forever.

It asks the engine only about executions past the moment they were next expected to move
(chalicelib.domain.expected_by) by its grace, so one that waits (a callback, a timer) costs
nothing until its wait should have ended. Runs as a scheduled Lambda on AWS and as
`saga reconcile` locally.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from chalicelib.domain.executions import (
    Execution,
    ExecutionStatus,
    execution_error,
    failure_cause,
)
from chalicelib.domain.expected_by import express_run_lost
from chalicelib.domain.lifecycle import (
    ACTIVE,
    END_BY_ERROR,
    EVENT_OF,
    FORWARD_DONE,
    NEVER_DONE,
    RUN_LOST,
    TOOK_EFFECT,
    RunStatus,
)
from chalicelib.usecases.ports import (
    DefinitionStore,
    Engine,
    ExecutionStore,
    RunKind,
    RunRef,
    RunState,
)


@dataclass(frozen=True)
class Repair:
    execution_id: str
    was: ExecutionStatus
    now: ExecutionStatus
    reason: str


def verdict(execution: Execution, run: RunState) -> tuple[ExecutionStatus, str, str] | None:
    """(status, event type, reason) the execution really has, or None if it is still going."""
    found = _status_of(execution, run)
    if found is None:
        return None
    status, reason = found
    return status, EVENT_OF[status], reason


def _status_of(execution: Execution, run: RunState) -> tuple[ExecutionStatus, str] | None:
    if run.status is RunStatus.RUNNING:
        return None
    if run.status is RunStatus.MISSING:
        return ExecutionStatus.FAILED, "its state machine run never started"
    if run.status is RunStatus.SUCCEEDED:
        return ExecutionStatus.COMPLETED, "the run succeeded but its completion was not recorded"
    if run.status is RunStatus.TIMED_OUT:
        return ExecutionStatus.TIMED_OUT, "the run timed out"
    end = END_BY_ERROR.get(run.error or "")
    if run.status is RunStatus.FAILED and end is not None:
        return end.status, f"the run ended {run.error} but that was not recorded"
    # The orchestration itself broke (or was aborted). Where steps took effect a person must
    # look: COMPENSATION_FAILED can be retried or resolved; with nothing done it simply failed.
    done = any(step.status in TOOK_EFFECT for step in execution.steps)
    reason = f"the run ended {run.status.value} ({run.error or 'no error name'})"
    return (ExecutionStatus.COMPENSATION_FAILED if done else ExecutionStatus.FAILED), reason


class Reconciler:
    def __init__(self, executions: ExecutionStore, engine: Engine, *,
                 grace_seconds: float, describe_budget: int = 100,
                 definitions: DefinitionStore | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.executions = executions
        self.engine = engine
        # The versions that ran, to compensate an execution whose Express run was lost (without
        # them such an execution is left COMPENSATION_FAILED for an operator).
        self.definitions = definitions
        self.clock = clock
        self.grace_seconds = grace_seconds
        # Describing a run spends a quota shared with every other caller (on Step Functions
        # 15/s from a bucket of 300 per account): one run spends at most this many.
        self.describe_budget = describe_budget
        # Ids looked at in this round: executions still running stay the longest overdue, so
        # the next run goes on after them instead of asking about the same ones again.
        self._seen: set[str] = set()

    def run(self, limit: int = 500) -> list[Repair]:
        if not self.engine.keeps_history:
            return []  # nothing to ask: such an engine reports every end itself
        repairs = []
        listed = self.executions.unsettled(self.grace_seconds, limit)
        fresh = [stale for stale in listed if stale.id not in self._seen]
        if not fresh:  # every one was looked at: a new round from the oldest
            self._seen.clear()
            fresh = listed
        spent = 0
        for stale in fresh:
            execution = self.executions.get(stale.id) or stale
            kept = RunRef.kept_for(execution)
            if kept is not None:
                if spent >= self.describe_budget:
                    break
                spent += 1
            self._seen.add(stale.id)
            # A ref without its run (started, the start not recorded): the engine finds the
            # forward run by its name.
            run = RunState(RunStatus.MISSING) if kept is None else self.engine.describe(kept)
            if run.status is RunStatus.UNKNOWN:
                if (repair := self._lost_run(execution)) is not None:
                    repairs.append(repair)
                continue
            found = verdict(execution, run)
            if found is None:
                continue
            status, event_type, reason = found
            moved = self.executions.transition(
                execution.id, set(ACTIVE), status, event_type,
                {"reconciled": True, "reason": reason},
                error=execution.error.model_dump() if execution.error else
                execution_error(None, None, run.error or "Reconciled", reason))
            if moved is not None:
                repairs.append(Repair(execution.id, execution.status, status, reason))
        return repairs

    # -- runs the engine keeps no record of (Express) -------------------------------------------

    def _lost_run(self, execution: Execution) -> Repair | None:
        """An execution whose run the engine cannot describe: once its silence outlasts the
        grace and a retry's longest backoff, the run is lost. Nothing done: it failed. Every
        step succeeded: it completed (its end went unrecorded). Steps that may have acted:
        compensated on the version's Standard compensation machine, as a failure would have
        been. A lost compensation is left for an operator to retry."""
        expected = execution.expected_by or execution.updated_at
        if not express_run_lost(expected, self.clock(), self.grace_seconds):
            return None
        if execution.status is not ExecutionStatus.RUNNING:
            return self._move(execution, ExecutionStatus.COMPENSATION_FAILED,
                              "its compensation run was lost; retry the compensation")
        if all(step.status in NEVER_DONE for step in execution.steps):
            return self._move(execution, ExecutionStatus.FAILED,
                              "its Express run was lost before any step did anything")
        if all(step.status in FORWARD_DONE for step in execution.steps):
            # Only the recording of its end was lost (as the Standard verdict for a run that
            # succeeded unrecorded): nothing is undone.
            return self._move(execution, ExecutionStatus.COMPLETED,
                              "every step succeeded; its Express run's end was not recorded")
        saga = (self.definitions.get_revision(execution.saga_id, execution.revision)
                if self.definitions is not None else None)
        if saga is None:
            return self._move(execution, ExecutionStatus.COMPENSATION_FAILED,
                              "its Express run was lost and its version cannot be read to "
                              "compensate it; retry the compensation")
        reason = "its Express run was lost; what its steps did is compensated"
        repair = self._move(execution, ExecutionStatus.COMPENSATING, reason)
        if repair is None:
            return None
        try:
            run = self.engine.start(saga, execution.id, RunKind.COMPENSATION)
        except Exception as error:  # the operator retries it; the reason says why
            self._move(execution, ExecutionStatus.COMPENSATION_FAILED,
                       f"its compensation could not be started: {type(error).__name__}",
                       allowed={ExecutionStatus.COMPENSATING})
            return repair
        self.executions.mark_started(execution.id, run)
        return repair

    def _move(self, execution: Execution, status: ExecutionStatus, reason: str, *,
              allowed: AbstractSet[ExecutionStatus] = frozenset(ACTIVE)) -> Repair | None:
        error = (execution.error.model_dump() if execution.error else
                 failure_cause(execution.steps) or execution_error(
                     None, None, RUN_LOST, reason))
        # A compensation it starts says who started it; an end it records, that it was
        # reconciled (the events' own fields).
        detail: dict[str, Any] = ({"reason": reason, "by": "reconciler"}
                                  if status is ExecutionStatus.COMPENSATING
                                  else {"reconciled": True, "reason": reason})
        moved = self.executions.transition(execution.id, set(allowed), status, EVENT_OF[status],
                                           detail, error=error)
        return None if moved is None else Repair(execution.id, execution.status, status, reason)
