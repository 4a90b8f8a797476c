"""The step ledger: the storage the step runtime needs, and nothing else.

One `transaction()` is one atomic change: the row locks it takes (execution, then step run)
are held until it ends, and everything written in it (a built-in action's effect through its
`cursor`, the step's status, the attempt, the events) commits together or not at all.
chalicelib.adapters.mysql.step_ledger is the MySQL ledger; chalicelib.testing has one in memory.
Times are UTC.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, Protocol

from chalicelib.domain.callbacks import Callback, CallbackState
from chalicelib.domain.executions import Execution, StepShape
from chalicelib.domain.lifecycle import ExecutionStatus, Outcome, Phase, StepStatus
from chalicelib.domain.step_context import Cursor
from chalicelib.domain.step_runs import EventBatch, LockedExecution, LockedStep


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
                       error_type: str | None = None, error_message: str | None = None,
                       sent: dict[str, Any] | None = None) -> None:
        """sent: the step's input as the attempt was sent it (bounded: Attempt.input)."""
        ...

    def claim_attempt(self, execution_id: str, step_id: str, *, phase: Phase,
                      deadline: datetime, expect_by: datetime | None = None) -> int:
        """Counts a participant's attempt as it is admitted, before its call (so the next
        attempt's number is higher whatever becomes of this one), and for an action keeps
        the latest deadline given; returns the attempt's number. expect_by: the moment the
        execution must next move by (the attempt's Task timeout), folded in as `expect_by`
        does, with the same write where the execution is locked."""
        ...

    def record_outcome(self, execution_id: str, step_id: str, *, status: StepStatus,
                       phase: Phase, at: datetime, started: datetime,
                       result: dict[str, Any] | None = None,
                       error: dict[str, Any] | None = None,
                       claimed: bool = False,
                       answered_by: datetime | None = None) -> dict[str, Any]:
        """The step's new status after one more attempt of `phase` (claimed: the attempt was
        counted when it was admitted); returns the step's recorded state as events carry it
        (status, attempts, error, times). answered_by: the deadline of an action's attempt
        that answered in time; no attempt is in flight up to it any more, so the kept
        action deadline is released unless a later attempt's is kept."""
        ...

    def record_skipped(self, execution_id: str, step_id: str, *, at: datetime,
                       condition: dict[str, Any]) -> dict[str, Any]:
        """The step's `when` was false: SKIPPED at `at` (no attempt counted), with the
        condition as evaluated ({"when", "value", "operands"}); returns its record."""
        ...

    # -- fan-outs

    def start_items(self, execution_id: str, step_id: str, *, count: int,
                    plan: dict[str, Any], at: datetime) -> dict[str, Any]:
        """A fan-out starts: its `count` item runs ("<step id>[<index>]", PENDING) are added
        (a repeated start adds none) and its own run is RUNNING with its plan
        (fanout.FanOutPlan's record); returns the step's record."""
        ...

    def items_of(self, execution_id: str, step_id: str) -> list[LockedStep]:
        """A fan-out's item runs, in item order (read in the transaction, not locked)."""
        ...

    def set_execution_status(self, execution_id: str, status: ExecutionStatus, *,
                             at: datetime, error: dict[str, Any] | None = None,
                             by_operator: bool = False) -> bool:
        """Move there if the lifecycle's transition table allows it from the current status;
        False (nothing written) if not. by_operator: a move only an operator's action makes
        (a parent compensating its completed child acts as the child's operator)."""
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

    # -- child steps

    def add_execution(self, execution: Execution, shapes: Sequence[StepShape]) -> bool:
        """A child execution, its PENDING steps and its first event (execution started), as
        the execution store's create writes them; False (nothing written) if its id exists."""
        ...

    def start_child(self, execution_id: str, step_id: str, *, child_id: str,
                    at: datetime) -> dict[str, Any]:
        """A child step starts (or starts again): RUNNING, one more action attempt counted,
        its child named; returns the step's record."""
        ...

    # -- steps that wait

    def record_waiting(self, execution_id: str, step_id: str, *, waiting: dict[str, Any],
                       result: dict[str, Any] | None = None) -> dict[str, Any]:
        """The step waits (status WAITING) for what `waiting` says (a Waiting's fields);
        result: a callback call's own answer, kept for its compensation. Returns the step's
        record as events carry it."""
        ...

    def update_waiting(self, execution_id: str, step_id: str,
                       **changes: Any) -> dict[str, Any]:
        """Changes fields of the step's wait (heartbeat_at, completed_by, completed_at) and
        returns its record."""
        ...

    def register_callback(self, callback: Callback) -> None:
        """Keeps a new callback; any still-open callback of the same step is superseded."""
        ...

    def lock_callback(self, callback_id: str) -> Callback | None: ...

    def close_callback(self, callback_id: str, state: CallbackState, *, at: datetime,
                       by: str | None) -> None: ...

    def expect_by(self, execution_id: str, at: datetime) -> None:
        """The execution must next move by `at` (chalicelib.domain.expected_by: an admitted
        attempt's deadline plus the margin, or a step that starts waiting: its wait's end
        plus the margin); the reconciler leaves it alone until then. Folded into the moment
        kept by expected_by.moved: a later one stays as far as an attempt may still run past
        `at` (a parallel group's), a wait's further out gives way. Nothing for an execution
        that is not active (a final one expects nothing)."""
        ...


class StepLedger(Protocol):
    def transaction(self) -> AbstractContextManager[LedgerTransaction]: ...

    def peek(self, execution_id: str) -> Execution | None:
        """The execution without its steps, read with no lock (fault injection's delay)."""
        ...
