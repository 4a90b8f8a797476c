"""A saga's deadline passing, on the recorder's side.

The forward machine runs the saga's forward path beside a Wait of its deadline (the
compiler's _deadline_states). When the Wait ends first, the recorder asks `DeadlineKeeper`
what becomes of the execution and records it under the execution's row lock, so a step that
answers at the same moment is either before it (and counted) or after it (and refused):

- the execution already ended, or is compensating: nothing (DeadlineVerdict.NONE);
- otherwise the steps at work (RUNNING or WAITING) are abandoned as unknown outcomes (their
  calls may have done something: each is compensated like a step that timed out, after its
  call's own deadline as the late-action rule says), and the execution compensates what
  completed, with reason `deadline`; past its pivot it parks instead, as a retriable failure
  does; with compensation disabled it fails.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from chalicelib.domain import events
from chalicelib.domain.executions import execution_error
from chalicelib.domain.lifecycle import (
    DEADLINE,
    EVENT_OF,
    FORWARD_DONE,
    DeadlineVerdict,
    ExecutionStatus,
    Outcome,
    Phase,
    StepKind,
    StepStatus,
)
from chalicelib.domain.models import StoredSaga
from chalicelib.domain.step_context import PermanentError
from chalicelib.domain.step_runs import LockedExecution
from chalicelib.usecases.ports import DefinitionStore
from chalicelib.usecases.steps.ledger import LedgerTransaction, StepLedger

# What the execution moves to for each verdict that acts.
STATUS_OF: dict[DeadlineVerdict, ExecutionStatus] = {
    DeadlineVerdict.COMPENSATE: ExecutionStatus.COMPENSATING,
    DeadlineVerdict.PARK: ExecutionStatus.PARKED,
    DeadlineVerdict.FAIL: ExecutionStatus.FAILED,
}
# The steps a passing deadline finds at work.
AT_WORK = (StepStatus.RUNNING, StepStatus.WAITING)
# The reason the execution's events give.
REASON = "deadline"


def verdict(pivot_status: StepStatus | None, *, compensation_enabled: bool) -> DeadlineVerdict:
    """What a deadline that passed while the execution was RUNNING makes of it: past a pivot
    that succeeded nothing is undone (it parks); else what completed is compensated, unless
    compensation is disabled."""
    if pivot_status in FORWARD_DONE:
        return DeadlineVerdict.PARK
    return DeadlineVerdict.COMPENSATE if compensation_enabled else DeadlineVerdict.FAIL


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class DeadlineKeeper:
    ledger: StepLedger
    definitions: DefinitionStore
    compensation_enabled: bool = True
    clock: Callable[[], datetime] = _utc_now

    def passed(self, execution_id: str) -> DeadlineVerdict:
        """The deadline's Wait ended: decide and record (a repeated delivery finds the
        execution moved on and answers NONE, which leaves the run as the first one set it)."""
        with self.ledger.transaction() as tx:
            execution = tx.lock_execution(execution_id)
            if execution is None:
                raise PermanentError(f"no execution {execution_id!r}")
            if execution.status is not ExecutionStatus.RUNNING:
                return DeadlineVerdict.NONE
            saga = self.definitions.get_revision(execution.saga_id, execution.revision)
            if saga is None or saga.deadline is None:
                raise PermanentError(f"execution {execution_id!r} has no saga deadline")
            # Only the pivot's row is read (and locked: it cannot succeed under the verdict).
            pivot = saga.pivot()
            pivot_run = tx.lock_step(execution_id, pivot.id) if pivot is not None else None
            decided = verdict(pivot_run.status if pivot_run is not None else None,
                              compensation_enabled=self.compensation_enabled)
            at = self.clock()
            at_work = [step_id for status in AT_WORK for step_id in tx.steps_in(
                execution_id, status)]
            error = execution_error(
                at_work[0] if at_work else None, Phase.ACTION, DEADLINE,
                f"the saga's deadline ({saga.deadline}) passed before it completed"
                + (f"; {', '.join(at_work)} abandoned at work (outcome unknown)"
                   if at_work else ""))
            for step_id in at_work:
                self._abandon(tx, execution, saga, step_id, at)
            status = STATUS_OF[decided]
            if not tx.set_execution_status(execution_id, status, at=at, error=error):
                return DeadlineVerdict.NONE
            tx.append_events(execution_id, [(events.moved(
                EVENT_OF[status], saga_id=execution.saga_id, status=status,
                execution_error=error, reason=REASON), at)])
        return decided

    def _abandon(self, tx: LedgerTransaction, execution: LockedExecution, saga: StoredSaga,
                 step_id: str, at: datetime) -> None:
        """A step at work when the deadline passed: its outcome is unknown from now (a late
        answer is still recorded, and its compensation waits for its call's deadline)."""
        run = tx.lock_step(execution.id, step_id)
        if run is None:
            return
        step = saga.step(step_id)
        detail = {"type": DEADLINE,
                  "message": "the saga's deadline passed while this step was at work"}
        if step is not None and step.kind is StepKind.CALLBACK and step.action is None:
            detail["message"] = "the saga's deadline passed while this approval was waiting"
        attempt = max(1, run.action_attempts)
        record = tx.record_outcome(execution.id, step_id, status=StepStatus.OUTCOME_UNKNOWN,
                                   phase=Phase.ACTION, at=at, started=at, error=detail,
                                   claimed=True)
        tried = events.StepAttempt(saga_id=execution.saga_id, step_id=step_id,
                                   attempt=attempt, phase=Phase.ACTION, started=at, ended=at)
        tx.append_events(execution.id, [(events.step_outcome_unknown(
            tried, error=detail, outcome=Outcome.UNKNOWN, step=record), at)])
