"""Executions as the service records and reports them. Data only."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_serializer,
    model_validator,
)

from chalicelib.domain.lifecycle import (  # noqa: F401  (re-exported: the domain's names)
    ExecutionStatus,
    Phase,
    StepKind,
    StepStatus,
    allowed_from,
    can_transition,
)
from chalicelib.domain.redaction import without_paths
from chalicelib.durations import parse_duration_ms


def failure_cause(steps: list[StepRun]) -> dict[str, Any] | None:
    """The action failure that made an execution give up, as its steps recorded it."""
    for step in sorted(steps, key=lambda s: s.position):
        if step.status is StepStatus.FAILED and step.error:
            return execution_error(step.step_id, Phase.ACTION, step.error.get("type"),
                                   step.error.get("message"))
    return None


class Fault(BaseModel):
    """A failure to inject into one step (only where config enables fault injection)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    step_id: str = Field(min_length=1, max_length=100)
    phase: str = Field(default=Phase.ACTION.value, pattern=f"^({'|'.join(Phase)})$")
    error: str = Field(default="InjectedFault", pattern=r"^[A-Za-z][A-Za-z0-9_.]{0,99}$")
    # Fail this many attempts, then let the step run (0 with a delay: delay only).
    times: int = Field(default=1, ge=0, le=100)
    # Sleep this long before working: longer than the step's timeout makes it time out.
    delay: str | None = None
    # Raise the error as permanent (no retries).
    permanent: bool = False

    @field_validator("delay")
    @classmethod
    def _a_duration(cls, delay: str | None) -> str | None:
        if delay is not None:
            parse_duration_ms(delay)  # ValueError says what a duration looks like
        return delay


class ExecutionError(BaseModel):
    """Why an execution did not complete: which step, in which phase, failed how."""

    model_config = ConfigDict(extra="ignore")

    step_id: str | None = None
    phase: str | None = None
    type: str
    message: str
    # A failed compensation: every step whose compensation failed for good (parallel undos
    # of a group may fail side by side).
    failed_steps: list[str] | None = None
    # Who gave this reason: a caller who completed a waiting callback as failed (a person
    # rejecting an approval, a partner), as the step's waiting.completed_by says. Their
    # words are theirs, kept as written (see execution_error); None for every other error.
    by: str | None = None

    @model_serializer(mode="wrap")
    def _without_empty_lists(self, handler: Any) -> Any:
        # Only a failed compensation lists its steps, only a caller's failure says who gave
        # it; other errors keep their four fields.
        data = handler(self)
        if isinstance(data, dict):
            for optional in ("failed_steps", "by"):
                if data.get(optional) is None:
                    data.pop(optional, None)
        return data

    @model_validator(mode="before")
    @classmethod
    def _older_shapes(cls, value: Any) -> Any:
        # Rows written before errors had this shape (a machine's raw {"Error", "Cause"}, or
        # an unsanitized message) are served in it, cleaned. A caller's reason (`by` set)
        # is no machine's output: it is served as it was given.
        if isinstance(value, dict) and value.get("by") and isinstance(value.get("type"), str):
            return value
        if isinstance(value, dict):
            kind = value.get("type") or value.get("Error")
            message = value.get("message", value.get("Cause"))
            return {**value, **clean_error(kind, message)}
        return value


MAX_ERROR_MESSAGE = 500


def clean_error(error_type: str | None, message: str | None) -> dict[str, str]:
    """An error as stored and served: its type and the first line of its message, with no
    traceback, no file paths and no URL's secrets (the full text belongs in the logs only)."""
    text = str(message or "")
    if text.lstrip().startswith("{"):  # Step Functions' Cause for a Lambda error is JSON
        try:
            cause = json.loads(text)
            if isinstance(cause, dict):
                error_type = error_type or cause.get("errorType")
                text = str(cause.get("errorMessage") or "")
        except ValueError:
            pass
    lines = [line.strip() for line in text.splitlines()
             if line.strip() and not line.strip().startswith(("Traceback", 'File "'))]
    first = without_paths(lines[0] if lines else "")[:MAX_ERROR_MESSAGE]
    kind = without_paths(str(error_type or "Error"))[:100]
    return {"type": kind, "message": first}


# A caller's reason is kept whole up to this (the /fail body's own limit).
MAX_CALLER_REASON = 1000


def execution_error(step_id: str | None, phase: str | None, error_type: str | None,
                    message: str | None, *, by: str | None = None) -> dict[str, Any]:
    """Why an execution did not complete, as stored and served. A machine's or a
    participant's error is cleaned (clean_error); a reason a caller gave when completing a
    callback as failed (`by`: who) is kept as written, every line of it: a person's comment
    such as "no: 50/50 split, see https://wiki/x?id=4" is not a traceback to scrub."""
    # A Phase is stored as its plain value (str() of a StrEnum member).
    where = {"step_id": step_id, "phase": None if phase is None else str(phase)}
    if by is not None:
        return {**where, "type": str(error_type or "Error")[:100],
                "message": str(message or "")[:MAX_CALLER_REASON], "by": by}
    return {**where, **clean_error(error_type, message)}


class OutputError(BaseModel):
    """Why a COMPLETED execution has no output: the first reference of its saga's output
    mapping whose value was absent when it completed."""

    model_config = ConfigDict(extra="ignore")

    field: str  # where in the output mapping ("car", "trip.ids[0]")
    reference: str  # what it names ("$.results.car.booking_id")
    message: str


class Attempt(BaseModel):
    phase: str
    attempt: int
    outcome: str
    error_type: str | None = None
    error_message: str | None = None
    started_at: datetime
    ended_at: datetime
    duration_ms: int
    # The step's input as its mapping resolved for this attempt (what the participant was
    # sent), kept when within storable.kept_input's bounds; None before it was resolved, for
    # one over them, and for attempts recorded before inputs were kept.
    input: dict[str, Any] | None = None


class StepShape(BaseModel):
    """A step's place in its saga as an execution records it: the parallel group it runs in
    (the order its group shares) and its kind."""

    model_config = ConfigDict(frozen=True)

    step_id: str
    group: int
    kind: StepKind

    @classmethod
    def of(cls, step: Any) -> StepShape:
        """From a runnable step (chalicelib.domain.models.Step)."""
        return cls(step_id=step.id, group=step.group, kind=step.kind)


class Waiting(BaseModel):
    """What a waiting step waits for: a callback (completed through the API) or a timer.
    Kept after the wait ends, with who or what ended it."""

    kind: str  # lifecycle.WaitKind
    since: datetime
    # A callback's deadline (its step's timeout from the attempt's start), or the timer's
    # moment.
    until: datetime
    # The callback to complete (never its secret, never the engine's task token).
    callback_id: str | None = None
    heartbeat_at: datetime | None = None
    # "callback:<how>" (a partner's secret or a caller's subject), "timer", or None while
    # waiting.
    completed_by: str | None = None
    completed_at: datetime | None = None
    # An approval (a callback step with no action): a person completes it through the API.
    approval: bool = False
    # The step's input as its mapping resolved when it began to wait (the execution's input
    # when it has none): what an approval's person decides on, what a partner's call was sent
    # (its attempt, recorded when the callback is completed, keeps it); None for a timer, and
    # for an input too large to keep here (see chalicelib.domain.callbacks.wait_input).
    input: dict[str, Any] | None = None

    def record(self) -> dict[str, Any]:
        """The wait as step records and events carry it: times ISO 8601 in UTC (a time
        without a zone is UTC), as the record's other times."""
        def iso(at: datetime) -> str:
            return (at.astimezone(UTC) if at.tzinfo else at.replace(tzinfo=UTC)).isoformat()

        return {name: iso(value) if isinstance(value, datetime) else value
                for name, value in self}


class StepRun(BaseModel):
    step_id: str
    position: int
    # None for executions recorded before steps had a shape.
    group: int | None = None
    kind: StepKind | None = None
    status: StepStatus
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    action_attempts: int = 0
    compensation_attempts: int = 0
    started_at: datetime | None = None
    ended_at: datetime | None = None
    compensated_at: datetime | None = None
    attempts: list[Attempt] = Field(default_factory=list)
    # A callback or timer step's wait (None for the other kinds, and before it starts).
    waiting: Waiting | None = None
    # A conditional step's `when` as evaluated: {"when", "value", "operands"}.
    condition: dict[str, Any] | None = None
    # A fan-out step's items as they started ({"items", "max_concurrency", "tolerated"}).
    fanout: dict[str, Any] | None = None
    # An item of a fan-out (its run is "<step id>[<index>]"): {"of": step id, "index": n}.
    item: dict[str, Any] | None = None
    # A child step's child execution (chalicelib.domain.children), once it is made.
    child: str | None = None
    # Action attempts before the current round (a retry forward starts one): bookkeeping of
    # the write model, not shown.
    retry_base: int = Field(default=0, exclude=True)
    # The latest deadline an action attempt was given (the late-action rule): bookkeeping.
    action_deadline: datetime | None = Field(default=None, exclude=True)

    @model_validator(mode="after")
    def _attempts_in_time_order(self) -> StepRun:
        # A timeline in the order things happened, whichever was recorded first (a late
        # attempt's record may come after the compensation that followed it); stable, so
        # attempts that started together keep the order they were recorded in.
        self.attempts.sort(key=lambda attempt: attempt.started_at)
        return self


def awaits_approval(step: StepRun) -> bool:
    """An approval step still waiting for a person (the queue's other half besides the ends:
    lifecycle.needs_attention)."""
    wait = step.waiting
    return (step.status is StepStatus.WAITING and wait is not None and wait.approval
            and wait.completed_at is None)


class ParentRef(BaseModel):
    """The execution and child step that started a child execution."""

    execution_id: str
    step_id: str


class Execution(BaseModel):
    id: str
    saga_id: str
    revision: int
    version: str
    status: ExecutionStatus
    input: dict[str, Any]
    # A child execution's parent (None: started through the API), and how deep it nests
    # (0 at the top).
    parent: ParentRef | None = None
    depth: int = 0
    faults: list[Fault] = Field(default_factory=list)
    # Set whenever the status is not RUNNING or COMPLETED: why it did not complete.
    error: ExecutionError | None = None
    # A COMPLETED execution's output: its saga's output mapping, resolved when it completed.
    output: dict[str, Any] | None = None
    # Set when that mapping could not be resolved (the output is then None): the execution
    # still completed, every step succeeded; the mapping is at fault, and this says where.
    output_error: OutputError | None = None
    state_machine_arn: str | None = None
    sfn_execution_arn: str | None = None
    started_at: datetime
    updated_at: datetime
    ended_at: datetime | None = None
    resolved_by: str | None = None
    resolution: str | None = None
    # When it was resolved (the resolution is its last change: its updated_at then).
    resolved_at: datetime | None = None
    steps: list[StepRun] = Field(default_factory=list)
    # Where this view comes from and how fresh it is: {"source": "read_model", "sequence": n,
    # "projected_at": t}, n the execution's last event applied; or {"source": "write_model",
    # "sequence": n} (before the first projection, or while the read model is unreachable).
    # To read your own write, wait until the read model's sequence reaches the one it returned.
    consistency: dict[str, Any] | None = None
    # When it is next expected to move (chalicelib.domain.expected_by: the reconciler's cue),
    # None once it ended: bookkeeping of the write model, not shown (the in-memory store keeps
    # it here; the MySQL store's views leave it out).
    expected_by: datetime | None = Field(default=None, exclude=True)
