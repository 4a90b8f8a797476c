"""What an action or compensation gets to work with. Data plus the open transaction."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol


class Cursor(Protocol):
    """A PyMySQL DictCursor inside the step's one transaction."""

    rowcount: int
    lastrowid: int

    def execute(self, query: str, args: Any = None) -> int: ...

    def fetchone(self) -> dict[str, Any] | None: ...

    def fetchall(self) -> list[dict[str, Any]]: ...


@dataclass(frozen=True)
class StepContext:
    """One attempt of one phase ("action" or "compensation") of one step of one execution.

    cursor: the transaction the runtime commits together with the step's status, its attempt
    record and its events, so an action's effect and its record are one atomic change.
    saga_input: the step's input: its input mapping resolved against the execution, or, for a
    step without one, the execution's whole input (the body's "input" at execute time).
    config: the step definition's "config" object.
    The rest is the participant contract's (chalicelib/domain/contract.py): the saga version,
    the Task's deadline, and for a compensation what the action returned or why it failed,
    and why the saga is compensating.
    """

    execution_id: str
    saga_id: str
    step_id: str
    phase: str
    attempt: int
    saga_input: Mapping[str, Any]
    config: Mapping[str, Any]
    cursor: Cursor
    # Results of earlier steps of this execution, by step id (e.g. an order id to ship).
    results: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # Built-in actions' last resort for a missing input (config saga.demo_input_defaults:
    # set for the local stages so the documented examples run as written; empty in prod).
    defaults: Mapping[str, Any] = field(default_factory=dict)
    saga_version: str = ""
    deadline: datetime | None = None
    action_result: Mapping[str, Any] | None = None
    action_error: Mapping[str, Any] | None = None
    reason: Mapping[str, Any] | None = None
    # A callback step's action: the callback's id, links and deadline (contract.CallbackInfo).
    callback: Mapping[str, Any] | None = None
    # A fan-out's item: {"step_id": its step, "index": n, "value": the list's element}.
    item: Mapping[str, Any] | None = None

    @property
    def idempotency_key(self) -> str:
        """The same on every attempt and redelivery of this phase of this step."""
        return f"{self.execution_id}:{self.step_id}:{self.phase}"


ActionFn = Callable[[StepContext], dict[str, Any]]


class _TypedError(Exception):
    """An error that may carry the type a participant gave it (its contract's
    {"error": {"type", "message", "details"}}): the step's error is recorded under that type,
    whatever name the machines know the error by."""

    def __init__(self, message: str = "", *, error_type: str | None = None,
                 details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.details = details


class PermanentError(_TypedError):
    """Retrying cannot help (declined card, unknown SKU): the saga compensates at once.

    Step Functions sees the error name "PermanentError" (see the compiler's Retry)."""


class RetryableError(_TypedError):
    """A passing fault (lock timeout, participant busy): Step Functions retries the step."""


class OutcomeUnknown(Exception):
    """The participant may have done its work, and whether it did cannot be told: its call was
    cut at the deadline, it answered after it, or its answer cannot be recorded (not a JSON
    object, NaN, too deep, a key MongoDB refuses, too large, a redirect). Never "nothing
    happened": the step is compensated (lifecycle.OUTCOME_UNKNOWN).

    result: the participant's answer when it had one that can be kept (a late success), so
    its compensation is sent what it did."""

    def __init__(self, message: str, result: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.result = result
