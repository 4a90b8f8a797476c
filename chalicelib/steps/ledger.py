"""The step ledger: the storage the step runtime needs, and nothing else.

One `transaction()` is one atomic change: the row locks it takes (execution, then step run)
are held until it ends, and everything written in it (a built-in action's effect through its
`cursor`, the step's status, the attempt, the events) commits together or not at all.
chalicelib.adapters.mysql_step_ledger is the MySQL ledger; chalicelib.testing has one in memory.
Times are UTC.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from chalicelib.saga.events import Event
from chalicelib.saga.executions import Execution
from chalicelib.saga.lifecycle import ExecutionStatus, Outcome, Phase, StepStatus
from chalicelib.steps.context import Cursor

# (event, time): the events of one execution (built by chalicelib.saga.events), appended in
# this order.
EventBatch = list[tuple[Event, datetime]]


@dataclass(frozen=True)
class LockedExecution:
    """An execution as read under its row lock: what the runtime decides on."""

    id: str
    saga_id: str
    revision: int
    status: ExecutionStatus
    # Why it will not complete, if a step or the machine recorded it already.
    error: dict[str, Any] | None = None


@dataclass(frozen=True)
class LockedStep:
    """A step run as read under its row lock."""

    step_id: str
    status: StepStatus
    action_attempts: int = 0
    compensation_attempts: int = 0
    # What its action returned (kept while it is undone), and its last recorded error.
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    # Action attempts recorded before the current round (an operator's retry forward).
    retry_base: int = 0
    # The latest deadline an admitted action attempt was given (the late-action rule: its
    # compensation waits for it plus the margin). UTC, aware.
    action_deadline: datetime | None = None

    def attempts(self, phase: Phase) -> int:
        """Attempts of that phase recorded so far."""
        return self.action_attempts if phase is Phase.ACTION else self.compensation_attempts

    def in_round(self, phase: Phase, attempt: int) -> int:
        """An attempt's number counted from the start of its round."""
        return attempt - self.retry_base if phase is Phase.ACTION else attempt


class LedgerTransaction(Protocol):
    """One open transaction of the ledger."""

    @property
    def cursor(self) -> Cursor:
        """Where a built-in action writes its effect, so it commits with the record."""
        ...

    def lock_execution(self, execution_id: str) -> LockedExecution | None: ...

    def lock_step(self, execution_id: str, step_id: str) -> LockedStep | None: ...

    def load_execution(self, execution_id: str) -> Execution:
        """The execution locked in this transaction, with its input and faults (no steps)."""
        ...

    def results(self, execution_id: str) -> dict[str, dict[str, Any]]:
        """Results of the execution's succeeded steps, by step id, in step order."""
        ...

    def next_step(self, execution_id: str, step_id: str) -> str | None:
        """The step after `step_id` in the execution's order, if any."""
        ...

    def steps_in(self, execution_id: str, status: StepStatus) -> list[str]:
        """The execution's steps now in `status`, in step order."""
        ...

    def record_attempt(self, execution_id: str, step_id: str, *, phase: Phase, attempt: int,
                       outcome: Outcome, started: datetime, ended: datetime,
                       error_type: str | None = None,
                       error_message: str | None = None) -> None: ...

    def claim_attempt(self, execution_id: str, step_id: str, *, phase: Phase,
                      deadline: datetime) -> int:
        """Counts a participant's attempt as it is admitted, before its call (so the next
        attempt's number is higher whatever becomes of this one), and for an action keeps
        the latest deadline given; returns the attempt's number."""
        ...

    def record_outcome(self, execution_id: str, step_id: str, *, status: StepStatus,
                       phase: Phase, at: datetime, started: datetime,
                       result: dict[str, Any] | None = None,
                       error: dict[str, Any] | None = None,
                       claimed: bool = False) -> dict[str, Any]:
        """The step's new status after one more attempt of `phase` (claimed: the attempt was
        counted when it was admitted); returns the step's recorded state as events carry it
        (status, attempts, error, times)."""
        ...

    def set_execution_status(self, execution_id: str, status: ExecutionStatus, *,
                             at: datetime, error: dict[str, Any] | None = None) -> bool:
        """Move there if the lifecycle's transition table allows it from the current status;
        False (nothing written) if not."""
        ...

    def set_execution_error(self, execution_id: str, error: dict[str, Any]) -> None: ...

    def set_execution_output(self, execution_id: str, output: dict[str, Any] | None,
                             error: dict[str, Any] | None = None) -> None:
        """What the execution produced, recorded as it completes; or why its output mapping
        could not be resolved (an OutputError's fields)."""
        ...

    def append_events(self, execution_id: str, batch: EventBatch) -> None:
        """The execution's next events, numbered on from its last (its row is locked)."""
        ...


class StepLedger(Protocol):
    def transaction(self) -> AbstractContextManager[LedgerTransaction]: ...

    def peek(self, execution_id: str) -> Execution | None:
        """The execution without its steps, read with no lock (fault injection's delay)."""
        ...
