"""Completing a waiting step from outside: a partner's webhook, a person's approval, or a
heartbeat. Decided under the execution's row lock (chalicelib.domain.callbacks decides, the
step ledger keeps it), then told to the engine.

The completion is committed first: the step's result (or failure), the callback closed, the
events. Then the engine is told (SendTaskSuccess, SendTaskFailure, SendTaskHeartbeat) when the
step already waits there; a completion that arrived while the step's own call was still out
is not sent: that call's Lambda finds it and ends its Task (chalicelib.usecases.steps.attempt).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from chalicelib.domain import events
from chalicelib.domain import expected_by as expected
from chalicelib.domain.callbacks import (
    MAX_CALLBACK_ID_LENGTH,
    Callback,
    CallbackState,
    Completion,
    completed_by,
    refusal,
    secret_matches,
)
from chalicelib.domain.decisions import StepRequest, after_failure
from chalicelib.domain.errors import Conflict, ErrorKind, NotFound, SagaError
from chalicelib.domain.executions import Waiting, execution_error
from chalicelib.domain.lifecycle import (
    CALLBACK_FAILED,
    DEFAULT_TASK_TIMEOUT_MARGIN_S,
    ExecutionStatus,
    Outcome,
    Phase,
    StepStatus,
    WaitKind,
)
from chalicelib.domain.requests import FailRequest, SucceedRequest
from chalicelib.domain.step_runs import LockedExecution, LockedStep
from chalicelib.usecases.ports import Engine, WaitGone
from chalicelib.usecases.steps.ledger import LedgerTransaction, StepLedger
from chalicelib.usecases.steps.recording import OutcomeWriter
from chalicelib.usecases.steps.revisions import StepDefinitions

logger = logging.getLogger(__name__)


class SecretRefused(SagaError):
    kind = ErrorKind.FORBIDDEN


@dataclass(frozen=True)
class Caller:
    """Who completes a callback: a partner holding its secret, or an authenticated caller
    whose role allows it (checked at the edge)."""

    secret: str | None = None
    subject: str | None = None


@dataclass(frozen=True)
class Completed:
    """What a completion did: the callback, the step's status now, and whether the engine
    was told (False: the step's call was still out, and its Lambda ends the Task)."""

    callback_id: str
    execution_id: str
    step_id: str
    outcome: str
    step_status: StepStatus
    sent_to_engine: bool

    def as_dict(self) -> dict[str, Any]:
        return {"callback_id": self.callback_id, "execution_id": self.execution_id,
                "step_id": self.step_id, "outcome": self.outcome,
                "step_status": self.step_status.value, "sent_to_engine": self.sent_to_engine}


@dataclass
class CallbackService:
    ledger: StepLedger
    engine: Engine
    outcomes: OutcomeWriter
    steps: StepDefinitions
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    # config saga.task_timeout_margin: once a wait ends, the next step is due by then.
    task_timeout_margin_s: int = DEFAULT_TASK_TIMEOUT_MARGIN_S

    def succeed(self, callback_id: str, request: SucceedRequest, caller: Caller) -> Completed:
        return self._complete(callback_id, Completion.SUCCEED, caller, result=request.result)

    def fail(self, callback_id: str, request: FailRequest, caller: Caller) -> Completed:
        return self._complete(callback_id, Completion.FAIL, caller,
                              error={"type": request.error, "message": request.reason})

    def heartbeat(self, callback_id: str, caller: Caller) -> Completed:
        return self._complete(callback_id, Completion.HEARTBEAT, caller)

    # --

    def _complete(self, callback_id: str, completion: Completion, caller: Caller, *,
                  result: dict[str, Any] | None = None,
                  error: dict[str, str] | None = None) -> Completed:
        found = self._find(callback_id, caller)
        by = completed_by(secret=caller.secret is not None, subject=caller.subject)
        with self.ledger.transaction() as tx:
            # The execution's lock first, as every writer of it takes them.
            execution = tx.lock_execution(found.execution_id)
            callback = tx.lock_callback(callback_id)
            run = tx.lock_step(found.execution_id, found.step_id)
            now = self.clock()
            refused = refusal(callback, completion, step_status=run.status if run else None,
                              execution_running=execution is not None
                              and execution.status is ExecutionStatus.RUNNING, now=now)
            if refused is not None:
                raise (NotFound if refused.kind is ErrorKind.NOT_FOUND else Conflict)(
                    refused.message, callback_id=callback_id)
            assert callback is not None and run is not None and execution is not None
            waiting_in_engine = run.status is StepStatus.WAITING
            if completion is Completion.HEARTBEAT:
                record = tx.update_waiting(callback.execution_id, callback.step_id,
                                           heartbeat_at=now.isoformat())
                tx.append_events(callback.execution_id, [(events.step_heartbeat(
                    saga_id=execution.saga_id, step_id=callback.step_id,
                    attempt=callback.attempt, step=record), now)])
                status = run.status
            elif completion is Completion.SUCCEED:
                status = self._succeeded(tx, execution, run, callback, result or {}, by, now)
            else:
                status = self._failed(tx, execution, run, callback, error or {}, by, now)
            if completion is not Completion.HEARTBEAT:  # the wait is over: the run moves on
                tx.expect_by(callback.execution_id,
                             expected.attempt_bound(now, self.task_timeout_margin_s))
        sent = waiting_in_engine and self._tell_engine(callback, completion, error)
        return Completed(callback_id, callback.execution_id, callback.step_id,
                         completion.value, status, sent)

    def _find(self, callback_id: str, caller: Caller) -> Callback:
        """The callback, if it exists and the caller may complete it: its secret, when one is
        given, must be its own (a wrong secret is refused, never a hint)."""
        if not callback_id or len(callback_id) > MAX_CALLBACK_ID_LENGTH:
            raise NotFound("no such callback", callback_id=callback_id[:MAX_CALLBACK_ID_LENGTH])
        with self.ledger.transaction() as tx:
            callback = tx.lock_callback(callback_id)
        if caller.secret is not None and (callback is None
                                          or not secret_matches(caller.secret, callback)):
            raise SecretRefused("this secret does not complete this callback")
        if callback is None:
            raise NotFound("no such callback", callback_id=callback_id)
        return callback

    def _succeeded(self, tx: LedgerTransaction, execution: LockedExecution, run: LockedStep,
                   callback: Callback, result: dict[str, Any], by: str,
                   now: datetime) -> StepStatus:
        """The step succeeded with `result`, which later steps and its compensation see."""
        step = self.steps.step(execution.saga_id, execution.revision, callback.step_id)
        self._received(tx, execution, run, callback, Outcome.SUCCEEDED, by, now)
        request = StepRequest(execution_id=callback.execution_id, step_id=callback.step_id,
                              phase=Phase.ACTION)
        # Before its call answered, the step has not said it started; it does now.
        self.outcomes.succeeded(tx, request, step, execution, result, callback.created_at,
                                attempt=callback.attempt,
                                first=run.status is not StepStatus.WAITING, claimed=True,
                                sent=_sent(run))
        tx.close_callback(callback.id, CallbackState.SUCCEEDED, at=now, by=by)
        return StepStatus.SUCCEEDED

    def _failed(self, tx: LedgerTransaction, execution: LockedExecution, run: LockedStep,
                callback: Callback, error: dict[str, str], by: str, now: datetime) -> StepStatus:
        """The action failed for good, having done nothing: never retried, and the saga
        compensates what came before (or parks, after the pivot)."""
        self._received(tx, execution, run, callback, Outcome.FAILED, by, now)
        move = after_failure(Phase.ACTION, 1, 0, permanent=True)
        sent = self.outcomes.kept(_sent(run))
        tx.record_attempt(callback.execution_id, callback.step_id, phase=Phase.ACTION,
                          attempt=callback.attempt, outcome=move.outcome,
                          started=callback.created_at, ended=now, error_type=error["type"],
                          error_message=error.get("message") or None, sent=sent)
        record = tx.record_outcome(callback.execution_id, callback.step_id, status=move.target,
                                   phase=Phase.ACTION, at=now, started=callback.created_at,
                                   error=error, claimed=True)
        # The caller's reason as they gave it (a rejected approval's comment), and who.
        why = execution_error(callback.step_id, Phase.ACTION, error["type"],
                              error.get("message"), by=by)
        tx.set_execution_error(callback.execution_id, why)
        tried = events.StepAttempt(saga_id=execution.saga_id, step_id=callback.step_id,
                                   attempt=callback.attempt, phase=Phase.ACTION,
                                   started=callback.created_at, ended=now, input=sent)
        batch = [(events.step_started(tried), callback.created_at)] \
            if run.status is not StepStatus.WAITING else []
        batch.append((events.attempt_failed(move.event, tried, error=error,
                                            outcome=move.outcome, step=record,
                                            execution_error=why), now))
        tx.append_events(callback.execution_id, batch)
        tx.close_callback(callback.id, CallbackState.FAILED, at=now, by=by)
        return move.target

    @staticmethod
    def _received(tx: LedgerTransaction, execution: LockedExecution, run: LockedStep,
                  callback: Callback, outcome: Outcome, by: str, now: datetime) -> None:
        # Completed before its call answered, the step has no wait recorded yet: this is it.
        wait = Waiting(kind=WaitKind.CALLBACK, since=callback.created_at,
                       until=callback.expires_at, callback_id=callback.id)
        record = tx.update_waiting(callback.execution_id, callback.step_id,
                                   **{**wait.model_dump(mode="json"),
                                      **(run.waiting.model_dump(mode="json")
                                         if run.waiting else {}),
                                      "completed_by": by, "completed_at": now.isoformat()})
        tx.append_events(callback.execution_id, [(events.step_callback_received(
            saga_id=execution.saga_id, step_id=callback.step_id, attempt=callback.attempt,
            outcome=outcome.value, by=by, step=record), now)])

    def _tell_engine(self, callback: Callback, completion: Completion,
                     error: dict[str, str] | None) -> bool:
        """The engine is told after the commit. A token the engine no longer knows (its wait
        timed out as this arrived) leaves the recorded completion to its compensation."""
        try:
            if completion is Completion.SUCCEED:
                # The result is in the write model; later steps read it there.
                self.engine.complete_step(callback.task_token, {"callback_id": callback.id})
            elif completion is Completion.FAIL:
                assert error is not None
                self.engine.fail_step(callback.task_token, CALLBACK_FAILED,
                                      f"{error['type']}: {error.get('message') or ''}"[:256])
            else:
                self.engine.heartbeat(callback.task_token)
        except WaitGone as gone:
            logger.warning("callback %s: the engine no longer waits on it (%s)", callback.id,
                           gone)
            if completion is Completion.HEARTBEAT:
                raise Conflict("the wait already ended in the engine; this heartbeat changes "
                               "nothing", callback_id=callback.id) from None
            raise Conflict("the wait ended in the engine as this completion arrived: the step "
                           "is compensated, with this completion's result when it succeeded",
                           callback_id=callback.id) from None
        return True


def _sent(run: LockedStep) -> dict[str, Any] | None:
    """What a callback step's attempt was sent, as its wait kept it (None when the callback
    was completed before its call answered: the wait had not begun)."""
    return run.waiting.input if run.waiting is not None else None
