"""What a step attempt came to, written in the ledger: the step's new status, the attempt, the
execution's status when the attempt moves it, and the events (outbox rows).

A success is written in the attempt's own transaction (with a built-in action's effect); a
failure in a transaction of its own, after the attempt's work was rolled back.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from chalicelib.config import DEFAULT_MAX_FANOUT_ITEMS
from chalicelib.domain import events
from chalicelib.domain.decisions import (
    StepRequest,
    after_failure,
    after_success,
    ends_compensation,
    starts_compensating,
)
from chalicelib.domain.executions import ExecutionStatus, clean_error, execution_error
from chalicelib.domain.fanout import item_result_limit, split_run_id
from chalicelib.domain.lifecycle import (
    EVENT_OF,
    FANOUT_FAILED_TYPE,
    OUTCOME_UNKNOWN,
    TASK_TIMEOUT,
    UNDOING,
    Outcome,
    Phase,
    StepStatus,
    action_retries,
)
from chalicelib.domain.models import Step
from chalicelib.domain.step_context import OutcomeUnknown, PermanentError
from chalicelib.domain.step_runs import EventBatch, LockedExecution
from chalicelib.domain.storable import MAX_ATTEMPT_INPUT_DEPTH, kept_input
from chalicelib.usecases.steps.failures import StepAborted, outcome_unknown
from chalicelib.usecases.steps.ledger import LedgerTransaction, StepLedger
from chalicelib.usecases.steps.revisions import StepDefinitions

logger = logging.getLogger(__name__)


def cause(tx: LedgerTransaction, request: StepRequest) -> dict[str, Any]:
    """The Catch's error when no step recorded one: a timed-out step is undone first; any
    other error came from the step after the one now undone (a Lambda that crashed)."""
    raw = request.error or {}
    step_id = raw.get("step_id") or request.step_id  # a group's failed branch says which
    if raw.get("Error") != TASK_TIMEOUT and not raw.get("step_id"):
        step_id = tx.next_step(request.execution_id, request.step_id) or step_id
    return execution_error(step_id, Phase.ACTION, raw.get("Error") or "Error", raw.get("Cause"))


@dataclass
class OutcomeWriter:
    """Writes an attempt's success in its transaction, or its failure in one of its own."""

    ledger: StepLedger
    steps: StepDefinitions
    clock: Callable[[], datetime]
    # config saga.max_result_bytes: a larger result fails its step for good.
    max_result_bytes: int
    # config saga.retriable_max_attempts: a retriable step's attempts per round, unless its
    # machine says otherwise.
    retriable_max_attempts: int
    # config saga.max_fanout_items: an item's result takes at most an even share of an event.
    max_fanout_items: int = DEFAULT_MAX_FANOUT_ITEMS

    def result_limit(self, step: Step) -> int:
        """The most a step's result may take (bytes, as JSON): an item's is smaller."""
        if step.item_index is None:
            return self.max_result_bytes
        return item_result_limit(self.max_result_bytes, self.max_fanout_items)

    def succeeded(self, tx: LedgerTransaction, request: StepRequest, step: Step,
                  execution: LockedExecution, result: dict[str, Any], started: datetime, *,
                  attempt: int, first: bool, claimed: bool = False,
                  answered_by: datetime | None = None,
                  sent: Mapping[str, Any] | None = None) -> None:
        """answered_by: the deadline a participant's action answered by (see the ledger);
        sent: the step's input as the attempt was sent it."""
        at = self.clock()
        execution_id = request.execution_id
        step_id = step.id
        kept = self.kept(sent)
        tx.record_attempt(execution_id, step_id, phase=request.phase, attempt=attempt,
                          outcome=Outcome.SUCCEEDED, started=started, ended=at, sent=kept)
        tried = events.StepAttempt(saga_id=execution.saga_id, step_id=step.id,
                                   attempt=attempt, phase=request.phase, started=started,
                                   ended=at, input=kept)
        if request.phase is Phase.ACTION:
            size = len(json.dumps(result, default=str).encode())
            if size > (limit := self.result_limit(step)):
                raise PermanentError(
                    f"step {step_id}'s result is {size} bytes; the limit is {limit} (config "
                    "saga.max_result_bytes" + (", shared by saga.max_fanout_items items)"
                                               if step.item_index is not None else ")"))
            record = tx.record_outcome(execution_id, step_id,
                                       status=after_success(Phase.ACTION).target,
                                       phase=Phase.ACTION, at=at, result=result,
                                       started=started, claimed=claimed,
                                       answered_by=answered_by)
            batch: EventBatch = [(events.step_started(tried), started)] if first else []
            batch.append((events.step_succeeded(tried, result=result, step=record), at))
            tx.append_events(execution_id, batch)
            return
        # An operator's compensation moved the execution to COMPENSATING before starting the
        # machine; here only a forward run that is being undone starts compensating, saying
        # why (unless the failing step already did).
        running = starts_compensating(request.phase, execution.status)
        why = (execution.error or cause(tx, request)) if running else None
        if running and tx.set_execution_status(execution_id, ExecutionStatus.COMPENSATING,
                                               at=started, error=why):
            tx.append_events(execution_id, [(events.compensation_started(
                saga_id=execution.saga_id, status=ExecutionStatus.COMPENSATING, cause=why,
                execution_error=why), started)])
        record = tx.record_outcome(execution_id, step_id,
                                   status=after_success(Phase.COMPENSATION).target,
                                   phase=Phase.COMPENSATION, at=at, error=None,
                                   started=started, claimed=claimed)
        tx.append_events(execution_id, [(events.step_compensated(tried, result=result,
                                                                 step=record), at)])
        if ends_compensation(request, execution.status):
            self.finish_compensation(tx, execution)

    # -- a fan-out's own run: its items' attempts are recorded as any step's; the step itself
    # succeeds, fails or is compensated once they have ended (no attempt of its own).

    def fanout_succeeded(self, tx: LedgerTransaction, step: Step, execution: LockedExecution,
                         result: dict[str, Any]) -> None:
        at = self.clock()
        record = tx.record_outcome(execution.id, step.id, status=after_success(Phase.ACTION).target,
                                   phase=Phase.ACTION, at=at, started=at, result=result,
                                   claimed=True)
        tx.append_events(execution.id, [(events.step_succeeded(
            self._fanout_attempt(execution, step, record, at), result=result, step=record),
            at)])

    def fanout_failed(self, tx: LedgerTransaction, step: Step, execution: LockedExecution,
                      message: str) -> None:
        """More items failed than tolerated: the step failed for good (the saga's cause)."""
        at = self.clock()
        error_info = clean_error(FANOUT_FAILED_TYPE, message)
        record = tx.record_outcome(execution.id, step.id, status=StepStatus.FAILED,
                                   phase=Phase.ACTION, at=at, started=at, error=error_info,
                                   claimed=True)
        why = execution_error(step.id, Phase.ACTION, error_info["type"], error_info["message"])
        tx.set_execution_error(execution.id, why)
        tx.append_events(execution.id, [(events.step_failed(
            self._fanout_attempt(execution, step, record, at), error=error_info,
            outcome=Outcome.FAILED, step=record, execution_error=why), at)])

    def fanout_compensated(self, tx: LedgerTransaction, step: Step,
                           execution: LockedExecution) -> None:
        """Every item that acted was compensated: so is the step (a COMPLETED saga's undo)."""
        at = self.clock()
        record = tx.record_outcome(execution.id, step.id,
                                   status=after_success(Phase.COMPENSATION).target,
                                   phase=Phase.COMPENSATION, at=at, started=at, claimed=True)
        tried = self._fanout_attempt(execution, step, record, at, phase=Phase.COMPENSATION)
        tx.append_events(execution.id, [(events.step_compensated(tried, result=None,
                                                                 step=record), at)])

    @staticmethod
    def _fanout_attempt(execution: LockedExecution, step: Step, record: dict[str, Any],
                        at: datetime, phase: Phase = Phase.ACTION) -> events.StepAttempt:
        started = record.get("started_at")
        begun = datetime.fromisoformat(started) if isinstance(started, str) else at
        return events.StepAttempt(saga_id=execution.saga_id, step_id=step.id, attempt=1,
                                  phase=phase, started=min(begun, at), ended=at)

    def finish_compensation(self, tx: LedgerTransaction, execution: LockedExecution, *,
                            skipped: bool = False) -> None:
        """The chain's last undo ends the compensation. skipped: that undo had nothing to do;
        if the execution is still RUNNING then, every undo was skipped (each step failed for
        good, having done nothing): nothing was compensated and the saga simply failed."""
        if execution.status is ExecutionStatus.COMPENSATED:
            return  # a repeated last undo
        at = self.clock()
        ended = (ExecutionStatus.FAILED
                 if skipped and execution.status is ExecutionStatus.RUNNING
                 else ExecutionStatus.COMPENSATED)
        if not tx.set_execution_status(execution.id, ended, at=at):
            return
        # skipped: nothing was written in this transaction before, so the error read under
        # the lock is the current one. (After a first undo in the same transaction it is
        # stale, and the compensation's start event already carried the cause.)
        tx.append_events(execution.id, [(events.moved(
            EVENT_OF[ended], saga_id=execution.saga_id, status=ended,
            execution_error=execution.error if skipped else events.ABSENT), at)])

    def kept(self, sent: Mapping[str, Any] | None) -> dict[str, Any] | None:
        """What an attempt's record keeps of the input it was sent (Attempt.input)."""
        if sent is None:
            return None
        return kept_input(sent, max_bytes=self.max_result_bytes,
                          max_depth=MAX_ATTEMPT_INPUT_DEPTH)

    def failed(self, request: StepRequest, error: Exception, started: datetime,
               claimed: int | None = None,
               sent: Mapping[str, Any] | None = None) -> Exception:
        """Its own transaction: the attempt's work was rolled back (or, for an unknown
        outcome, may stand), its failure is kept. Returns what the Lambda raises: for an
        action whose outcome is unknown, the machines' name for it, final or not. sent: the
        step's input as the attempt was sent it (None: it failed before it was resolved)."""
        kept = self.kept(sent)
        unknown = request.phase is Phase.ACTION and isinstance(error, OutcomeUnknown)
        # Callers see the type and first line only; the handler logs the whole error.
        # A participant's own error type (its contract's {"error": {"type", ...}}) names the
        # step's error; the machines still see the error's class name.
        error_info: dict[str, Any] = clean_error(
            OUTCOME_UNKNOWN if unknown else getattr(error, "error_type", None)
            or type(error).__name__, str(error))
        if getattr(error, "details", None):
            error_info["details"] = error.details  # type: ignore[attr-defined]
        raise_as: Exception = outcome_unknown(str(error), final=False) if unknown else error
        try:
            with self.ledger.transaction() as tx:
                execution = tx.lock_execution(request.execution_id)
                run = tx.lock_step(request.execution_id, request.step_id)
                if execution is None or run is None:
                    return raise_as
                if execution.status.is_final or (request.phase is Phase.ACTION
                                                  and run.status in UNDOING):
                    # Final is final: a late attempt is logged, not recorded, so no event
                    # follows the execution's end and its step keeps what its undo made it.
                    logger.warning("late %s attempt of %s/%s not recorded: %s", request.phase,
                                   request.execution_id, request.step_id, error_info)
                    return raise_as
                at = self.clock()
                attempt = claimed or run.attempts(request.phase) + 1
                tried = events.StepAttempt(saga_id=execution.saga_id,
                                           step_id=request.step_id, attempt=attempt,
                                           phase=request.phase, started=started, ended=at,
                                           input=kept)
                if request.phase is Phase.ACTION and isinstance(error, StepAborted):
                    # The step stays as its compensation left it; the attempt is told.
                    tx.record_attempt(request.execution_id, request.step_id,
                                      phase=request.phase, attempt=attempt,
                                      outcome=Outcome.FAILED, started=started, ended=at,
                                      error_type=error_info["type"],
                                      error_message=error_info["message"], sent=kept)
                    tx.append_events(request.execution_id, [(
                        events.step_aborted(tried, error=error_info), at)])
                    return raise_as
                retries = 0
                if request.phase is Phase.ACTION:
                    step = self.steps.step(execution.saga_id, execution.revision,
                                           request.step_id)
                    # The machine that runs says how often it retries a retriable step (it was
                    # compiled when the version was stored); else the configured number.
                    retries = action_retries(step.kind, step.max_retries,
                                             request.max_attempts or self.retriable_max_attempts)
                outcome = after_failure(
                    request.phase, run.in_round(request.phase, attempt), retries,
                    permanent=isinstance(error, PermanentError), unknown=unknown,
                    was_unknown=run.status is StepStatus.OUTCOME_UNKNOWN)
                tx.record_attempt(request.execution_id, request.step_id, phase=request.phase,
                                  attempt=attempt, outcome=outcome.outcome, started=started,
                                  ended=at, error_type=error_info["type"],
                                  error_message=error_info["message"], sent=kept)
                late_result = error.result if isinstance(error, OutcomeUnknown) else None
                if outcome.outcome is Outcome.UNKNOWN and not unknown:
                    # This attempt failed plainly, an earlier one may have done the work: the
                    # step says so, so its compensation is told why it runs.
                    error_info = {"type": OUTCOME_UNKNOWN,
                                  "message": f"{error_info['type']}: {error_info['message']} "
                                             "(an earlier attempt's outcome is unknown)"}
                record = tx.record_outcome(request.execution_id, request.step_id,
                                           status=outcome.target, phase=request.phase, at=at,
                                           error=error_info, started=started,
                                           result=late_result if unknown else None,
                                           claimed=claimed is not None)
                extra: dict[str, Any] = {}
                if unknown and late_result is not None:
                    extra["result"] = late_result
                if outcome.final and split_run_id(request.step_id)[1] is None:
                    # The execution will not complete, and this is why. (A fan-out's item
                    # does not decide that: its step does, once its items have ended.)
                    extra["execution_error"] = execution_error(
                        request.step_id, request.phase, error_info["type"],
                        error_info["message"])
                    tx.set_execution_error(request.execution_id, extra["execution_error"])
                tx.append_events(request.execution_id, [(events.attempt_failed(
                    outcome.event, tried, error=error_info, outcome=outcome.outcome,
                    step=record, **extra), at)])
                if request.phase is Phase.ACTION and outcome.outcome is Outcome.UNKNOWN:
                    # Caught like a timeout: the step's own compensation runs.
                    raise_as = outcome_unknown(error_info["message"], final=outcome.final)
        except Exception:  # recording must not hide the step's own error
            logger.exception("could not record the failure of %s/%s", request.execution_id,
                             request.step_id)
        return raise_as
