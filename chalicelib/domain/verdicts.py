"""What admitting a delivery decided, and what an attempt came to: typed, so the step Lambda's
handler alone turns them into its response.

A delivery is admitted (it runs), already done (a repeated delivery of a step that succeeded),
skipped (nothing to undo) or refused (it must not run: the error the Lambda raises).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chalicelib.domain.executions import Execution
from chalicelib.domain.lifecycle import StepStatus
from chalicelib.domain.step_runs import LockedStep


@dataclass(frozen=True)
class Admitted:
    """A delivery that runs: attempts of its phase so far, its execution, its step run."""

    attempts_so_far: int
    execution: Execution
    run: LockedStep
    # A participant's attempt, numbered as it was admitted (claimed); None for a built-in.
    attempt: int | None = None

    @property
    def number(self) -> int:
        """This attempt's number within its phase."""
        return self.attempt or self.attempts_so_far + 1


@dataclass(frozen=True)
class AlreadyDone:
    """A repeated delivery of a step that succeeded: nothing runs, its status is told."""

    status: StepStatus


@dataclass(frozen=True)
class Skipped:
    """Nothing to undo: nothing runs or is recorded, but the chain's last undo still ends the
    compensation (finishes_compensation)."""

    status: StepStatus
    finishes_compensation: bool = False


@dataclass(frozen=True)
class Refused:
    """The delivery must not run: `error` is what the attempt raises (StepAborted, or a
    fault injected on this attempt)."""

    error: Exception


Admission = Admitted | AlreadyDone | Skipped | Refused


@dataclass(frozen=True)
class Done:
    """The attempt ran and its outcome was recorded: the action's or compensation's result."""

    result: dict[str, Any]


# What one delivery of a step came to (a failure is raised, never returned).
AttemptOutcome = Done | AlreadyDone | Skipped
