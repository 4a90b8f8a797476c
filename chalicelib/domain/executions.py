"""Executions as the service records and reports them. Data only."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_serializer,
    model_validator,
)
from typing_extensions import TypedDict

from chalicelib.domain.lifecycle import (  # noqa: F401  (re-exported: the domain's names)
    ExecutionStatus,
    Phase,
    StepKind,
    StepStatus,
    WaitKind,
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
    phase: str | None = Field(default=None, description="action or compensation")
    type: str
    message: str = Field(description=(
        "first line only: no traceback, no file paths; a caller's reason (by set) as it was "
        "given"))
    # A failed compensation: every step whose compensation failed for good (parallel undos
    # of a group may fail side by side).
    failed_steps: list[str] | None = None
    # Who gave this reason: a caller who completed a waiting callback as failed (a person
    # rejecting an approval, a partner), as the step's waiting.completed_by says. Their
    # words are theirs, kept as written (see execution_error); None for every other error.
    by: str | None = Field(default=None, description=(
        "present when a caller gave the reason, completing a callback as failed (a rejected "
        "approval): who, as the step's waiting.completed_by says"))

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
    """One try of a step's action or compensation, as it was recorded."""

    phase: Phase
    attempt: int = Field(description="its number within its phase, from 1")
    outcome: str = Field(description=(
        "succeeded, failed, or unknown (it may have taken effect: timed out, answered past "
        "its deadline, or answered something that is not a result)"))
    error_type: str | None = None
    error_message: str | None = None
    started_at: datetime
    ended_at: datetime
    duration_ms: int
    # Kept when within storable.kept_input's bounds.
    input: dict[str, Any] | None = Field(default=None, description=(
        "the step's input as this attempt was sent it (its mapping resolved); null when not "
        "kept: over saga.max_result_bytes, failed before it was resolved (an injected "
        "fault), or recorded before inputs were kept"))


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

    kind: WaitKind
    since: datetime = Field(description="when the wait began")
    until: datetime = Field(description=(
        "a callback's deadline (its step's timeout from the attempt's start: a completion "
        "after it is refused), or the timer's moment"))
    # Never its secret, never the engine's task token.
    callback_id: str | None = Field(default=None, description="the callback to complete")
    heartbeat_at: datetime | None = None
    completed_by: str | None = Field(default=None, description=(
        "callback-secret (a partner, with the callback's secret), caller:<subject> (a caller "
        "with a token), timer, or null while waiting"))
    completed_at: datetime | None = None
    approval: bool = Field(default=False, description=(
        "an approval: a callback step with no action, completed by a person (role approver "
        "or above)"))
    # The execution's input when the step has none; the attempt recorded when the callback
    # is completed keeps it too (see chalicelib.domain.callbacks.wait_input).
    input: dict[str, Any] | None = Field(default=None, description=(
        "the step's input as its mapping resolved when it began to wait: what an approval's "
        "person decides on, what a partner's call was sent (null for a timer, or when over "
        "saga.max_result_bytes: see the execution's input)"))

    def record(self) -> dict[str, Any]:
        """The wait as step records and events carry it: times ISO 8601 in UTC (a time
        without a zone is UTC), as the record's other times."""
        def iso(at: datetime) -> str:
            return (at.astimezone(UTC) if at.tzinfo else at.replace(tzinfo=UTC)).isoformat()

        return {name: iso(value) if isinstance(value, datetime) else value
                for name, value in self}


class StepErrorRecord(TypedDict, total=False):
    """How a step's action failed: its type and the first line of its message."""

    __pydantic_config__ = ConfigDict(extra="allow")  # type: ignore[misc]

    type: str
    message: str


class ConditionRecord(TypedDict):
    """A SKIPPED step's when as it was evaluated."""

    __pydantic_config__ = ConfigDict(extra="allow")  # type: ignore[misc]

    when: Annotated[str, Field(description="the condition's text")]
    value: Annotated[bool, Field(description="what it came to (false)")]
    operands: Annotated[dict[str, Any], Field(description=(
        "each reference it read -> the value read (absent ones, and those not read once "
        "and/or had decided, are left out)"))]


class FanoutRecord(TypedDict):
    """A fan-out step's items, as they started."""

    __pydantic_config__ = ConfigDict(extra="allow")  # type: ignore[misc]

    items: Annotated[int, Field(description="how many items it runs")]
    max_concurrency: Annotated[int, Field(description="at most this many at once")]
    tolerated: Annotated[int, Field(description=(
        "how many items may fail for good before the step does (its tolerated_failures as a "
        "count)"))]


class ItemRecord(TypedDict):
    """An item of a fan-out: which step, and which element."""

    __pydantic_config__ = ConfigDict(extra="allow")  # type: ignore[misc]

    of: Annotated[str, Field(description="the fan-out step's id")]
    index: Annotated[int, Field(description="the element's index, from 0")]


class StepRun(BaseModel):
    """A step of an execution as GET /executions/{id} shows it: a fan-out's items follow
    their step, each a step of its own."""

    step_id: str = Field(description="the step's id; an item of a fan-out is "
                                     "<step id>[<index>]")
    position: int = Field(description="its place in the execution (an item shares its "
                                      "fan-out's)")
    # None for executions recorded before steps had a shape.
    group: int | None = Field(default=None, description="the parallel group it runs in "
                                                        "(its order)")
    kind: StepKind | None = None
    status: StepStatus = Field(description=(
        "SKIPPED: its when was false when its turn came (condition says why); it never ran "
        "and is never compensated. WAITING: a callback or a timer waits. OUTCOME_UNKNOWN: "
        "its action may have taken effect; it is compensated like a step that succeeded"))
    result: dict[str, Any] | None = Field(default=None, description=(
        "its action's result; a fan-out's is {\"items\": [...]}, each item's result in item "
        "order (null for an item that failed within its tolerance)"))
    error: StepErrorRecord | None = None
    action_attempts: int = 0
    compensation_attempts: int = 0
    started_at: datetime | None = None
    ended_at: datetime | None = None
    compensated_at: datetime | None = None
    attempts: list[Attempt] = Field(default_factory=list)
    # None for the other kinds, and before it starts.
    waiting: Waiting | None = Field(default=None, description=(
        "a callback's or a timer's wait (kept once it ended)"))
    condition: ConditionRecord | None = Field(default=None, description=(
        "a SKIPPED step's when as it was evaluated: null otherwise"))
    fanout: FanoutRecord | None = Field(default=None, description=(
        "a fan-out step's items, as they started (null before)"))
    item: ItemRecord | None = Field(default=None, description=(
        "an item of a fan-out: which step, and which element"))
    # chalicelib.domain.children makes it.
    child: str | None = Field(default=None, description=(
        "a child step's child execution (GET /executions/{id}), once made; null otherwise"))
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
    """A child execution's parent: the execution and its child step that started it."""

    execution_id: str
    step_id: str


# What GET /executions leaves out of each execution it lists (GET /executions/{id} has them).
LISTED_WITHOUT = frozenset({"steps", "input"})


class Execution(BaseModel):
    """An execution of a saga's version: its status, its input, its steps with their attempts,
    and what it came to."""

    id: str
    saga_id: str
    revision: int
    version: str
    status: ExecutionStatus
    input: dict[str, Any]
    parent: ParentRef | None = Field(default=None, description=(
        "a child execution's parent; null for one started through this API"))
    depth: int = Field(default=0, ge=0, description=(
        "how deep a child execution nests (0: started through this API)"))
    faults: list[Fault] = Field(default_factory=list, description=(
        "the failures injected into it (only where the stage enables fault injection)"))
    # Set whenever the status is not RUNNING or COMPLETED.
    error: ExecutionError | None = Field(default=None, description=(
        "why the execution did not complete; null while running or once completed"))
    output: dict[str, Any] | None = Field(default=None, description=(
        "a COMPLETED execution's output: its saga's output mapping, resolved as it "
        "completed"))
    # Set when that mapping could not be resolved (the output is then None): the execution
    # still completed, every step succeeded; the mapping is at fault, and this says where.
    output_error: OutputError | None = Field(default=None, description=(
        "why a COMPLETED execution has no output: the first reference of its saga's output "
        "mapping whose value was absent (the execution still completed); null otherwise"))
    state_machine_arn: str | None = None
    sfn_execution_arn: str | None = None
    started_at: datetime
    updated_at: datetime
    ended_at: datetime | None = None
    resolved_by: str | None = Field(default=None, description=(
        "who resolved it: a decision taken once, after which every operator action on it is "
        "refused (409)"))
    resolution: str | None = None
    # The resolution is its last change: its updated_at then.
    resolved_at: datetime | None = None
    steps: list[StepRun] = Field(default_factory=list)
    # Where this view comes from and how fresh it is: {"source": "read_model", "sequence": n,
    # "projected_at": t}, n the execution's last event applied; or {"source": "write_model",
    # "sequence": n} (before the first projection, or while the read model is unreachable).
    # To read your own write, wait until the read model's sequence reaches the one it returned.
    consistency: dict[str, Any] | None = Field(default=None, description=(
        "where this view comes from and how fresh it is: {source: read_model, sequence, "
        "projected_at}, or {source: write_model, sequence}; to read your own write, wait "
        "until the read model's sequence reaches the one a write returned"))
    # When it is next expected to move (chalicelib.domain.expected_by: the reconciler's cue),
    # None once it ended: bookkeeping of the write model, not shown (the in-memory store keeps
    # it here; the MySQL store's views leave it out).
    expected_by: datetime | None = Field(default=None, exclude=True)
