"""A step run and its execution as the step runtime reads them under their row locks, and the
events it appends: the plain data the step ledger (chalicelib.usecases.steps.ledger) hands
over, and the step decisions judge. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from chalicelib.domain.events import Event
from chalicelib.domain.executions import Waiting
from chalicelib.domain.lifecycle import ExecutionStatus, Phase, StepStatus

# (event, time): the events of one execution (built by chalicelib.domain.events), appended in
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
    # A waiting kind's wait (what it waits for, until when), as recorded.
    waiting: Waiting | None = None
    # A child step's child execution, once made.
    child: str | None = None

    def attempts(self, phase: Phase) -> int:
        """Attempts of that phase recorded so far."""
        return self.action_attempts if phase is Phase.ACTION else self.compensation_attempts

    def in_round(self, phase: Phase, attempt: int) -> int:
        """An attempt's number counted from the start of its round."""
        return attempt - self.retry_base if phase is Phase.ACTION else attempt
