"""The interfaces the service needs from the outside world; adapters/ implements them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from chalicelib.domain.errors import ErrorKind, SagaError
from chalicelib.domain.lifecycle import RunStatus

# Named in signatures only: importing the ports (for Actor, say) builds none of the domain's
# models, which a request that needs none of them would otherwise pay for.
if TYPE_CHECKING:
    from chalicelib.domain.executions import Execution, ExecutionStatus, StepShape
    from chalicelib.domain.history import HistoryEntry
    from chalicelib.domain.models import SagaDefinition, StoredSaga
    from chalicelib.domain.open_callbacks import OpenCallback
    from chalicelib.domain.workflow import WorkflowChoice


@dataclass(frozen=True)
class Actor:
    """Who asked: recorded in the audit log."""

    name: str = "anonymous"
    request_id: str | None = None


@dataclass(frozen=True)
class Page:
    items: list[StoredSaga]
    next_cursor: str | None


@dataclass(frozen=True)
class SagaFilter:
    active: bool | None = None
    type: str | None = None


@dataclass(frozen=True)
class Totals:
    sagas: int
    steps: int
    versions: int
    active_sagas: int
    by_type: dict[str, int] = field(default_factory=dict)


class DefinitionStore(Protocol):
    """The write model of saga definitions. Every mutation writes its audit row atomically."""

    def insert_version(self, saga: SagaDefinition, *, expected_revision: int | None,
                       actor: Actor, action: str,
                       workflow: WorkflowChoice | None = None) -> StoredSaga:
        """Store a new immutable version. expected_revision None means the saga must not
        exist; otherwise the latest revision must still be that one (optimistic lock).
        workflow: the workflow chosen for it, kept with it (None: Standard)."""
        ...

    def get(self, saga_id: str, version: str | None = None) -> StoredSaga | None: ...

    def get_revision(self, saga_id: str, revision: int) -> StoredSaga | None: ...

    def list(self, limit: int, cursor: str | None, filters: SagaFilter) -> Page: ...

    def versions(self, saga_id: str) -> list[dict[str, Any]]: ...

    def set_active(self, saga_id: str, active: bool, actor: Actor) -> StoredSaga | None: ...

    def delete(self, saga_id: str, actor: Actor, keep_revisions: list[int]) -> bool:
        """Remove the saga and its versions but those executions pinned."""
        ...

    def totals(self) -> Totals: ...

    def audit_entries(self, entity_type: str, entity_id: str) -> list[dict[str, Any]]: ...


class RunKind(StrEnum):
    """Why a run of an execution starts."""

    FORWARD = "forward"  # the execution's own run, from its first step
    COMPENSATION = "compensate"  # undo what a completed (or half-undone) execution did
    RESUME = "resume"  # a retry forward of a PARKED execution, from its parked step's group


@dataclass(frozen=True)
class RunRef:
    """An engine's handle on one run of an execution; its parts mean something to the engine
    only. The execution store keeps them (the executions table's state_machine_arn and
    sfn_execution_arn columns): `where` is known before the run starts (Engine.plan), `run`
    once the start is recorded. A ref without `run` names the execution's forward run."""

    execution_id: str
    where: str
    run: str | None = None

    @classmethod
    def kept_for(cls, execution: Execution) -> RunRef | None:
        """The ref the store kept for the execution; None if no run was ever planned."""
        if not (execution.state_machine_arn or execution.sfn_execution_arn):
            return None
        return cls(execution.id, execution.state_machine_arn or "", execution.sfn_execution_arn)


@dataclass(frozen=True)
class RunState:
    """What the engine says of one of its runs."""

    status: RunStatus
    error: str | None = None
    cause: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", RunStatus(self.status))


class EngineBusy(Exception):
    """The engine refused a call for its rate (AWS's throttling, after the client's own
    retries): nothing took effect, the same call may be made again later."""


class WaitGone(Exception):
    """The waiting step a completion names no longer waits (it ended, timed out, or the token
    is not the engine's): the completion came too late and changes nothing."""


class Engine(Protocol):
    """What runs a saga's executions (Step Functions on AWS), in the saga's words.

    A saga version is prepared once, when it is stored (and again at deploy); starting and
    describing runs then needs nothing but refs derived from names, so request paths make one
    call each (StartExecution) and never a control-plane call.

    Child runs: a step that runs another saga starts the child's execution with `start(child,
    child_execution_id, RunKind.FORWARD, parent=the parent's ref)`, and the child's run
    carries the parent's ref. The parent's step waits on a token meanwhile; the child's end
    answers it with complete_step or fail_step (that recording of the end is the feature's,
    not the engine's)."""

    # False for an engine that keeps no record of its runs (nothing for `describe` to
    # answer): the reconciler does not ask it, and such an engine must itself report every
    # end of a run to the write model.
    keeps_history: bool

    def prepare(self, saga: StoredSaga) -> None:
        """Make (or bring up to date) what runs the version's executions: its forward and
        compensation machines on Step Functions. Idempotent."""
        ...

    def discard(self, saga_id: str, revisions: list[int]) -> None:
        """Remove what was prepared for those versions; missing ones are no error."""
        ...

    def plan(self, saga: StoredSaga, execution_id: str) -> RunRef:
        """The ref of the execution's forward run before it starts, derived without a call:
        stored first, so a start whose record was lost is still found by `describe`."""
        ...

    def start(self, saga: StoredSaga, execution_id: str, kind: RunKind, *,
              at_step: str | None = None, parent: RunRef | None = None) -> RunRef:
        """Start a run of the execution and return its ref. FORWARD is idempotent (starting
        it twice is one run); COMPENSATION and RESUME start a new run each time. RESUME
        enters the saga again at `at_step`'s group. `parent`: the run of another saga's
        execution this one is a child of. A version found unprepared is prepared once and
        the start tried once more."""
        ...

    def describe(self, run: RunRef) -> RunState:
        """The run's state; MISSING if it never started. Only asked of an engine that
        keeps_history."""
        ...

    def complete_step(self, token: str, output: dict[str, Any]) -> None:
        """A step that waits for a participant's answer (a callback) succeeded with `output`.
        Raises WaitGone if it no longer waits."""
        ...

    def fail_step(self, token: str, error: str, cause: str) -> None:
        """The waiting step failed with that error name (one the machines catch, see
        lifecycle) and cause. Raises WaitGone if it no longer waits."""
        ...

    def heartbeat(self, token: str) -> None:
        """The participant is still at work on the waiting step: its heartbeat timeout starts
        again. Raises WaitGone if it no longer waits."""
        ...


@dataclass(frozen=True)
class ExecutionPage:
    items: list[Execution]
    next_cursor: str | None


@dataclass(frozen=True)
class ExecutionQuery:
    """Which executions a listing returns: newest first, at most `limit` after `cursor`.
    The read model compares the time bounds at millisecond precision (BSON dates), the write
    model at microseconds."""

    limit: int
    saga_id: str | None = None
    status: str | None = None
    started_after: datetime | None = None  # started at or after (UTC-aware)
    started_before: datetime | None = None  # started strictly before
    cursor: str | None = None
    # The triage queue (lifecycle.needs_attention): only those in it (True), or not (False).
    needs_attention: bool | None = None
    # Resolved by an operator (True), or not (False).
    resolved: bool | None = None
    # An execution's id or a saga's id: the execution with that id, and the executions of
    # the saga with that id (what an operator types in a search box).
    q: str | None = None


class ExecutionStore(Protocol):
    """The write model of executions. Each change writes its event in the same transaction."""

    def create(self, execution: Execution,
               steps: Sequence[StepShape]) -> tuple[Execution, bool]:
        """Insert with its steps and a started event, in one transaction, and return it as
        stored (as `get` would read it); (existing, False) if the id is taken."""
        ...

    def resume(self, execution_id: str, steps: Sequence[str], by: str) -> Execution | None:
        """An operator's retry forward of a PARKED execution: RUNNING again with no error, the
        given steps back to PENDING for a new round of attempts, and a resumed event; None if
        it is not PARKED (any more) or is resolved."""
        ...

    def get(self, execution_id: str) -> Execution | None: ...

    def list(self, query: ExecutionQuery) -> ExecutionPage: ...

    def latest(self, saga_id: str, status: ExecutionStatus | None = None) -> Execution | None: ...

    def mark_started(self, execution_id: str, run: RunRef) -> Execution | None:
        """Record that the execution's run started (the store keeps the ref's parts, and a
        run started event), in one transaction, and return the execution as it now is, its
        steps included; None if there is no such execution."""
        ...

    def transition(self, execution_id: str, allowed_from: AbstractSet[ExecutionStatus],
                   to: ExecutionStatus, event_type: str, data: dict[str, Any],
                   error: dict[str, Any] | None = None, *,
                   by_operator: bool = False) -> Execution | None:
        """Move to `to` if the status is one of allowed_from and the domain's transition
        table allows it (an operator's action may move a final execution, never a resolved
        one); None if not."""
        ...

    def resolve(self, execution_id: str, by: str, reason: str) -> Execution | None:
        """Record an operator's decision with a saga.resolved event, checked and taken under
        the execution's lock; None if it is not resolvable (lifecycle.can_resolve): not a
        failed end, or resolved already (the first decision stands)."""
        ...

    def count_active(self, saga_id: str) -> int: ...

    def pinned_revisions(self, saga_id: str) -> list[int]: ...

    def unsettled(self, grace_seconds: float, limit: int) -> list[Execution]:
        """Active executions (RUNNING, COMPENSATING) whose expected moment passed more than
        `grace_seconds` ago, the longest overdue first: the reconciler's work list. Each is
        expected to move by a moment (chalicelib.domain.expected_by: as it starts, as an
        attempt is admitted, as a step starts waiting); one kept without it is due by its
        last change. A waiting execution is not listed until its wait should have ended."""
        ...


@dataclass(frozen=True)
class HistoryQuery:
    """One execution's events in sequence: at most `limit` after `cursor` (a store's own)."""

    execution_id: str
    limit: int
    cursor: str | None = None


@dataclass(frozen=True)
class HistoryPage:
    items: list[HistoryEntry]
    next_cursor: str | None


class ReadModelUnavailable(Exception):
    """The read model cannot be reached; reads fall back to the write model."""


class ReadModelDown(SagaError):
    """A read only the read model can answer (an execution's history, the open callbacks:
    the write model keeps neither) while it cannot be reached: 503, try again."""

    kind = ErrorKind.DATABASE_UNAVAILABLE


class ExecutionReadModel(Protocol):
    """Executions as projected from the events (eventually consistent with the write model).
    Every method raises ReadModelUnavailable when the store cannot be reached."""

    def get(self, execution_id: str) -> Execution | None: ...

    def list(self, query: ExecutionQuery) -> ExecutionPage: ...

    def latest(self, saga_id: str) -> Execution | None: ...

    def summary(self, saga_id: str) -> dict[str, Any]: ...

    def totals(self) -> dict[str, Any]: ...

    def history(self, query: HistoryQuery) -> HistoryPage:
        """The execution's events in sequence order (none for one never projected); raises
        ValueError for a cursor it did not give out."""
        ...


@dataclass(frozen=True)
class CallbackQuery:
    """Which open callbacks a listing returns (chalicelib.domain.open_callbacks): those open
    at `now` (UTC-aware), oldest first, at most `limit` after `cursor`; only approvals (True),
    only the others (False) or both (None); of one saga or any."""

    limit: int
    now: datetime
    approval: bool | None = None
    saga_id: str | None = None
    cursor: str | None = None


@dataclass(frozen=True)
class CallbackPage:
    """Open callbacks as the read model holds them (their steps' names are the definitions'),
    and the cursor after the last one if more follow."""

    items: list[OpenCallback]
    next_cursor: str | None


class OpenCallbackReads(Protocol):
    """The read model's open callbacks. Every method raises ReadModelUnavailable when the
    store cannot be reached, and ValueError for a cursor it did not hand out."""

    def open_callbacks(self, query: CallbackQuery) -> CallbackPage: ...

    def count_open_callbacks(self, query: CallbackQuery) -> int:
        """How many match the query's filters and `now`, whatever its limit and cursor."""
        ...


class ReadModelProjector(Protocol):
    """Keeps the read model: applies events (envelopes as the outbox holds them), idempotent by
    each execution's sequence, so redelivered and replayed events change nothing. Events of
    one execution come in order; those of different executions may interleave."""

    def apply(self, event: Mapping[str, Any]) -> bool:
        """One event; False when it changed nothing (seen already, or not for the read
        model)."""
        ...

    def apply_batch(self, events: Iterable[Mapping[str, Any]]) -> int:
        """A batch at once, all or nothing; how many of its events changed the read model."""
        ...


@dataclass(frozen=True)
class CleanupReport:
    idempotency_records: int
    published_events: int
    orphan_versions: list[tuple[str, int]] = field(default_factory=list)


class CleanupStore(Protocol):
    """Removes, in one transaction, what nothing needs any more: spent idempotency records,
    published events past their retention, unpinned definition versions (reported, so their
    machines go too)."""

    def run(self, actor: Actor) -> CleanupReport: ...
