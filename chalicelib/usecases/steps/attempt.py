"""One attempt of one phase of one step of one execution: admitted, run, its outcome recorded.

The effect, the step's new status, the attempt record and the events are one transaction, so a
step either happened (and everybody can see it did) or did not. The step run's row lock orders
a late action (its Task timed out) against the compensation that undoes it, and an action that
outlives its step's timeout is rolled back rather than recorded. No step decides the saga's
completion: the machine's own success path does (the recorder's COMPLETED), so a step whose
Task timed out can never make the saga look COMPLETED.

A participant (its own Lambda or HTTP endpoint) is not called under those locks: its delivery
is admitted in one short transaction, the call runs with none open, and its outcome is recorded
in a second one that decides again, so no other writer of the execution waits on the network
while the row locks and the step's status still refuse late or repeated deliveries.
Admission is chalicelib.usecases.steps.admission (over the pure chalicelib.domain.decisions),
the outcome is written by chalicelib.usecases.steps.recording, and the late-action rule is
chalicelib.usecases.steps.late_actions; the storage is a StepLedger
(chalicelib.usecases.steps.ledger: MySQL in production, in memory in tests).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from chalicelib.config import (
    DEFAULT_MAX_FANOUT_ITEMS,
    DEFAULT_MAX_RESULT_BYTES,
    DEFAULT_RETRIABLE_MAX_ATTEMPTS,
)
from chalicelib.domain import expected_by as expected
from chalicelib.domain.action_refs import participant_kind
from chalicelib.domain.callbacks import CallbackState
from chalicelib.domain.decisions import StepRequest
from chalicelib.domain.executions import ExecutionStatus
from chalicelib.domain.fanout import Tally, split_run_id, tolerated_count
from chalicelib.domain.lifecycle import (
    CALLBACK_COMPLETED,
    CALLBACK_FAILED,
    DEFAULT_TASK_TIMEOUT_MARGIN_S,
    Phase,
    StepKind,
    StepStatus,
)
from chalicelib.domain.models import Step
from chalicelib.domain.step_context import (
    ActionFn,
    OutcomeUnknown,
    PermanentError,
    RetryableError,
    StepContext,
)
from chalicelib.domain.step_runs import LockedExecution
from chalicelib.domain.verdicts import (
    Admitted,
    AlreadyDone,
    AttemptOutcome,
    Done,
    Refused,
    Skipped,
)
from chalicelib.durations import parse_duration_ms
from chalicelib.usecases.ports import DefinitionStore
from chalicelib.usecases.steps.admission import admit, fault_for
from chalicelib.usecases.steps.attempt_context import NO_TRANSACTION, build_context
from chalicelib.usecases.steps.conditions import skipped_by_condition
from chalicelib.usecases.steps.failures import StepAborted, step_skipped
from chalicelib.usecases.steps.late_actions import (
    action_in_flight_s,
    check_answer,
    outlived_timeout,
    step_timeout,
    undo_late_success,
)
from chalicelib.usecases.steps.ledger import LedgerTransaction, StepLedger
from chalicelib.usecases.steps.recording import OutcomeWriter, cause
from chalicelib.usecases.steps.revisions import StepDefinitions
from chalicelib.usecases.steps.waits import (
    CallbackLinks,
    OpenedCallback,
    callback_waiting,
    open_callback,
    start_waiting,
)

# A compensation waits for its action's last deadline at most this many times (another attempt
# may have been admitted meanwhile), then lets the machine retry it.
_MAX_WAITS = 3


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class _Wait:
    """A compensation admitted while its action may still be in flight: wait, then ask again."""

    seconds: float


@dataclass(frozen=True)
class _Call:
    """A participant's admitted attempt: what it is sent, read under the locks."""

    admitted: Admitted
    step: Step
    target: str
    context: StepContext
    # A callback step's: the callback opened for this attempt, waited on once the call answers.
    opened: OpenedCallback | None = None


class _Settled(Exception):
    """The attempt's Task must end with `error` as it is: a callback completed while its call
    was out (its completion already recorded the step), so nothing more is recorded."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


_CallbackCompleted = type(CALLBACK_COMPLETED, (Exception,), {})
_CallbackFailed = type(CALLBACK_FAILED, (PermanentError,), {})


def _default_links(callback_id: str, secret: str) -> dict[str, str]:
    return {action: f"/callbacks/{callback_id}/{action}?secret={secret}"
            for action in ("succeed", "fail", "heartbeat")}


@dataclass
class AttemptRunner:
    ledger: StepLedger
    definitions: DefinitionStore
    resolve_action: Callable[[str], ActionFn]
    faults_enabled: bool = False
    sleep: Callable[[float], None] = time.sleep
    input_defaults: Mapping[str, Any] = field(default_factory=dict)
    # config saga.caching_enabled: keep the revisions read (off: one read per attempt).
    cache_definitions: bool = True
    clock: Callable[[], datetime] = _utc_now
    # Measures how long an attempt has run against its step's timeout.
    monotonic: Callable[[], float] = time.monotonic
    # config saga.max_result_bytes: a larger result fails its step for good (results are kept
    # in MySQL and handed to later steps; Step Functions never carries them).
    max_result_bytes: int = DEFAULT_MAX_RESULT_BYTES
    # config saga.max_fanout_items: a fan-out item's result gets an even share of one event.
    max_fanout_items: int = DEFAULT_MAX_FANOUT_ITEMS
    # config saga.retriable_max_attempts: a retriable step's attempts per round (the
    # compiler writes the same number into its Task's Retry).
    retriable_max_attempts: int = DEFAULT_RETRIABLE_MAX_ATTEMPTS
    # config saga.task_timeout_margin: a compensation waits this long past its action's last
    # deadline (the late-action rule).
    task_timeout_margin_s: int = DEFAULT_TASK_TIMEOUT_MARGIN_S
    # The links a callback step's participant is sent to complete it (server.public_url).
    callback_links: CallbackLinks = _default_links

    steps: StepDefinitions = field(init=False)
    outcomes: OutcomeWriter = field(init=False)

    def __post_init__(self) -> None:
        self.steps = StepDefinitions(self.definitions, cache=self.cache_definitions)
        self.outcomes = OutcomeWriter(self.ledger, self.steps, self.clock,
                                      max_result_bytes=self.max_result_bytes,
                                      max_fanout_items=self.max_fanout_items,
                                      retriable_max_attempts=self.retriable_max_attempts)

    def run(self, request: StepRequest) -> AttemptOutcome:
        """One attempt: a built-in action's in one transaction (effect and record commit
        together); a participant's admitted in one, called with no lock held, recorded in a
        second. A failed attempt is rolled back, then recorded, then raised."""
        started = self.clock()  # the attempt starts when it is delivered, slow or not
        received = self.monotonic()
        if self.faults_enabled:
            self._injected_delay(request)
        claimed: int | None = None
        admission: AttemptOutcome | _Wait | _Call | None = None
        # What a built-in step's attempt was sent, once resolved (a participant's is its
        # call's context): its record keeps it, failed or not.
        sent: dict[str, Mapping[str, Any]] = {}
        try:
            for _ in range(_MAX_WAITS + 1):
                admission = self._admit_delivery(request, started, received, sent)
                if not isinstance(admission, _Wait):
                    break
                # The late-action rule: no compensation while its action may be in flight.
                self.sleep(admission.seconds)
            else:
                raise RetryableError(f"step {request.step_id}'s action is still in flight")
            if isinstance(admission, Skipped | AlreadyDone) and \
                    admission.status is StepStatus.SKIPPED and request.task_token is not None:
                # A callback's Task waits for its token: the machine catches the skip instead.
                raise _Settled(step_skipped(request.step_id))
            if not isinstance(admission, _Call):
                return admission
            claimed = admission.admitted.attempt
            return self._call_participant(request, admission, claimed)
        except _Settled as settled:
            raise settled.error from None
        except Exception as error:
            # A callback completed while its call was out: the completion stands.
            if isinstance(admission, _Call) and admission.opened is not None and (
                    ended := self._callback_ended(request, admission.opened)) is not None:
                raise ended from None
            if isinstance(admission, _Call):
                sent["input"] = admission.context.saga_input
            raise self.outcomes.failed(request, error, started, claimed,
                                       sent=sent.get("input")) from None

    def _admit_delivery(self, request: StepRequest, started: datetime, received: float,
                        sent: dict[str, Mapping[str, Any]]) -> AttemptOutcome | _Wait | _Call:
        """Under the row locks: a built-in step runs whole; a participant's attempt is
        admitted (counted, its deadline kept) and what it is sent is read, or it is told to
        wait for its action's last deadline (a compensation), or answered at once."""
        with self.ledger.transaction() as tx:
            execution = tx.lock_execution(request.execution_id)
            if execution is None:
                raise PermanentError(f"no execution {request.execution_id!r}")
            step = self.steps.step(execution.saga_id, execution.revision, request.step_id)
            target = step.target(request.phase)
            if request.phase is Phase.ACTION and execution.status is ExecutionStatus.RUNNING \
                    and skipped_by_condition(tx, execution, step, at=self.clock()) is not None:
                return Skipped(StepStatus.SKIPPED)
            if request.phase is Phase.ACTION and step.item_index is not None and \
                    _over_tolerance(tx, execution, step):
                # More items failed for good than tolerated: no new item attempt starts (the
                # item stays PENDING, and its step fails when its items are gathered).
                return Skipped(StepStatus.PENDING)
            if step.kind is StepKind.CALLBACK and request.phase is Phase.ACTION:
                return self._open_callback(tx, request, step, target, execution, started)
            if target is None:
                raise PermanentError(f"step {step.id} is retriable: it has no compensation")
            if participant_kind(target) is None:
                return self._run_builtin(tx, request, step, target, execution, started,
                                         received, sent)
            verdict = self._admit(tx, request, step, execution, starting=True)
            if not isinstance(verdict, Admitted):
                return verdict
            now = self.clock()
            if request.phase is Phase.COMPENSATION:
                wait = action_in_flight_s(verdict.run, now, self.task_timeout_margin_s)
                if wait > 0:
                    return _Wait(wait)
                if execution.status is ExecutionStatus.RUNNING and execution.error is None:
                    # Say why now: a late delivery of any action of the execution is refused
                    # from here on (decide's failed_elsewhere), so none starts behind the undo.
                    tx.set_execution_error(request.execution_id, cause(tx, request))
            deadline = now + step_timeout(step)
            # The engine moves on by this attempt's Task timeout at the latest: until then
            # the reconciler need not ask about the execution.
            attempt = tx.claim_attempt(
                request.execution_id, request.step_id, phase=request.phase, deadline=deadline,
                expect_by=expected.attempt_bound(deadline, self.task_timeout_margin_s))
            admitted = replace(verdict, attempt=attempt)
            # Everything the participant is sent is read under the locks, then released.
            context = build_context(tx, request, step, execution, admitted, deadline,
                                    cursor=NO_TRANSACTION, eager_results=True,
                                    defaults=self.input_defaults)
        return _Call(admitted, step, target, context)

    def _open_callback(self, tx: LedgerTransaction, request: StepRequest, step: Step,
                       target: str | None, execution: LockedExecution,
                       started: datetime) -> AttemptOutcome | _Call:
        """A callback step's attempt: admitted and counted, its callback committed with it;
        an approval (no action) waits at once, an action is called with the callback's
        links (no lock held), then waits."""
        verdict = self._admit(tx, request, step, execution, starting=True)
        if not isinstance(verdict, Admitted):
            return verdict
        now = self.clock()
        deadline = now + step_timeout(step)  # the call's (the wait has its own)
        attempt = tx.claim_attempt(
            request.execution_id, request.step_id, phase=Phase.ACTION, deadline=deadline,
            expect_by=expected.attempt_bound(deadline, self.task_timeout_margin_s))
        opened = open_callback(tx, request, step, attempt, now, self.callback_links)
        admitted = replace(verdict, attempt=attempt)
        # What the participant is sent, or what an approval's person decides on: the step's
        # input as its mapping resolves (an absent value fails the step for good either way).
        context = build_context(tx, request, step, execution, admitted, deadline,
                                cursor=NO_TRANSACTION, eager_results=True,
                                defaults=self.input_defaults)
        if target is None:  # an approval: someone completes it through the API
            waiting = callback_waiting(opened.waiting, context.saga_input,
                                       self.max_result_bytes, approval=True)
            start_waiting(tx, execution, step, attempt, waiting, started=started,
                          now=now, margin_s=self.task_timeout_margin_s)
            return Done({"status": StepStatus.WAITING.value, "callback_id": opened.callback.id})
        return _Call(admitted, step, target, replace(context, callback=opened.info), opened)

    def _callback_ended(self, request: StepRequest, opened: OpenedCallback) -> Exception | None:
        """The error a callback's Task ends with when its callback was completed while its
        call was out (succeeded: caught as the step's success; failed: a failure for good),
        or None while it is still open."""
        with self.ledger.transaction() as tx:
            tx.lock_execution(request.execution_id)
            callback = tx.lock_callback(opened.callback.id)
        if callback is None or callback.state in (CallbackState.OPEN,
                                                  CallbackState.SUPERSEDED):
            return None
        return _callback_error(request, callback.state)

    def _admit(self, tx: LedgerTransaction, request: StepRequest, step: Step,
               execution: LockedExecution, *,
               starting: bool) -> Admitted | AlreadyDone | Skipped:
        """Admission's verdict, acted on in this transaction: a refusal is raised (rolling it
        back), and a skipped last undo still ends the compensation."""
        verdict = admit(tx, request, step, execution, starting=starting,
                        faults_enabled=self.faults_enabled)
        if isinstance(verdict, Refused):
            raise verdict.error
        if isinstance(verdict, Skipped) and verdict.finishes_compensation:
            self.outcomes.finish_compensation(tx, execution, skipped=True)
        return verdict

    def _injected_delay(self, request: StepRequest) -> None:
        # A slow participant: work starts late (after its Task may have timed out), before
        # any lock is taken. Fault injection only: never in prod, so never on its hot path.
        execution = self.ledger.peek(request.execution_id)
        fault = fault_for(execution.faults, request) if execution else None
        if fault is not None and fault.delay:
            self.sleep(parse_duration_ms(fault.delay) / 1000)

    def _run_builtin(self, tx: LedgerTransaction, request: StepRequest, step: Step,
                     target: str, execution: LockedExecution, started: datetime,
                     received: float, sent: dict[str, Mapping[str, Any]]) -> AttemptOutcome:
        verdict = self._admit(tx, request, step, execution, starting=True)
        if not isinstance(verdict, Admitted):
            return verdict
        deadline = started + step_timeout(step)
        context = build_context(tx, request, step, execution, verdict, deadline,
                                cursor=tx.cursor, eager_results=step.input is not None,
                                defaults=self.input_defaults)
        sent["input"] = context.saga_input
        result = self.resolve_action(target)(context)
        if request.phase is Phase.ACTION and outlived_timeout(step,
                                                             self.monotonic() - received):
            # Past its deadline: roll the effect back (it commits with its record or not at
            # all), so the attempt did nothing and is retried like any failure.
            raise RetryableError(f"step {step.id} outlived its timeout of {step.timeout}; its "
                                 "effect was rolled back")
        self.outcomes.succeeded(tx, request, step, execution, result, started,
                                attempt=verdict.attempts_so_far + 1,
                                first=verdict.attempts_so_far == 0, sent=context.saga_input)
        return Done(result)

    def _call_participant(self, request: StepRequest, call: _Call,
                          claimed: int | None) -> AttemptOutcome:
        """A participant's call runs with no transaction open, so no other writer of the
        execution waits on the network; the call is cut at its deadline (the late-action
        rule), and its outcome is recorded in a second transaction that decides again under
        the row locks: a repeated delivery that recorded it meanwhile wins."""
        step, context = call.step, call.context
        assert context.deadline is not None
        result = self.resolve_action(call.target)(context)
        if request.phase is Phase.ACTION:
            check_answer(step, context.deadline, result, clock=self.clock,
                         max_result_bytes=self.outcomes.result_limit(step))
        if call.opened is not None:
            return self._wait_for_callback(request, call, result)
        try:
            with self.ledger.transaction() as tx:
                execution = tx.lock_execution(request.execution_id)
                if execution is None:
                    raise PermanentError(f"no execution {request.execution_id!r}")
                verdict = self._admit(tx, request, step, execution, starting=False)
                if not isinstance(verdict, Admitted):
                    return verdict
                attempt = claimed or verdict.attempts_so_far + 1
                self.outcomes.succeeded(tx, request, step, execution, result,
                                        context.deadline - step_timeout(step),
                                        attempt=attempt, first=attempt == 1,
                                        claimed=claimed is not None,
                                        answered_by=context.deadline,
                                        sent=context.saga_input)
        except StepAborted as aborted:
            if request.phase is Phase.ACTION:
                # It succeeded after its run moved on (its step undone, the execution ended):
                # its effect is undone now, with its own result.
                undo_late_success(request.execution_id, step, context, result,
                                  resolve_action=self.resolve_action, clock=self.clock)
            raise aborted from None
        except (PermanentError, RetryableError, OutcomeUnknown):
            raise
        except Exception as error:
            if request.phase is not Phase.ACTION:
                raise
            # The participant did its work, and its answer could not be recorded: never
            # "nothing happened".
            raise OutcomeUnknown(f"step {step.id}'s answer could not be recorded "
                                 f"({type(error).__name__})") from None
        return Done(result)

    def _wait_for_callback(self, request: StepRequest, call: _Call,
                           result: dict[str, Any]) -> AttemptOutcome:
        """The call answered in time: the step waits for its callback, keeping the answer
        for its compensation, unless the callback was completed meanwhile."""
        assert call.opened is not None and call.context.deadline is not None
        with self.ledger.transaction() as tx:
            execution = tx.lock_execution(request.execution_id)
            if execution is None:
                raise PermanentError(f"no execution {request.execution_id!r}")
            callback = tx.lock_callback(call.opened.callback.id)
            if callback is not None and callback.state in (CallbackState.SUCCEEDED,
                                                           CallbackState.FAILED):
                raise _Settled(_callback_error(request, callback.state))
            verdict = self._admit(tx, request, call.step, execution, starting=False)
            if not isinstance(verdict, Admitted):
                return verdict
            started = call.context.deadline - step_timeout(call.step)
            # The wait keeps what the call was sent: its attempt is recorded when the callback
            # is completed, from the wait.
            waiting = callback_waiting(call.opened.waiting, call.context.saga_input,
                                       self.max_result_bytes, approval=False)
            start_waiting(tx, execution, call.step, call.admitted.number, waiting,
                          started=started, now=self.clock(), result=result,
                          margin_s=self.task_timeout_margin_s)
        return Done({"status": StepStatus.WAITING.value,
                     "callback_id": call.opened.callback.id})


def _over_tolerance(tx: LedgerTransaction, execution: LockedExecution, item: Step) -> bool:
    """Whether more of the item's fan-out's items failed for good than it tolerates."""
    items = tx.items_of(execution.id, split_run_id(item.id)[0])
    tolerated = tolerated_count(item.tolerated_failures, len(items))
    return Tally.of(run.status for run in items).over(tolerated)


def _callback_error(request: StepRequest, state: CallbackState) -> Exception:
    """How a callback's Task ends when its callback was completed while its call was out:
    succeeded is caught as the step's success, failed is a failure for good."""
    if state is CallbackState.SUCCEEDED:
        return _CallbackCompleted(f"step {request.step_id}'s callback was completed before its "
                                  "call answered")
    return _CallbackFailed(f"step {request.step_id}'s callback was completed as failed")
