"""Child steps, on the recorder Lambda's side: a step that runs another saga (its `saga`).

Forward:  start (the step admitted, the child's execution made with a derived id and the
          step's input, before any of its Lambdas runs; or found, on a repeat) -> the engine
          starts the child's run and waits for it to end (Step Functions' startExecution.sync:2;
          a repeated start is the same run) -> settle: the child COMPLETED, the step succeeds
          with its output; it ended otherwise, the step fails for good; it has not ended, the
          Task is retried later (Saga.ChildRunning).
Undo:     undo (the completed child moved to COMPENSATING, asked by its parent) -> the engine
          runs the child's compensation machine and waits -> undone: the step is compensated,
          or its compensation failed (the child's did). A child still running when its parent
          undoes it is waited for first: the late-action rule, applied to a whole saga.

The decisions are chalicelib.domain.children's; the runs' machines and names are the engine
adapter's (ChildRuns).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from chalicelib.domain import events
from chalicelib.domain.children import (
    CHILD_DEPTH_TYPE,
    CHILD_FAILED_TYPE,
    CHILD_MISSING_TYPE,
    CHILD_UNDO_FAILED_TYPE,
    PARENT_COMPENSATES_TYPE,
    ChildMove,
    child_execution_id,
    child_result,
    on_settle,
    on_start,
    on_undo,
    on_undone,
)
from chalicelib.domain.decisions import StepRequest
from chalicelib.domain.executions import Execution, ParentRef, StepShape, execution_error
from chalicelib.domain.lifecycle import CHILD_RUNNING, ExecutionStatus, Phase, StepStatus
from chalicelib.domain.mapping import MappingError, resolve
from chalicelib.domain.models import Step, StoredSaga
from chalicelib.domain.step_context import OutcomeUnknown, PermanentError
from chalicelib.domain.step_runs import LockedExecution
from chalicelib.durations import parse_duration_ms
from chalicelib.usecases.ports import DefinitionStore
from chalicelib.usecases.steps.conditions import skipped_by_condition
from chalicelib.usecases.steps.ledger import LedgerTransaction, StepLedger
from chalicelib.usecases.steps.recording import OutcomeWriter, cause
from chalicelib.usecases.steps.revisions import StepDefinitions
from chalicelib.usecases.steps.scopes import scope_of

# Lambda reports an error by its class name: the machines retry this one with their own
# backoff (the child has not ended yet).
ChildRunning = type(CHILD_RUNNING, (Exception,), {})
# Every answer has both keys: the machine's ResultSelector reads them.
_SKIPPED = {"run": None, "skipped": True}
_NO_RUN = {"run": None, "skipped": False}


@dataclass(frozen=True)
class RunSpec:
    """A run the machine starts and waits for: StartExecution's machine, name and input."""

    machine: str
    name: str
    input: dict[str, Any]

    def answer(self) -> dict[str, Any]:
        return {"run": {"machine": self.machine, "name": self.name, "input": self.input},
                "skipped": False}


class ChildRuns(Protocol):
    """The engine's runs of a child (chalicelib.adapters.stepfunctions.child_runs).
    beside: the parent's machine, whose account and region the child's machines share."""

    def forward(self, saga: StoredSaga, execution_id: str, *, beside: str) -> RunSpec: ...

    def compensation(self, saga: StoredSaga, execution_id: str, *, beside: str,
                     error: dict[str, Any]) -> RunSpec: ...


@dataclass
class ChildRunner:
    ledger: StepLedger
    definitions: DefinitionStore
    outcomes: OutcomeWriter
    runs: ChildRuns
    clock: Callable[[], datetime]
    # config saga.max_child_depth.
    max_depth: int
    cache_definitions: bool = True
    sleep: Callable[[float], None] = time.sleep
    steps: StepDefinitions = field(init=False)

    def __post_init__(self) -> None:
        self.steps = StepDefinitions(self.definitions, cache=self.cache_definitions)

    def run(self, request: StepRequest) -> dict[str, Any]:
        match request.child:
            case "start":
                return self.start(request)
            case "settle":
                return self.settle(request)
            case "expired":
                return self.settle(request, expired=True)
            case "undo":
                return self.undo(request)
            case "undone":
                return self.undone(request)
        raise PermanentError(f"no child task {request.child!r}")

    def _locked(self, tx: LedgerTransaction,
                request: StepRequest) -> tuple[LockedExecution, Step]:
        execution, step = self.steps.locked(tx, request.execution_id, request.step_id)
        if not step.calls_saga:
            raise PermanentError(f"step {step.id} runs no saga")
        return execution, step

    def _beside(self, request: StepRequest) -> str:
        if not request.machine:
            raise PermanentError("a child step's Task names no machine")
        return request.machine

    # -- forward ------------------------------------------------------------------------------

    def start(self, request: StepRequest) -> dict[str, Any]:
        """The child's run to start ({"run": {...}}), or {"run": None} when it has ended
        already (settle says how). A failure here made no child: the step failed, nothing to
        undo."""
        try:
            return self._start(request)
        except PermanentError as error:
            raise self.outcomes.failed(request, error, self.clock()) from None

    def _start(self, request: StepRequest) -> dict[str, Any]:
        beside = self._beside(request)
        with self.ledger.transaction() as tx:
            execution, step = self._locked(tx, request)
            run = tx.lock_step(execution.id, step.id)
            if run is None:
                raise PermanentError(f"execution {execution.id!r} has no step {step.id!r}")
            # One child per round of the step: a repeat finds the one this round made.
            child_id = run.child if run.status is StepStatus.RUNNING and run.child else \
                child_execution_id(execution.id, step.id, run.retry_base)
            if run.status is StepStatus.SKIPPED or (
                    run.status is StepStatus.PENDING
                    and execution.status is ExecutionStatus.RUNNING
                    and skipped_by_condition(tx, execution, step, at=self.clock()) is not None):
                return _SKIPPED
            if run.status is not StepStatus.PENDING and run.status is not StepStatus.RUNNING:
                return _NO_RUN  # recorded already: settle answers as it was
            if execution.status is not ExecutionStatus.RUNNING or execution.error is not None:
                raise PermanentError(f"execution {execution.id} is no longer running forward")
            child = tx.lock_execution(child_id)
            saga = self._child_saga(step, child)
            move = on_start(None if child is None else child.status)
            spec = self.runs.forward(saga, child_id, beside=beside)
            if child is None:
                parent = tx.load_execution(execution.id)
                depth = parent.depth + 1
                if depth > self.max_depth:
                    raise PermanentError(
                        f"step {step.id} would start saga {saga.id!r} at depth {depth}; the "
                        f"limit is {self.max_depth} (config saga.max_child_depth)",
                        error_type=CHILD_DEPTH_TYPE)
                now = self.clock()
                tx.add_execution(Execution(
                    id=child_id, saga_id=saga.id, revision=saga.revision, version=saga.version,
                    status=ExecutionStatus.RUNNING, input=self._child_input(tx, parent, step),
                    parent=ParentRef(execution_id=execution.id, step_id=step.id), depth=depth,
                    state_machine_arn=spec.machine, started_at=now, updated_at=now,
                ), [StepShape.of(s) for s in saga.active_steps()])
            if run.status is StepStatus.PENDING:
                now = self.clock()
                record = tx.start_child(execution.id, step.id, child_id=child_id, at=now)
                tried = events.StepAttempt(saga_id=execution.saga_id, step_id=step.id,
                                           attempt=record["action_attempts"],
                                           phase=Phase.ACTION, started=now, ended=now)
                tx.append_events(execution.id, [(events.step_started(tried), now)])
            tx.expect_by(execution.id, self.clock() + timedelta(
                seconds=_wait_s(step)))
        return spec.answer() if move is ChildMove.RUN else _NO_RUN

    def _child_saga(self, step: Step, child: LockedExecution | None) -> StoredSaga:
        """The version the child runs: the one it was made with, else the step's pinned
        version, else the saga's latest (which must be active)."""
        assert step.saga is not None
        if child is not None:
            found = self.definitions.get_revision(child.saga_id, child.revision)
        else:
            found = self.definitions.get(step.saga, step.saga_version)
        if found is None:
            at = f" at version {step.saga_version}" if step.saga_version else ""
            raise PermanentError(f"step {step.id} calls saga {step.saga!r}{at}, which does not "
                                 "exist", error_type=CHILD_MISSING_TYPE)
        if child is None and not found.active:
            raise PermanentError(f"step {step.id} calls saga {step.saga!r}, which is not "
                                 "active", error_type=CHILD_MISSING_TYPE)
        return found

    @staticmethod
    def _child_input(tx: LedgerTransaction, parent: Execution, step: Step) -> dict[str, Any]:
        """The step's input as its mapping resolves (the parent's input when it has none)."""
        if step.input is None:
            return dict(parent.input)
        scope = scope_of(tx, parent.id, parent.input, tx.results(parent.id), step.input)
        try:
            resolved = resolve(step.input, scope)
        except MappingError as error:
            raise PermanentError(f"step {step.id}'s input: {error}") from None
        return dict(resolved)

    def settle(self, request: StepRequest, *, expired: bool = False) -> dict[str, Any]:
        """The child's run ended (or was never started again): the step's outcome. expired:
        the parent stopped waiting (the step's timeout); a child that has not ended then
        makes the step's outcome unknown, so its undo runs (and waits for the child)."""
        started = self.clock()
        failure: Exception | None = None
        with self.ledger.transaction() as tx:
            execution, step = self._locked(tx, request)
            run = tx.lock_step(execution.id, step.id)
            if run is None:
                raise PermanentError(f"execution {execution.id!r} has no step {step.id!r}")
            if run.status in (StepStatus.SUCCEEDED, StepStatus.SKIPPED):
                return {"status": run.status.value}  # a repeat: recorded already
            if run.status is not StepStatus.RUNNING or run.child is None:
                raise PermanentError(f"step {step.id} is {run.status}: its child did not run")
            child_id = run.child
            child = tx.lock_execution(child_id)
            move = on_settle(None if child is None else child.status)
            if move is ChildMove.WAIT and expired:
                failure = OutcomeUnknown(f"child execution {child_id} had not ended by the "
                                         f"step's timeout ({step.timeout}): it is undone once "
                                         "it has")
            elif move is ChildMove.WAIT:
                raise ChildRunning(f"child execution {child_id} has not ended")
            if move is ChildMove.SUCCEED:
                ended = tx.load_execution(child_id)
                result = child_result(ended.output, tx.results(child_id))
                # The attempt lasted as long as the child's run.
                self.outcomes.succeeded(tx, request, step,
                                        execution, result, min(ended.started_at, started),
                                        attempt=max(1, run.action_attempts), first=False,
                                        claimed=True)
                return {"status": StepStatus.SUCCEEDED.value, "child": child_id}
            if failure is None:
                status = "never made" if child is None else child.status.value
                why = (child.error or {}).get("message") if child is not None else None
                failure = PermanentError(
                    f"child execution {child_id} of saga {step.saga!r} ended {status}"
                    + (f": {why}" if why else ""), error_type=CHILD_FAILED_TYPE)
        raise self.outcomes.failed(request, failure, started,
                                   claimed=max(1, run.action_attempts))

    # -- undo ---------------------------------------------------------------------------------

    def undo(self, request: StepRequest) -> dict[str, Any]:
        """The child's compensation run to start ({"run": {...}}), or {"run": None} when
        there is nothing (more) of it to undo."""
        beside = self._beside(request)
        with self.ledger.transaction() as tx:
            execution, step = self._locked(tx, request)
            run = tx.lock_step(execution.id, step.id)
            child_id = run.child if run is not None else None
            child = tx.lock_execution(child_id) if child_id is not None else None
            ours = child is not None and (child.error or {}).get("type") == \
                PARENT_COMPENSATES_TYPE
            move = on_undo(None if child is None else child.status, compensated_by_parent=ours)
            if move is ChildMove.WAIT:
                raise ChildRunning(f"child execution {child_id} has not ended: it is undone "
                                   "once it has")
            if move is ChildMove.UNDO_FAILED:
                raise PermanentError(f"child execution {child_id}'s compensation failed: "
                                     "retry or resolve it first", error_type=CHILD_UNDO_FAILED_TYPE)
            if move is ChildMove.UNDONE or child is None or child_id is None:
                return _NO_RUN
            saga = self._child_saga(step, child)
            error = execution_error(None, Phase.COMPENSATION, PARENT_COMPENSATES_TYPE,
                                    f"execution {execution.id} compensates its step {step.id}")
            if move is ChildMove.BEGIN_UNDO:
                now = self.clock()
                if execution.status is ExecutionStatus.RUNNING and execution.error is None:
                    # Say why now: a late delivery of any action is refused from here on.
                    tx.set_execution_error(execution.id, cause(tx, request))
                if not tx.set_execution_status(child_id, ExecutionStatus.COMPENSATING, at=now,
                                               error=error, by_operator=True):
                    raise PermanentError(f"child execution {child_id} could not be moved to "
                                         "COMPENSATING: it was resolved",
                                         error_type=CHILD_UNDO_FAILED_TYPE)
                tx.append_events(child_id, [(events.compensation_started(
                    saga_id=child.saga_id, status=ExecutionStatus.COMPENSATING,
                    execution_error=error, reason="its parent compensates",
                    by=f"execution {execution.id}"), now)])
                tx.claim_attempt(execution.id, step.id, phase=Phase.COMPENSATION,
                                 deadline=now + timedelta(seconds=_wait_s(step)))
        return self.runs.compensation(saga, child_id, beside=beside, error=error).answer()

    def undone(self, request: StepRequest) -> dict[str, Any]:
        """The child's compensation ended (or nothing was left to undo): the step is
        compensated, and the chain's last undo ends the compensation."""
        started = self.clock()
        with self.ledger.transaction() as tx:
            execution, step = self._locked(tx, request)
            run = tx.lock_step(execution.id, step.id)
            child_id = run.child if run is not None else None
            child = tx.lock_execution(child_id) if child_id is not None else None
            move = on_undone(None if child is None else child.status)
            if move is ChildMove.WAIT:
                raise ChildRunning(f"child execution {child_id} is still compensating")
            if move is ChildMove.UNDONE:
                if run is not None and run.status in (StepStatus.SUCCEEDED, StepStatus.RUNNING,
                                                      StepStatus.OUTCOME_UNKNOWN,
                                                      StepStatus.COMPENSATING):
                    self.outcomes.succeeded(
                        tx, request, step, execution,
                        {"child": child_id, "status": None if child is None
                         else child.status.value}, started,
                        attempt=max(1, run.compensation_attempts), first=False,
                        claimed=run.compensation_attempts > 0)
                elif request.last:
                    self.outcomes.finish_compensation(
                        tx, execution, skipped=execution.status is ExecutionStatus.RUNNING)
                return {"status": "undone"}
        failure = PermanentError(f"child execution {child_id}'s compensation failed: retry or "
                                 "resolve it, then retry this one's",
                                 error_type=CHILD_UNDO_FAILED_TYPE)
        raise self.outcomes.failed(request, failure, started,
                                   claimed=run.compensation_attempts if run else None)


def _wait_s(step: Step) -> int:
    """How long the parent may wait for the child (the step's timeout, whole seconds)."""
    return max(1, parse_duration_ms(step.timeout) // 1000)
