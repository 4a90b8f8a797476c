"""What runs inside a step Lambda: one attempt of one phase of one step of one execution.

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
The decisions themselves are chalicelib.steps.decisions, pure functions of the statuses; the
storage is a StepLedger (chalicelib.steps.ledger: MySQL in production, in memory in tests).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib.ports import DefinitionStore
from chalicelib.saga import events
from chalicelib.saga.action_refs import participant_kind
from chalicelib.saga.durations import parse_duration_ms
from chalicelib.saga.executions import (
    MAX_ERROR_MESSAGE,
    Execution,
    ExecutionStatus,
    Fault,
    OutputError,
    clean_error,
    execution_error,
)
from chalicelib.saga.lifecycle import (
    DEFAULT_RETRIABLE_MAX_ATTEMPTS,
    DEFAULT_TASK_TIMEOUT_MARGIN_S,
    EVENT_OF,
    OUTCOME_UNKNOWN,
    OUTCOME_UNKNOWN_FINAL,
    TASK_TIMEOUT,
    UNDOING,
    Outcome,
    Phase,
    StepStatus,
    action_retries,
)
from chalicelib.saga.mapping import MappingError, Scope, resolve, unresolved
from chalicelib.saga.models import Step, StoredSaga
from chalicelib.saga.storable import NotStorable, check_result
from chalicelib.steps.context import (
    ActionFn,
    OutcomeUnknown,
    PermanentError,
    RetryableError,
    StepContext,
)
from chalicelib.steps.contract import DEFAULT_MAX_RESULT_BYTES
from chalicelib.steps.decisions import (
    StepRequest,
    Verdict,
    after_failure,
    after_success,
    compensation_facts,
    decide,
    ends_compensation,
    starts_compensating,
)
from chalicelib.steps.ledger import (
    EventBatch,
    LedgerTransaction,
    LockedExecution,
    LockedStep,
    StepLedger,
)

logger = logging.getLogger(__name__)


class StepAborted(PermanentError):
    """The step must not run: its execution moved on (compensated, resolved) meanwhile."""


def injected_error(name: str, message: str) -> Exception:
    # Lambda reports errors by class name, so an injected fault gets a class of its name.
    return type(name, (Exception,), {})(message)


@dataclass(frozen=True)
class Admitted:
    """A delivery that runs: attempts of its phase so far, its execution, its step run."""

    attempts_so_far: int
    execution: Execution
    run: LockedStep
    # A participant's attempt, numbered as it was admitted (claimed); None for a built-in.
    attempt: int | None = None


@dataclass(frozen=True)
class _Admission:
    """What admitting a delivery decided: answer it at once, wait, or call the participant."""

    answer: dict[str, Any] | None = None
    wait_s: float = 0.0
    admitted: Admitted | None = None
    step: Step | None = None
    call: str | None = None
    context: StepContext | None = None


# A compensation waits for its action's last deadline at most this many times (another attempt
# may have been admitted meanwhile), then lets the machine retry it.
_MAX_WAITS = 3


# Lambda reports an error by its class name: one class for each of the machines' names.
_OutcomeUnknownRetried = type(OUTCOME_UNKNOWN, (OutcomeUnknown,), {})
_OutcomeUnknownFinal = type(OUTCOME_UNKNOWN_FINAL, (OutcomeUnknown,), {})


def _unknown(message: str, *, final: bool) -> OutcomeUnknown:
    return (_OutcomeUnknownFinal if final else _OutcomeUnknownRetried)(message)


def _timeout(step: Step) -> timedelta:
    return timedelta(milliseconds=parse_duration_ms(step.timeout))


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class StepRuntime:
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
    # config saga.retriable_max_attempts: a retriable step's attempts per round (the
    # compiler writes the same number into its Task's Retry).
    retriable_max_attempts: int = DEFAULT_RETRIABLE_MAX_ATTEMPTS
    # config saga.task_timeout_margin: a compensation waits this long past its action's last
    # deadline (the late-action rule).
    task_timeout_margin_s: int = DEFAULT_TASK_TIMEOUT_MARGIN_S

    _revisions: dict[tuple[str, int], StoredSaga] = field(default_factory=dict)

    def handle(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """One attempt: a built-in action's in one transaction (effect and record commit
        together); a participant's admitted in one, called with no lock held, recorded in a
        second. A failed attempt is rolled back and then recorded."""
        request = StepRequest.model_validate(payload)
        started = self.clock()  # the attempt starts when it is delivered, slow or not
        received = self.monotonic()
        if self.faults_enabled:
            self._injected_delay(request)
        claimed: int | None = None
        try:
            for _ in range(_MAX_WAITS + 1):
                admission = self._admit_participant(request, started, received)
                if admission.answer is not None:
                    return admission.answer
                if admission.wait_s <= 0:
                    break
                # The late-action rule: no compensation while its action may be in flight.
                self.sleep(admission.wait_s)
            else:
                raise RetryableError(f"step {request.step_id}'s action is still in flight")
            claimed = admission.admitted.attempt if admission.admitted else None
            assert admission.call is not None and admission.step is not None
            return self._call_participant(request, admission.step, admission.call,
                                          admission.context, claimed)  # type: ignore[arg-type]
        except Exception as error:
            raise self._record_failure(request, error, started, claimed) from None

    def _admit_participant(self, request: StepRequest, started: datetime,
                           received: float) -> _Admission:
        """Under the row locks: a built-in step runs whole; a participant's attempt is
        admitted (counted, its deadline kept) and what it is sent is read, or it is told to
        wait for its action's last deadline (a compensation), or answered at once."""
        with self.ledger.transaction() as tx:
            execution = tx.lock_execution(request.execution_id)
            if execution is None:
                raise PermanentError(f"no execution {request.execution_id!r}")
            step = self._step(execution.saga_id, execution.revision, request.step_id)
            name = step.target(request.phase)
            if name is None:
                raise PermanentError(f"step {step.id} is retriable: it has no compensation")
            if participant_kind(name) is None:
                return _Admission(answer=self._run(tx, request, step, execution, started,
                                                   received))
            admitted = self._admit(tx, request, step, execution, starting=True)
            if isinstance(admitted, dict):
                return _Admission(answer=admitted)
            now = self.clock()
            if request.phase is Phase.COMPENSATION:
                wait = self._action_in_flight_s(admitted.run, now)
                if wait > 0:
                    return _Admission(wait_s=wait)
                if execution.status is ExecutionStatus.RUNNING and execution.error is None:
                    # Say why now: a late delivery of any action of the execution is refused
                    # from here on (decide's failed_elsewhere), so none starts behind the undo.
                    tx.set_execution_error(request.execution_id, self._cause(tx, request))
            deadline = now + timedelta(milliseconds=parse_duration_ms(step.timeout))
            attempt = tx.claim_attempt(request.execution_id, request.step_id,
                                       phase=request.phase, deadline=deadline)
            admitted = replace(admitted, attempt=attempt)
            # Everything the participant is sent is read under the locks, then released.
            context = self._context(tx, request, step, execution, admitted, deadline,
                                    cursor=_NO_TRANSACTION, eager_results=True)
        return _Admission(admitted=admitted, step=step, call=name, context=context)

    def _action_in_flight_s(self, run: LockedStep, now: datetime) -> float:
        """How long a compensation must wait: until its action's last deadline plus the
        margin, when an attempt of it may still be at work (bounded by one margin past it)."""
        if run.action_deadline is None:
            return 0.0
        not_before = run.action_deadline + timedelta(seconds=self.task_timeout_margin_s)
        return max(0.0, (not_before - now).total_seconds())

    def _injected_delay(self, request: StepRequest) -> None:
        # A slow participant: work starts late (after its Task may have timed out), before
        # any lock is taken. Fault injection only: never in prod, so never on its hot path.
        execution = self.ledger.peek(request.execution_id)
        fault = self._fault_for(execution.faults, request) if execution else None
        if fault is not None and fault.delay:
            self.sleep(parse_duration_ms(fault.delay) / 1000)

    def _step(self, saga_id: str, revision: int, step_id: str) -> Step:
        # A stored revision never changes, so a warm Lambda keeps the ones it has read.
        key = (saga_id, revision)
        saga = self._revisions.get(key) if self.cache_definitions else None
        if saga is None:
            saga = self.definitions.get_revision(saga_id, revision)
            if saga is None:
                raise PermanentError(f"saga {saga_id!r} revision {revision} is gone")
            if not self.cache_definitions:
                return self._find_step(saga, saga_id, step_id)
            if len(self._revisions) >= 256:
                self._revisions.clear()
            self._revisions[key] = saga
        return self._find_step(saga, saga_id, step_id)

    @staticmethod
    def _find_step(saga: StoredSaga, saga_id: str, step_id: str) -> Step:
        step = saga.step(step_id)
        if step is None:
            raise PermanentError(f"saga {saga_id!r} has no step {step_id!r}")
        return step

    @staticmethod
    def _fault_for(faults: list[Fault], request: StepRequest) -> Fault | None:
        return next((f for f in faults
                     if f.step_id == request.step_id and f.phase == request.phase), None)

    def _run(self, tx: LedgerTransaction, request: StepRequest, step: Step,
             execution: LockedExecution, started: datetime,
             received: float) -> dict[str, Any]:
        admitted = self._admit(tx, request, step, execution, starting=True)
        if isinstance(admitted, dict):
            return admitted
        attempts_so_far = admitted.attempts_so_far
        deadline = started + timedelta(milliseconds=parse_duration_ms(step.timeout))
        context = self._context(tx, request, step, execution, admitted, deadline,
                                cursor=tx.cursor, eager_results=step.input is not None)
        result = self.resolve_action(step.target(request.phase))(context)
        if request.phase is Phase.ACTION and self._past_timeout(step, received):
            # Past its deadline: roll the effect back (it commits with its record or not at
            # all), so the attempt did nothing and is retried like any failure.
            raise RetryableError(f"step {step.id} outlived its timeout of {step.timeout}; its "
                                 "effect was rolled back")
        self._record_success(tx, request, step, execution, result, started,
                             attempt=attempts_so_far + 1, first=attempts_so_far == 0)
        return {"status": "ok", "result": result}

    def _call_participant(self, request: StepRequest, step: Step, name: str,
                          context: StepContext, claimed: int | None) -> dict[str, Any]:
        """A participant's call runs with no transaction open, so no other writer of the
        execution waits on the network; the call is cut at its deadline (the late-action
        rule), and its outcome is recorded in a second transaction that decides again under
        the row locks: a repeated delivery that recorded it meanwhile wins."""
        assert context.deadline is not None
        result = self.resolve_action(name)(context)
        if request.phase is Phase.ACTION:
            self._check_answer(step, context.deadline, result)
        try:
            with self.ledger.transaction() as tx:
                execution = tx.lock_execution(request.execution_id)
                if execution is None:
                    raise PermanentError(f"no execution {request.execution_id!r}")
                now = self._admit(tx, request, step, execution, starting=False)
                if isinstance(now, dict):
                    return now
                self._record_success(tx, request, step, execution, result,
                                     context.deadline - _timeout(step),
                                     attempt=claimed or now.attempts_so_far + 1,
                                     first=(claimed or now.attempts_so_far + 1) == 1,
                                     claimed=claimed is not None)
        except StepAborted as aborted:
            if request.phase is Phase.ACTION:
                # It succeeded after its run moved on (its step undone, the execution ended):
                # its effect is undone now, with its own result.
                self._undo_late_success(request, step, context, result)
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
        return {"status": "ok", "result": result}

    def _check_answer(self, step: Step, deadline: datetime, result: Any) -> None:
        """OutcomeUnknown for an action's answer that cannot count as done: one given after
        its deadline (kept, when storable, for its compensation), or one that cannot be
        stored."""
        try:
            check_result(result, max_bytes=self.max_result_bytes)
        except NotStorable as error:
            raise OutcomeUnknown(f"step {step.id}'s participant answered what cannot be "
                                 f"recorded: {error.message}") from None
        if self.clock() > deadline:
            raise OutcomeUnknown(f"step {step.id}'s participant answered after its deadline "
                                 f"({step.timeout}); its outcome is unknown", result=result)

    def _undo_late_success(self, request: StepRequest, step: Step, context: StepContext,
                           result: dict[str, Any]) -> None:
        """An action that succeeded after its step was compensated (or its execution ended)
        is compensated again, with its own result. Logged, not recorded: nothing follows an
        execution's end event, and the step's record already says it was undone."""
        target = step.target(Phase.COMPENSATION)
        if target is None or participant_kind(target) is None:
            logger.error("step %s of %s succeeded late and has no participant compensation "
                         "to undo it with: %s", step.id, request.execution_id, result)
            return
        late = replace(context, phase=Phase.COMPENSATION.value, action_result=result,
                       action_error=None,
                       deadline=self.clock() + _timeout(step),
                       reason={"step_id": step.id, "type": "LateAction",
                               "message": "the action succeeded after its step was undone"})
        try:
            self.resolve_action(target)(late)
            logger.warning("step %s of %s succeeded after it was undone; compensated with its "
                           "result", step.id, request.execution_id)
        except Exception:
            logger.exception("step %s of %s succeeded after it was undone, and compensating it "
                             "failed: a person must look (result %s)", step.id,
                             request.execution_id, result)

    def _admit(self, tx: LedgerTransaction, request: StepRequest, step: Step,
               execution: LockedExecution, *,
               starting: bool) -> dict[str, Any] | Admitted:
        """Under the row locks: the answer to a delivery that must not run (a duplicate, a
        skip), StepAborted, or what a delivery that runs needs. starting: before the attempt
        works (faults are injected, and no new attempt starts once a step of the execution
        failed for good); else recording a participant's answer, which is kept."""
        run = tx.lock_step(request.execution_id, request.step_id)
        if run is None:
            raise PermanentError(f"execution {request.execution_id!r} has no step "
                                 f"{request.step_id!r}")
        decision = decide(request, run.status, execution.status,
                          failed_elsewhere=starting and execution.error is not None)
        if decision.verdict is Verdict.DUPLICATE:
            return {"status": run.status.value, "duplicate": True}
        if decision.verdict is Verdict.ABORT:
            raise StepAborted(f"step {step.id} {decision.reason}")
        if decision.verdict is Verdict.SKIP:
            if decision.finish_compensation:
                self._finish_compensation(tx, execution, skipped=True)
            return {"status": run.status.value, "skipped": True}
        attempts_so_far = run.attempts(request.phase)
        parsed = tx.load_execution(request.execution_id)  # only now: the input may be large
        fault = self._fault_for(parsed.faults, request) if self.faults_enabled else None
        if starting and fault is not None and attempts_so_far < fault.times:
            message = f"injected {fault.error} on attempt {attempts_so_far + 1}"
            if fault.permanent:
                raise PermanentError(f"{fault.error}: {message}")
            raise injected_error(fault.error, message)
        return Admitted(attempts_so_far, parsed, run)

    def _context(self, tx: LedgerTransaction, request: StepRequest, step: Step,
                 execution: LockedExecution, admitted: Admitted, deadline: datetime, *,
                 cursor: Any, eager_results: bool) -> StepContext:
        """What the attempt works with: the step's input (its mapping resolved), the earlier
        steps' results, its deadline, and for a compensation what its action did and why the
        saga compensates. A mapping whose value is absent fails the step for good."""
        parsed = admitted.execution
        results: Mapping[str, Mapping[str, Any]] = (
            tx.results(request.execution_id) if eager_results
            else LazyResults(lambda: tx.results(request.execution_id)))
        step_input: Mapping[str, Any] = parsed.input
        if step.input is not None:
            try:
                step_input = resolve(step.input, Scope(request.execution_id, parsed.input,
                                                       results))
            except MappingError as error:
                raise PermanentError(f"step {step.id}'s input: {error}") from None
        extra: dict[str, Any] = {}
        if request.phase is Phase.COMPENSATION:
            extra = compensation_facts(admitted.run, execution.error
                                       or self._cause(tx, request))
        return StepContext(
            execution_id=request.execution_id, saga_id=parsed.saga_id, step_id=step.id,
            phase=request.phase, attempt=admitted.attempt or admitted.attempts_so_far + 1,
            saga_input=step_input,
            config=step.config, cursor=cursor, results=results, defaults=self.input_defaults,
            saga_version=parsed.version,
            deadline=deadline,
            **extra)

    def _record_success(self, tx: LedgerTransaction, request: StepRequest,
                        step: Step, execution: LockedExecution,
                        result: dict[str, Any], started: datetime, *, attempt: int,
                        first: bool, claimed: bool = False) -> None:
        at = self.clock()
        execution_id = request.execution_id
        step_id = step.id
        tx.record_attempt(execution_id, step_id, phase=request.phase, attempt=attempt,
                          outcome=Outcome.SUCCEEDED, started=started, ended=at)
        tried = events.StepAttempt(saga_id=execution.saga_id, step_id=step.id,
                                   attempt=attempt, phase=request.phase, started=started,
                                   ended=at)
        if request.phase is Phase.ACTION:
            size = len(json.dumps(result, default=str).encode())
            if size > self.max_result_bytes:
                raise PermanentError(
                    f"step {step_id}'s result is {size} bytes; the limit is "
                    f"{self.max_result_bytes} (config saga.max_result_bytes)")
            record = tx.record_outcome(execution_id, step_id,
                                       status=after_success(Phase.ACTION).target,
                                       phase=Phase.ACTION, at=at, result=result,
                                       started=started, claimed=claimed)
            batch: EventBatch = [(events.step_started(tried), started)] if first else []
            batch.append((events.step_succeeded(tried, result=result, step=record), at))
            tx.append_events(execution_id, batch)
            return
        # An operator's compensation moved the execution to COMPENSATING before starting the
        # machine; here only a forward run that is being undone starts compensating, saying
        # why (unless the failing step already did).
        running = starts_compensating(request.phase, execution.status)
        cause = (execution.error or self._cause(tx, request)) if running else None
        if running and tx.set_execution_status(execution_id, ExecutionStatus.COMPENSATING,
                                               at=started, error=cause):
            tx.append_events(execution_id, [(events.compensation_started(
                saga_id=execution.saga_id, status=ExecutionStatus.COMPENSATING, cause=cause,
                execution_error=cause), started)])
        record = tx.record_outcome(execution_id, step_id,
                                   status=after_success(Phase.COMPENSATION).target,
                                   phase=Phase.COMPENSATION, at=at, error=None,
                                   started=started, claimed=claimed)
        tx.append_events(execution_id, [(events.step_compensated(tried, result=result,
                                                                 step=record), at)])
        if ends_compensation(request, execution.status):
            self._finish_compensation(tx, execution)

    @staticmethod
    def _cause(tx: LedgerTransaction, request: StepRequest) -> dict[str, Any]:
        """The Catch's error when no step recorded one: a timed-out step is undone first; any
        other error came from the step after the one now undone (a Lambda that crashed)."""
        raw = request.error or {}
        step_id = raw.get("step_id") or request.step_id  # a group's failed branch says which
        if raw.get("Error") != TASK_TIMEOUT and not raw.get("step_id"):
            step_id = tx.next_step(request.execution_id, request.step_id) or step_id
        return execution_error(step_id, Phase.ACTION, raw.get("Error") or "Error", raw.get("Cause"))

    def _finish_compensation(self, tx: LedgerTransaction, execution: LockedExecution, *,
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

    def _record_failure(self, request: StepRequest, error: Exception, started: datetime,
                        claimed: int | None = None) -> Exception:
        """Its own transaction: the attempt's work was rolled back (or, for an unknown
        outcome, may stand), its failure is kept. Returns what the Lambda raises: for an
        action whose outcome is unknown, the machines' name for it, final or not."""
        unknown = request.phase is Phase.ACTION and isinstance(error, OutcomeUnknown)
        # Callers see the type and first line only; the handler logs the whole error.
        error_info = clean_error(OUTCOME_UNKNOWN if unknown else type(error).__name__,
                                 str(error))
        raise_as: Exception = _unknown(str(error), final=False) if unknown else error
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
                                           phase=request.phase, started=started, ended=at)
                if request.phase is Phase.ACTION and isinstance(error, StepAborted):
                    # The step stays as its compensation left it; the attempt is told.
                    tx.record_attempt(request.execution_id, request.step_id,
                                      phase=request.phase, attempt=attempt,
                                      outcome=Outcome.FAILED, started=started, ended=at,
                                      error_type=error_info["type"],
                                      error_message=error_info["message"])
                    tx.append_events(request.execution_id, [(
                        events.step_aborted(tried, error=error_info), at)])
                    return raise_as
                retries = 0
                if request.phase is Phase.ACTION:
                    step = self._step(execution.saga_id, execution.revision, request.step_id)
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
                                  error_message=error_info["message"])
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
                if outcome.final:  # the execution will not complete, and this is why
                    extra["execution_error"] = execution_error(
                        request.step_id, request.phase, error_info["type"],
                        error_info["message"])
                    tx.set_execution_error(request.execution_id, extra["execution_error"])
                tx.append_events(request.execution_id, [(events.attempt_failed(
                    outcome.event, tried, error=error_info, outcome=outcome.outcome,
                    step=record, **extra), at)])
                if request.phase is Phase.ACTION and outcome.outcome is Outcome.UNKNOWN:
                    # Caught like a timeout: the step's own compensation runs.
                    raise_as = _unknown(error_info["message"], final=outcome.final)
        except Exception:  # recording must not hide the step's own error
            logger.exception("could not record the failure of %s/%s", request.execution_id,
                             request.step_id)
        return raise_as

    def _past_timeout(self, step: Step, received: float) -> bool:
        return self.monotonic() - received > parse_duration_ms(step.timeout) / 1000


class _NoTransaction:
    """The cursor a participant's context carries: it runs outside the step's transaction."""

    rowcount = 0
    lastrowid = 0

    def execute(self, query: str, args: Any = None) -> int:
        raise RuntimeError("a participant runs outside the step's transaction")

    def fetchone(self) -> dict[str, Any] | None:
        raise RuntimeError("a participant runs outside the step's transaction")

    def fetchall(self) -> list[dict[str, Any]]:
        raise RuntimeError("a participant runs outside the step's transaction")


_NO_TRANSACTION = _NoTransaction()


class LazyResults(Mapping[str, dict[str, Any]]):
    """Earlier steps' results, read on first use: most actions never look at them."""

    def __init__(self, load: Callable[[], dict[str, dict[str, Any]]]) -> None:
        self._load = load
        self._data: dict[str, dict[str, Any]] | None = None

    def _results(self) -> dict[str, dict[str, Any]]:
        if self._data is None:
            self._data = self._load()
        return self._data

    def __getitem__(self, key: str) -> dict[str, Any]:
        return self._results()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._results())

    def __len__(self) -> int:
        return len(self._results())


@dataclass
class OutcomeRecorder:
    """The recorder Lambda: how an execution ended, recorded from the machine's own path
    (COMPLETED after every Task succeeded; FAILED, COMPENSATION_FAILED, PARKED, and
    COMPENSATED after a group of parallel undos; see the compiler)."""

    ledger: StepLedger
    # Where a completing execution's output mapping is read (None: no output is recorded).
    definitions: DefinitionStore | None = None
    clock: Callable[[], datetime] = _utc_now

    def handle(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        execution_id = str(payload["execution_id"])
        outcome = ExecutionStatus(str(payload["outcome"]))
        with self.ledger.transaction() as tx:
            execution = tx.lock_execution(execution_id)
            if execution is None:
                raise PermanentError(f"no execution {execution_id!r}")
            if outcome is ExecutionStatus.COMPENSATED and \
                    execution.status is ExecutionStatus.RUNNING:
                # Every undo was skipped (each step of the group failed for good): nothing
                # had been done, so nothing was compensated.
                outcome = ExecutionStatus.FAILED
            if execution.status is outcome:
                return {"status": outcome.value, "duplicate": True}
            kind = EVENT_OF[outcome]
            at = self.clock()
            # The failing step recorded why; else the machine's error, without its trace.
            raw = payload.get("error") or {}
            error = None if outcome is ExecutionStatus.COMPLETED else (
                execution.error or execution_error(
                    None, Phase.COMPENSATION if outcome is ExecutionStatus.COMPENSATION_FAILED
                    else Phase.ACTION, raw.get("Error") or "Error", raw.get("Cause")))
            if not tx.set_execution_status(execution_id, outcome, at=at, error=error):
                # It moved on (an operator's action, the reconciler): final means final.
                return {"status": execution.status.value, "refused": outcome.value}
            if outcome is ExecutionStatus.COMPENSATION_FAILED:
                # Parallel undos may fail side by side: the error names every one.
                error = {**(error or {}), "failed_steps": tx.steps_in(
                    execution_id, StepStatus.COMPENSATION_FAILED)}
                tx.set_execution_error(execution_id, error)
            made: dict[str, Any] = {}
            if outcome is ExecutionStatus.COMPLETED:
                output, failed = self._output(tx, execution)
                made = {"output": output,
                        "output_error": None if failed is None else failed.model_dump()}
                tx.set_execution_output(execution_id, output, made["output_error"])
            tx.append_events(execution_id, [(events.moved(
                kind, saga_id=execution.saga_id, status=outcome, execution_error=error,
                **made), at)])
        return {"status": outcome.value}

    def _output(self, tx: LedgerTransaction, execution: LockedExecution
                ) -> tuple[dict[str, Any] | None, OutputError | None]:
        """The saga's output mapping resolved against the input and every step's result, or
        why it could not be. All steps succeeded, so a value that is still absent is the
        mapping's own fault: the execution completes all the same, with no output, and says
        which reference failed (output_error), so the missing output is never silent."""
        saga = (self.definitions.get_revision(execution.saga_id, execution.revision)
                if self.definitions is not None else None)
        if saga is None or saga.output is None:
            return None, None
        parsed = tx.load_execution(execution.id)
        scope = Scope(execution.id, parsed.input, tx.results(execution.id))
        try:
            return resolve(saga.output, scope), None
        except MappingError as error:
            logger.warning("execution %s completed without its output: %s", execution.id, error)
            where, reference, why = unresolved(saga.output, scope) or ("", "", str(error))
            return None, OutputError(field=where, reference=reference,
                                     message=why[:MAX_ERROR_MESSAGE])
