"""Use cases for running sagas: execute, compensate, inspect, and the operator's actions.

Talks to the ports only. The write model is the source of truth; the engine runs each
execution's forward run under the execution's own id, so a repeated start is the same run.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from chalicelib.config import DEFAULT_MAX_FANOUT_ITEMS
from chalicelib.domain import event_types
from chalicelib.domain.errors import BadRequest, Conflict, ErrorKind, NotFound, SagaError
from chalicelib.domain.executions import (
    Execution,
    ExecutionStatus,
    Fault,
    Phase,
    StepShape,
    StepStatus,
    execution_error,
    failure_cause,
)
from chalicelib.domain.fanout import list_problem, split_run_id
from chalicelib.domain.lifecycle import (
    EVENT_OF,
    OPERATOR_ACTIONS,
    RESOLVABLE,
    StepKind,
    accepts_decision,
)
from chalicelib.domain.mapping import Scope, resolve, unresolved
from chalicelib.domain.models import StoredSaga
from chalicelib.domain.requests import (
    MAX_EXECUTION_ID,
    MAX_REASON,
    MIN_REASON,
    ExecuteRequest,
    ResolveRequest,
)
from chalicelib.domain.storable import KAFKA_MAX_REQUEST_BYTES, check_storable
from chalicelib.domain.validation import SAFE_ID
from chalicelib.usecases.definitions import page_size, query_flag
from chalicelib.usecases.ports import (
    Actor,
    DefinitionStore,
    Engine,
    EngineBusy,
    ExecutionPage,
    ExecutionQuery,
    ExecutionReadModel,
    ExecutionStore,
    HistoryPage,
    HistoryQuery,
    ReadModelDown,
    ReadModelUnavailable,
    RunKind,
)

_STATUSES = {status.value for status in ExecutionStatus}


class OrchestratorUnavailable(SagaError):
    kind = ErrorKind.ORCHESTRATOR_UNAVAILABLE


class OrchestratorBusy(SagaError):
    """The engine is over its rate (AWS throttled the start beyond the client's retries): the
    execution is kept, not started; the same request (its execution_id) starts it later."""

    kind = ErrorKind.ORCHESTRATOR_UNAVAILABLE

    def __init__(self, message: str, *, retry_after: int, **details: object) -> None:
        super().__init__(message, retry_after_seconds=retry_after, **details)
        self.retry_after = retry_after


# How long a caller whose start was throttled is told to wait (StartExecution refills 300/s).
BUSY_RETRY_AFTER_S = 1


class AlreadyResolved(Conflict):
    """An operator's decision on an execution someone has resolved: the first one stands."""

    kind = ErrorKind.ALREADY_RESOLVED


@dataclass(frozen=True)
class ExecutionPolicy:
    faults_enabled: bool
    max_input_bytes: int = 256 * 1024
    max_event_bytes: int = KAFKA_MAX_REQUEST_BYTES
    # saga.max_fanout_items: a fan-out over a longer list in the input is refused.
    max_fanout_items: int = DEFAULT_MAX_FANOUT_ITEMS


class ExecutionService:
    def __init__(self, definitions: DefinitionStore, executions: ExecutionStore,
                 engine: Engine, policy: ExecutionPolicy,
                 reads: ExecutionReadModel) -> None:
        self.definitions = definitions
        self.executions = executions
        self.reads = reads
        self.engine = engine
        self.policy = policy

    # -- execute --------------------------------------------------------------------------

    def execute(self, saga_id: str, request: ExecuteRequest,
                actor: Actor) -> tuple[Execution, bool]:
        """Start an execution of the saga's latest version; (execution, created).

        Three transactions at most: the saga read, the execution created with its first event
        (or found, for a repeated request), and the run's start recorded. A refused request
        writes nothing."""
        self._check_request(request)
        saga = self.definitions.get(saga_id)
        if saga is None:
            raise NotFound(f"saga {saga_id!r} does not exist", saga_id=saga_id)
        self._check_fault_steps(request.faults, saga)
        self._check_fanouts(request.input, saga)
        if not saga.active:
            # A repeated request for an execution started before the saga was switched off
            # still gets it (an id the service makes up names none).
            existing = (self.executions.get(request.execution_id)
                        if request.execution_id else None)
            if existing is not None:
                return self._same_request(existing, saga_id), False
            raise Conflict(f"saga {saga_id!r} is not active; activate it to execute it",
                           saga_id=saga_id)
        execution_id = request.execution_id or str(uuid.uuid4())
        # Stored before the start, so a run whose start was not recorded is still found.
        planned = self.engine.plan(saga, execution_id)
        now = datetime.now(UTC)
        execution, created = self.executions.create(Execution(
            id=execution_id, saga_id=saga.id, revision=saga.revision, version=saga.version,
            status=ExecutionStatus.RUNNING, input=request.input, faults=request.faults,
            state_machine_arn=planned.where, started_at=now, updated_at=now,
        ), [StepShape.of(step) for step in saga.active_steps()])
        if not created:  # the id is taken: a repeated request, or one that raced this one
            same = self._same_request(execution, saga_id)
            if same.status is ExecutionStatus.RUNNING and same.sfn_execution_arn is None \
                    and request.execution_id is not None:
                # Its start was refused for the engine's rate (or its answer lost): start it
                # now. The run is named by the id, so a start that did land is the same run.
                return self._start(same, saga, RunKind.FORWARD), True
            return same, False
        return self._start(execution, saga, RunKind.FORWARD), True

    def _check_request(self, request: ExecuteRequest) -> None:
        """What this stage allows and every store can hold; checked before anything is
        read or stored, whichever edge the request came from."""
        if request.faults and not self.policy.faults_enabled:
            raise BadRequest("fault injection is disabled in this stage")
        # Faults are stored and sent with the input, so they count towards its limit.
        size = len(json.dumps(request.input).encode()) + len(json.dumps(
            [fault.model_dump() for fault in request.faults]).encode())
        if size > self.policy.max_input_bytes:
            raise BadRequest(f"input and faults are {size} bytes; the limit is "
                             f"{self.policy.max_input_bytes}")
        execution_id = request.execution_id
        if execution_id is not None and (
                len(execution_id) > MAX_EXECUTION_ID or not SAFE_ID.fullmatch(execution_id)):
            raise BadRequest(f"execution_id must be 1 to {MAX_EXECUTION_ID} letters, digits, "
                             "'.', '_' or '-', starting and ending with a letter or digit",
                             value=execution_id)
        check_storable({"input": request.input,
                        "faults": [fault.model_dump() for fault in request.faults]},
                       max_event_bytes=self.policy.max_event_bytes)

    def _check_fanouts(self, saga_input: dict[str, Any], saga: StoredSaga) -> None:
        """A fan-out over a list in the input: the list is there (unless its step may be
        skipped), is a list, and is within saga.max_fanout_items; refused now rather than
        failing the saga later."""
        for step in saga.active_steps():
            if step.for_each is None or not step.for_each.startswith("$.input"):
                continue
            scope = Scope("", saga_input, {})
            if unresolved({"list": step.for_each}, scope) is not None:
                if step.when is None:
                    raise BadRequest(f"input: step {step.id} fans out over {step.for_each}, "
                                     "which the input lacks", step_id=step.id)
                continue
            value = resolve(step.for_each, scope)
            if problem := list_problem(step.id, step.for_each, value,
                                       max_items=self.policy.max_fanout_items):
                raise BadRequest(f"input: {problem}", step_id=step.id)

    @staticmethod
    def _check_fault_steps(faults: list[Fault], saga: StoredSaga) -> None:
        """A fault aimed at no step of the version that runs would silently do nothing (a
        fan-out's item is aimed at as "<step id>[<index>]")."""
        fanouts = {step.id for step in saga.active_steps() if step.for_each is not None}
        step_ids = {step.id for step in saga.active_steps()}
        children = {step.id: step.saga for step in saga.active_steps() if step.calls_saga}
        for index, fault in enumerate(faults):
            if fault.step_id in children:
                raise BadRequest(f"faults.{index}.step_id: step {fault.step_id!r} runs saga "
                                 f"{children[fault.step_id]!r}, whose steps are its own: a "
                                 "fault can only be aimed at this saga's participants",
                                 value=fault.step_id)
            own_id, item = split_run_id(fault.step_id)
            if fault.step_id not in step_ids and not (item is not None and own_id in fanouts):
                raise BadRequest(f"faults.{index}.step_id: saga {saga.id!r} has no active step "
                                 f"{fault.step_id!r}", value=fault.step_id)

    @staticmethod
    def _same_request(existing: Execution, saga_id: str) -> Execution:
        if existing.saga_id != saga_id:
            raise Conflict(f"execution id {existing.id!r} is taken by saga {existing.saga_id!r}",
                           execution_id=existing.id)
        return existing

    def _start(self, execution: Execution, saga: StoredSaga, kind: RunKind, *,
               at_step: str | None = None,
               unstarted: ExecutionStatus = ExecutionStatus.FAILED) -> Execution:
        """Start the run, after the execution's change is committed, and record that it
        started; the execution as it then is."""
        try:
            run = self.engine.start(saga, execution.id, kind, at_step=at_step)
        except EngineBusy:
            # Nothing started: the execution waits for the same request again (with its
            # execution_id); one never asked for again is failed by the reconciler once it is
            # overdue ("its state machine run never started"), as a 503 promised nothing.
            raise OrchestratorBusy(
                "the orchestrator is over its rate; the execution is kept: send the same "
                "request (its execution_id) again after Retry-After",
                retry_after=BUSY_RETRY_AFTER_S, execution_id=execution.id) from None
        except Exception as error:
            # Nothing ran: the execution is `unstarted` (FAILED; a retry forward stays PARKED)
            # with the reason, and the caller hears 503.
            self.executions.transition(
                execution.id, {ExecutionStatus.RUNNING, ExecutionStatus.COMPENSATING},
                unstarted, EVENT_OF[unstarted],
                {"reason": "the state machine could not be started"},
                error=execution_error(None, None, type(error).__name__, str(error)))
            raise OrchestratorUnavailable(
                f"the execution could not be started: {type(error).__name__}",
                execution_id=execution.id) from error
        return self.executions.mark_started(execution.id, run) or self._current(execution.id)

    # -- compensate, retry, resolve ----------------------------------------------------------

    def compensate(self, saga_id: str, execution_id: str | None, actor: Actor) -> Execution:
        """Undo a COMPLETED execution: the one named, or (None: the request had no body at
        all) the saga's latest completed one. The edge parses the body (CompensateRequest),
        so a mistaken body is refused there and never falls back to "latest"."""
        if self.definitions.get(saga_id) is None and (
                execution_id is None or self.definitions.get_revision(
                    saga_id, self._current(execution_id).revision) is None):
            raise NotFound(f"saga {saga_id!r} does not exist", saga_id=saga_id)
        if execution_id is not None:
            execution = self._current(execution_id)
            if execution.saga_id != saga_id:
                raise NotFound(f"saga {saga_id!r} has no execution {execution_id!r}")
        else:
            found = self.executions.latest(saga_id, ExecutionStatus.COMPLETED)
            if found is None:
                raise Conflict(f"saga {saga_id!r} has no completed execution to compensate",
                               saga_id=saga_id)
            execution = found
        _require(execution, "compensate", "be compensated")
        ran = self.definitions.get_revision(saga_id, execution.revision)
        if ran is not None and (pivot := ran.pivot()) is not None:
            raise Conflict(f"execution {execution.id!r} passed its pivot step {pivot.id!r}: "
                           "after the pivot a saga only goes forward, so it is never "
                           "compensated", execution_id=execution.id)
        return self._run_compensation(
            execution, OPERATOR_ACTIONS["compensate"], actor, "compensation requested",
            execution_error(None, Phase.COMPENSATION, "CompensationRequested",
                            f"compensation requested by {actor.name}"))

    def retry_compensation(self, execution_id: str, actor: Actor) -> Execution:
        execution = self._undecided(self._current(execution_id))
        _require(execution, "retry_compensation", "retry its compensation")
        # The compensation failure is being dealt with: the error says again why the
        # execution is undone (a failed step's, or the operator's request).
        cause = failure_cause(execution.steps) or execution_error(
            None, Phase.COMPENSATION, "CompensationRequested",
            f"compensation retried by {actor.name}")
        return self._run_compensation(execution, OPERATOR_ACTIONS["retry_compensation"],
                                      actor, "compensation retried", cause)

    def _run_compensation(self, execution: Execution, allowed: frozenset[ExecutionStatus],
                          actor: Actor, reason: str, cause: dict[str, Any]) -> Execution:
        saga = self.definitions.get_revision(execution.saga_id, execution.revision)
        if saga is None:
            raise Conflict(f"the version execution {execution.id!r} ran is gone")
        moved = self.executions.transition(execution.id, allowed, ExecutionStatus.COMPENSATING,
                                           event_types.COMPENSATION_STARTED,
                                           {"reason": reason, "by": actor.name}, error=cause,
                                           by_operator=True)
        if moved is None:
            raise self._refused(execution.id)
        return self._start(moved, saga, RunKind.COMPENSATION)

    def retry_forward(self, execution_id: str, actor: Actor) -> Execution:
        """A PARKED execution runs again from its parked group: that group's steps that did
        not succeed get a new round of attempts, then the steps after it run."""
        execution = self._undecided(self._current(execution_id))
        _require(execution, "retry_forward", "be retried forward")
        saga = self.definitions.get_revision(execution.saga_id, execution.revision)
        if saga is None:
            raise Conflict(f"the version execution {execution_id!r} ran is gone")
        steps = saga.active_steps()
        kinds = {step.id: step.kind for step in steps}
        unfinished = [run.step_id for run in sorted(execution.steps, key=lambda r: r.position)
                      if kinds.get(run.step_id) is StepKind.RETRIABLE
                      and run.status is not StepStatus.SUCCEEDED]
        if not unfinished:
            raise Conflict(f"execution {execution_id!r} has no retriable step left to run",
                           execution_id=execution_id)
        moved = self.executions.resume(execution_id, unfinished, actor.name)
        if moved is None:
            raise self._refused(execution_id)
        return self._start(moved, saga, RunKind.RESUME, at_step=unfinished[0],
                           unstarted=ExecutionStatus.PARKED)

    def resolve(self, execution_id: str, request: ResolveRequest, actor: Actor) -> Execution:
        reason = request.reason
        if len(reason.strip()) < MIN_REASON or len(reason) > MAX_REASON:
            raise BadRequest(f"the reason must have {MIN_REASON} to {MAX_REASON} characters")
        execution = self._undecided(self._current(execution_id))
        if execution.status not in RESOLVABLE:
            raise self._unresolvable(execution)
        resolved = self.executions.resolve(execution_id, actor.name, reason.strip())
        if resolved is None:
            # The store's locked check refused what the read allowed: another decision came
            # first (a resolve, or a retry that moved it on).
            raise self._refused(execution_id)
        return resolved

    @staticmethod
    def _unresolvable(execution: Execution) -> Conflict:
        return Conflict(f"execution {execution.id!r} is {execution.status.value}; only a "
                        "failed or parked execution can be marked resolved",
                        execution_id=execution.id)

    @staticmethod
    def _resolved(execution: Execution) -> AlreadyResolved:
        """Who decided and when. Its last change is the resolution: nothing moves a resolved
        execution any more. The time is written as the execution's own fields are."""
        at = execution.model_dump(mode="json", include={"updated_at"})["updated_at"]
        return AlreadyResolved(
            f"execution {execution.id!r} was resolved by {execution.resolved_by} at {at} "
            f"({execution.resolution!r}); a resolved execution accepts no further decision",
            execution_id=execution.id, resolved_by=execution.resolved_by, resolved_at=at,
            resolution=execution.resolution)

    def _undecided(self, execution: Execution) -> Execution:
        """The execution, if an operator may still decide on it (lifecycle.accepts_decision)."""
        if not accepts_decision(execution.resolved_by):
            raise self._resolved(execution)
        return execution

    def _refused(self, execution_id: str) -> Conflict:
        """Why the store refused an operator's change that the read allowed: another decision
        came first. A resolve is named; a move of the status is told as it now is."""
        now = self._current(execution_id)
        if not accepts_decision(now.resolved_by):
            return self._resolved(now)
        return Conflict(f"execution {execution_id!r} changed meanwhile (it is "
                        f"{now.status.value}); read it again", execution_id=execution_id)

    # -- read ---------------------------------------------------------------------------------

    def _current(self, execution_id: str) -> Execution:
        """The write model's view: what the operator actions decide on."""
        execution = self.executions.get(execution_id)
        if execution is None:
            raise NotFound(f"execution {execution_id!r} does not exist",
                           execution_id=execution_id)
        return execution

    def get(self, execution_id: str) -> Execution:
        """The read model's view; the write model's until the first event is projected, or
        while the read model is unreachable (consistency.source says which)."""
        try:
            projected = self.reads.get(execution_id)
        except ReadModelUnavailable:
            projected = None
        return projected or self._current(execution_id)

    def status(self, saga_id: str) -> dict[str, Any]:
        saga = self.definitions.get(saga_id)
        if saga is None:
            raise NotFound(f"saga {saga_id!r} does not exist", saga_id=saga_id)
        try:
            latest = self.reads.latest(saga_id) or self.executions.latest(saga_id)
            summary = self.reads.summary(saga_id)
        except ReadModelUnavailable:
            latest = self.executions.latest(saga_id)
            summary = {"running": self.executions.count_active(saga_id),
                       "unavailable": "the read model cannot be reached"}
        return {"saga_id": saga_id, "active": saga.active, "version": saga.version,
                "running": summary["running"], "executions": summary,
                "latest_execution": latest.model_dump(mode="json", exclude={"steps"})
                if latest else None}

    def saga_summary(self, saga_id: str) -> dict[str, Any]:
        try:
            return self.reads.summary(saga_id)
        except ReadModelUnavailable:
            return {"unavailable": "the read model cannot be reached"}

    def totals(self) -> dict[str, Any]:
        try:
            return self.reads.totals()
        except ReadModelUnavailable:
            return {"unavailable": "the read model cannot be reached"}

    def history(self, execution_id: str, *, limit: str | None,
                cursor: str | None) -> HistoryPage:
        """Every event of the execution in sequence, a page at a time (404 for an unknown
        execution; an execution whose first event is not projected yet has none yet)."""
        query = HistoryQuery(execution_id, page_size(limit), cursor or None)
        self.get(execution_id)
        try:
            return self.reads.history(query)
        except ReadModelUnavailable as down:
            raise ReadModelDown(f"the read model, which keeps the history, cannot be "
                                     f"reached: {down}") from None
        except ValueError as bad_cursor:
            raise BadRequest(str(bad_cursor), value=cursor) from None

    def list(self, *, saga_id: str | None, status: str | None, limit: str | None,
             cursor: str | None, started_after: str | None = None,
             started_before: str | None = None, needs_attention: str | None = None,
             resolved: str | None = None, q: str | None = None) -> ExecutionPage:
        if status and status not in _STATUSES:
            raise BadRequest(f"status must be one of {', '.join(sorted(_STATUSES))}",
                             value=status)
        after = _instant("started_after", started_after)
        before = _instant("started_before", started_before)
        if after is not None and before is not None and after > before:
            raise BadRequest("started_after must not be later than started_before",
                             value=started_after)
        query = ExecutionQuery(limit=page_size(limit), saga_id=saga_id or None,
                               status=status or None, started_after=after,
                               started_before=before, cursor=cursor or None,
                               needs_attention=query_flag("needs_attention", needs_attention),
                               resolved=query_flag("resolved", resolved), q=_search(q))
        try:
            try:
                return self.reads.list(query)
            except ReadModelUnavailable:
                # Same order and cursor format, from the write model.
                return self.executions.list(query)
        except ValueError as bad_cursor:
            raise BadRequest(str(bad_cursor), value=cursor) from None


def _instant(name: str, raw: str | None) -> datetime | None:
    """A query's time bound: ISO 8601 with its zone (a time without one means nothing here)."""
    if not raw:
        return None
    try:
        at = datetime.fromisoformat(raw)
    except ValueError:
        at = None
    if at is None or at.tzinfo is None:
        raise BadRequest(f"{name} must be an ISO 8601 time with its zone, such as "
                         "2026-12-05T09:30:00Z", value=raw)
    return at.astimezone(UTC)


def _require(execution: Execution, action: str, what: str) -> None:
    """409 unless the lifecycle lets an operator's `action` start from the execution's status
    (lifecycle.OPERATOR_ACTIONS, which the console reads too)."""
    sources = OPERATOR_ACTIONS[action]
    if execution.status not in sources:
        names = " or ".join(status.value for status in sources)
        raise Conflict(f"execution {execution.id!r} is {execution.status.value}; only a "
                       f"{names} execution can {what}", execution_id=execution.id)


# The longest text a search takes: an execution's id is at most 64 characters, a saga's 100.
MAX_SEARCH = 100


def _search(text: str | None) -> str | None:
    """?q=: an execution's or a saga's id, compared exactly (no pattern: nothing to escape)."""
    if text is None or not text.strip():
        return None
    if len(text) > MAX_SEARCH:
        raise BadRequest(f"q is an execution's or a saga's id: at most {MAX_SEARCH} "
                         "characters", value=text[:MAX_SEARCH])
    return text.strip()
