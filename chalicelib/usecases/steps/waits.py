"""Steps that wait, on the step runtime's side: a callback opened before its action is called,
and a timer set and fired. The engine does the waiting; these run in the step Lambdas (the
action's, or the recorder's for an approval and a timer).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib.domain import events
from chalicelib.domain import expected_by as expected
from chalicelib.domain.callbacks import (
    Callback,
    new_callback_id,
    new_secret,
    secret_sha256,
    wait_input,
)
from chalicelib.domain.decisions import StepRequest
from chalicelib.domain.executions import Waiting
from chalicelib.domain.lifecycle import (
    DEFAULT_TASK_TIMEOUT_MARGIN_S,
    ExecutionStatus,
    Phase,
    StepKind,
    StepStatus,
    WaitKind,
)
from chalicelib.domain.mapping import MappingError, Scope, resolve
from chalicelib.domain.models import Step
from chalicelib.domain.step_context import PermanentError
from chalicelib.domain.step_runs import LockedExecution, LockedStep
from chalicelib.domain.verdicts import Admitted, AlreadyDone, Refused
from chalicelib.durations import parse_duration_ms
from chalicelib.usecases.ports import DefinitionStore
from chalicelib.usecases.steps.admission import admit
from chalicelib.usecases.steps.conditions import skipped_by_condition
from chalicelib.usecases.steps.failures import step_skipped
from chalicelib.usecases.steps.ledger import LedgerTransaction, StepLedger
from chalicelib.usecases.steps.recording import OutcomeWriter
from chalicelib.usecases.steps.revisions import StepDefinitions
from chalicelib.usecases.steps.scopes import scope_of

# How early an engine's Wait may end that a timer still makes up for (more is not an early
# Wait but a moment that moved: it fires as it is).
_MAX_EARLY_S = 2.0
# Builds the links that complete a callback: (callback id, secret) -> {succeed, fail,
# heartbeat} URLs (chalicelib.http.paths.callback_links with the API's public URL).
CallbackLinks = Callable[[str, str], dict[str, str]]


@dataclass(frozen=True)
class OpenedCallback:
    """A callback committed with its step's attempt, before its action is called."""

    callback: Callback
    waiting: dict[str, Any]  # the step's wait, as its record will say
    info: dict[str, Any]  # what the participant is sent (contract.CallbackInfo)


def open_callback(tx: LedgerTransaction, request: StepRequest, step: Step, attempt: int,
                  now: datetime, links: CallbackLinks) -> OpenedCallback:
    """Keeps a new callback for this attempt (superseding any older one of the step): its id,
    its secret's hash and the task token, committed before anyone is called, so a completion
    that arrives before the call answers is accepted."""
    if request.task_token is None:
        raise PermanentError(f"step {step.id} is a callback, but its Task carries no token")
    assert step.timeout is not None
    expires = now + timedelta(milliseconds=parse_duration_ms(step.timeout))
    heartbeat_s = (None if step.heartbeat is None
                   else max(1, parse_duration_ms(step.heartbeat) // 1000))
    secret = new_secret()
    callback = Callback(id=new_callback_id(), secret_sha256=secret_sha256(secret),
                        execution_id=request.execution_id, step_id=step.id, attempt=attempt,
                        task_token=request.task_token, created_at=now, expires_at=expires,
                        heartbeat_s=heartbeat_s)
    tx.register_callback(callback)
    waiting = Waiting(kind=WaitKind.CALLBACK, since=now, until=expires,
                      callback_id=callback.id).model_dump(mode="json")
    urls = links(callback.id, secret)
    info = {"id": callback.id, "succeed_url": urls["succeed"], "fail_url": urls["fail"],
            "heartbeat_url": urls["heartbeat"], "expires_at": expires,
            "heartbeat_seconds": heartbeat_s}
    return OpenedCallback(callback, waiting, info)


def callback_waiting(waiting: dict[str, Any], step_input: Mapping[str, Any], max_bytes: int,
                     *, approval: bool) -> dict[str, Any]:
    """A callback's wait with the step's input as its mapping resolved (bounded by
    `max_bytes`): what an approval's person decides on (an approval, a callback step with no
    action, is marked as one), what a partner's call was sent."""
    return {**waiting, "approval": approval, "input": wait_input(step_input, max_bytes)}


def start_waiting(tx: LedgerTransaction, execution: LockedExecution, step: Step, attempt: int,
                  waiting: dict[str, Any], *, started: datetime, now: datetime, margin_s: int,
                  result: dict[str, Any] | None = None) -> None:
    """The step is WAITING from now: its record and the started and waiting events; the
    reconciler leaves the execution alone until the wait's end (plus the margin)."""
    record = tx.record_waiting(execution.id, step.id, waiting=waiting, result=result)
    until = Waiting.model_validate(waiting).until
    tx.expect_by(execution.id, expected.wait_bound(until, margin_s))
    tried = events.StepAttempt(saga_id=execution.saga_id, step_id=step.id, attempt=attempt,
                               phase=Phase.ACTION, started=started, ended=now)
    tx.append_events(execution.id, [
        (events.step_started(tried), started),
        (events.step_waiting(tried, step=record,
                             result=events.ABSENT if result is None else result), now)])


# -- timers ---------------------------------------------------------------------------------

def timer_moment(step: Step, *, now: datetime, scope: Scope, max_wait_s: int) -> datetime:
    """When a timer fires: its duration from now, or the timestamp its `until` names (ISO
    8601; one without a zone is UTC), never past saga.max_wait from now. PermanentError says
    what is wrong (the step fails for good: nothing was done)."""
    if step.wait is not None:
        return now + timedelta(milliseconds=parse_duration_ms(step.wait))
    assert step.until is not None
    try:
        value = resolve(step.until, scope)
    except MappingError as error:
        raise PermanentError(f"step {step.id}'s until: {error}") from None
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise PermanentError(f"step {step.id}'s until ({step.until}) is {str(value)[:60]!r}, "
                             "not an ISO 8601 timestamp such as 2026-12-24T18:00:00Z") from None
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    if moment > now + timedelta(seconds=max_wait_s):
        raise PermanentError(f"step {step.id}'s until ({moment.isoformat()}) is more than "
                             f"saga.max_wait ({max_wait_s} s) away")
    return moment


def engine_timestamp(moment: datetime) -> str:
    """The form a Wait state's TimestampPath reads everywhere (RFC 3339, UTC, "Z", whole
    seconds): rounded up, so a timer never fires early."""
    utc = moment.astimezone(UTC)
    whole = utc.replace(microsecond=0) + timedelta(seconds=math.ceil(utc.microsecond / 1e6))
    return whole.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class TimerRunner:
    """The recorder Lambda's half of a timer step: set it, then record that it fired."""

    ledger: StepLedger
    definitions: DefinitionStore
    outcomes: OutcomeWriter
    clock: Callable[[], datetime]
    max_wait_s: int
    cache_definitions: bool = True
    task_timeout_margin_s: int = DEFAULT_TASK_TIMEOUT_MARGIN_S
    sleep: Callable[[float], None] = time.sleep

    def __post_init__(self) -> None:
        self.steps = StepDefinitions(self.definitions, cache=self.cache_definitions)

    def run(self, request: StepRequest) -> dict[str, Any]:
        return self.start(request) if request.timer == "start" else self.fired(request)

    def start(self, request: StepRequest) -> dict[str, Any]:
        """The timer's moment ({"until": ...}), set once: a repeated delivery answers the
        moment already set. A timer whose condition is false is recorded skipped (committed),
        then the machine is told: it catches the skip and moves on."""
        with self.ledger.transaction() as tx:
            execution, step = self._locked(tx, request)
            if execution.status is ExecutionStatus.RUNNING:
                skipped_by_condition(tx, execution, step, at=self.clock())
            run = tx.lock_step(request.execution_id, step.id)
            if run is None or run.status is not StepStatus.SKIPPED:
                return self._set(tx, request, execution, step, run)
        raise step_skipped(step.id)

    def _set(self, tx: LedgerTransaction, request: StepRequest, execution: LockedExecution,
             step: Step, run: LockedStep | None) -> dict[str, Any]:
        if run is not None and run.status is StepStatus.WAITING and run.waiting:
            return {"until": engine_timestamp(run.waiting.until)}
        verdict = admit(tx, request, step, execution, starting=True, faults_enabled=False)
        if isinstance(verdict, AlreadyDone):
            return {"until": engine_timestamp(self.clock())}
        if isinstance(verdict, Refused):
            raise verdict.error
        if not isinstance(verdict, Admitted):
            raise PermanentError(f"timer {step.id} must not start now")
        now = self.clock()
        scope = scope_of(tx, request.execution_id, verdict.execution.input,
                         tx.results(request.execution_id), [step.until or ""])
        until = timer_moment(step, now=now, scope=scope, max_wait_s=self.max_wait_s)
        waiting = Waiting(kind=WaitKind.TIMER, since=now, until=until)
        start_waiting(tx, execution, step, verdict.number, waiting.model_dump(mode="json"),
                      started=now, now=now, margin_s=self.task_timeout_margin_s)
        return {"until": engine_timestamp(until)}

    def fired(self, request: StepRequest) -> dict[str, Any]:
        """The Wait state has passed: the step succeeds (its result says when it fired).
        An engine that ends a Wait early (LocalStack drops the timestamp's fraction and can
        fire up to a second before it) is made up for here: a timer never fires early."""
        with self.ledger.transaction() as tx:
            run = tx.lock_step(request.execution_id, request.step_id)
        if run is not None and run.waiting is not None:
            early_s = (run.waiting.until - self.clock()).total_seconds()
            if 0 < early_s <= _MAX_EARLY_S:
                self.sleep(early_s)
        with self.ledger.transaction() as tx:
            execution, step = self._locked(tx, request)
            run = tx.lock_step(request.execution_id, step.id)
            if run is None or run.status is StepStatus.SUCCEEDED:
                return {"status": StepStatus.SUCCEEDED.value, "duplicate": True}
            waiting = run.waiting
            now = self.clock()
            record = tx.update_waiting(request.execution_id, step.id,
                                       completed_by=WaitKind.TIMER.value,
                                       completed_at=now.isoformat())
            tx.append_events(request.execution_id, [(events.step_timer_fired(
                saga_id=execution.saga_id, step_id=step.id, attempt=1, step=record), now)])
            since = waiting.since if waiting is not None else now
            result = {"until": engine_timestamp(waiting.until if waiting else now),
                      "fired_at": now.isoformat()}
            self.outcomes.succeeded(tx, request, step, execution, result, since,
                                    attempt=1, first=False)
            # The wait is over: the next step is delivered at once.
            tx.expect_by(execution.id, expected.attempt_bound(now, self.task_timeout_margin_s))
        return {"status": "ok", "result": result}

    def _locked(self, tx: LedgerTransaction,
                request: StepRequest) -> tuple[LockedExecution, Step]:
        execution = tx.lock_execution(request.execution_id)
        if execution is None:
            raise PermanentError(f"no execution {request.execution_id!r}")
        step = self.steps.step(execution.saga_id, execution.revision, request.step_id)
        if step.kind is not StepKind.WAIT:
            raise PermanentError(f"step {step.id} is not a timer")
        return execution, step
