"""The interfaces the service needs from the outside world; adapters/ implements them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from chalicelib.saga.executions import Execution, ExecutionStatus, StepShape
from chalicelib.saga.lifecycle import RunStatus
from chalicelib.saga.models import SagaDefinition, StoredSaga


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
                       actor: Actor, action: str) -> StoredSaga:
        """Store a new immutable version. expected_revision None means the saga must not
        exist; otherwise the latest revision must still be that one (optimistic lock)."""
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


@dataclass(frozen=True)
class Machines:
    forward_arn: str
    compensation_arn: str


@dataclass(frozen=True)
class RunState:
    """What Step Functions says of one of its executions."""

    status: RunStatus
    error: str | None = None
    cause: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", RunStatus(self.status))


class Orchestrator(Protocol):
    """Step Functions, seen from the service."""

    def ensure_machines(self, saga: StoredSaga) -> Machines: ...

    def machines_for(self, saga: StoredSaga) -> Machines:
        """The ARNs only (derived, no call): what execute and compensate use."""
        ...

    def delete_machines(self, saga_id: str, revisions: list[int]) -> None: ...

    def start(self, machine_arn: str, name: str, execution_input: dict[str, Any],
              saga: StoredSaga | None = None) -> str:
        """Start (idempotently: the same name twice starts one) and return the run's ARN; a
        missing machine of `saga` is made once and the start tried once more."""
        ...

    def describe(self, run_arn: str) -> RunState: ...

    def run_arn(self, machine_arn: str, name: str) -> str: ...


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


class ExecutionStore(Protocol):
    """The write model of executions. Each change writes its event in the same transaction."""

    def create(self, execution: Execution,
               steps: Sequence[StepShape]) -> tuple[Execution, bool]:
        """Insert with its steps and a started event; (existing, False) if the id is taken."""
        ...

    def resume(self, execution_id: str, steps: Sequence[str], by: str) -> Execution | None:
        """An operator's retry forward of a PARKED execution: RUNNING again with no error, the
        given steps back to PENDING for a new round of attempts, and a resumed event; None if
        it is not PARKED (any more) or is resolved."""
        ...

    def get(self, execution_id: str) -> Execution | None: ...

    def list(self, query: ExecutionQuery) -> ExecutionPage: ...

    def latest(self, saga_id: str, status: ExecutionStatus | None = None) -> Execution | None: ...

    def mark_started(self, execution_id: str, machine_arn: str, run_arn: str) -> None: ...

    def transition(self, execution_id: str, allowed_from: set[ExecutionStatus],
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

    def unsettled(self, older_than_seconds: float, limit: int) -> list[Execution]:
        """RUNNING or COMPENSATING for longer than that: the reconciler's work list."""
        ...


class ReadModelUnavailable(Exception):
    """The read model cannot be reached; reads fall back to the write model."""


class ExecutionReadModel(Protocol):
    """Executions as projected from the events (eventually consistent with the write model).
    Every method raises ReadModelUnavailable when the store cannot be reached."""

    def get(self, execution_id: str) -> Execution | None: ...

    def list(self, query: ExecutionQuery) -> ExecutionPage: ...

    def latest(self, saga_id: str) -> Execution | None: ...

    def summary(self, saga_id: str) -> dict[str, Any]: ...

    def totals(self) -> dict[str, Any]: ...
