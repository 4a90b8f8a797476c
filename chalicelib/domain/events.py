"""Events: what every state change publishes, and the one builder of each type's data. Pure.

A builder decides its event's data keys; the stores persist the Event they are given inside
their transaction, where the envelope (id, key, subject, sequence, time) is added.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any, Literal

from chalicelib.domain.event_types import (
    COMPENSATION_FAILED,
    COMPENSATION_STARTED,
    DEFINITION_CREATED,
    DEFINITION_DELETED,
    DEFINITION_UPDATED,
    EXECUTION_STARTED,
    RUN_STARTED,
    SAGA_COMPENSATED,
    SAGA_COMPLETED,
    SAGA_FAILED,
    SAGA_PARKED,
    SAGA_RESOLVED,
    SAGA_RESUMED,
    SOURCE,
    STEP_ABORTED,
    STEP_CALLBACK_RECEIVED,
    STEP_COMPENSATED,
    STEP_COMPENSATION_FAILED,
    STEP_FAILED,
    STEP_FANNED_OUT,
    STEP_HEARTBEAT,
    STEP_OUTCOME_UNKNOWN,
    STEP_RETRIED,
    STEP_SKIPPED,
    STEP_STARTED,
    STEP_SUCCEEDED,
    STEP_TIMER_FIRED,
    STEP_WAITING,
)
from chalicelib.domain.executions import Execution, StepShape
from chalicelib.domain.lifecycle import Phase
from chalicelib.domain.models import StoredSaga


def envelope(event_type: str, *, key: str, subject: str, sequence: int,
             data: dict[str, Any], event_id: str | None = None,
             time: datetime | None = None) -> dict[str, Any]:
    """key orders events (execution id, or saga id for definitions); sequence counts per key."""
    return {
        "id": event_id or str(uuid.uuid4()),
        "type": event_type,
        "source": SOURCE,
        "time": (time or datetime.now(UTC)).isoformat(),
        "subject": subject,
        "key": key,
        "sequence": sequence,
        "data": data,
    }


# -- the builders ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Event:
    """An event before its envelope: its type and exactly the data production sends."""

    type: str
    data: dict[str, Any]


class _Absent(Enum):
    ABSENT = "absent"


# A key left out, not null: the read model keeps what it has (a null execution_error clears it).
ABSENT = _Absent.ABSENT
Maybe = Literal[_Absent.ABSENT]


def _event(event_type: str, **data: Any) -> Event:
    return Event(event_type, {key: value for key, value in data.items() if value is not ABSENT})


def _iso(at: datetime) -> str:
    """UTC (a naive time is taken as UTC)."""
    return (at.astimezone(UTC) if at.tzinfo is not None else at.replace(tzinfo=UTC)).isoformat()


# -- definitions (keyed by saga id)

def _summary(saga: StoredSaga) -> dict[str, Any]:
    return {"saga_id": saga.id, "version": saga.version, "revision": saga.revision,
            "active": saga.active, "steps": [step.id for step in saga.steps]}


def definition_created(saga: StoredSaga, *, action: str) -> Event:
    return Event(DEFINITION_CREATED, {**_summary(saga), "action": action})


def definition_updated(saga: StoredSaga, *, action: str) -> Event:
    """A new version, or (action set_active) the saga switched on or off."""
    return Event(DEFINITION_UPDATED, {**_summary(saga), "action": action})


def definition_deleted(*, saga_id: str, version: str) -> Event:
    return _event(DEFINITION_DELETED, saga_id=saga_id, version=version)


# -- an execution's own changes (keyed by execution id)

def execution_started(execution: Execution, shapes: Sequence[StepShape]) -> Event:
    return _event(EXECUTION_STARTED, saga_id=execution.saga_id, version=execution.version,
                  revision=execution.revision, steps=[shape.step_id for shape in shapes],
                  shape=[shape.model_dump(mode="json") for shape in shapes],
                  input=execution.input, faults=[f.model_dump() for f in execution.faults],
                  state_machine_arn=execution.state_machine_arn,
                  # A child's: its parent, and how deep it nests (absent at the top).
                  parent=(execution.parent.model_dump() if execution.parent is not None
                          else ABSENT),
                  depth=execution.depth or ABSENT)


def run_started(*, saga_id: str | None, state_machine_arn: str | None,
                run_arn: str | None) -> Event:
    return _event(RUN_STARTED, saga_id=saga_id, state_machine_arn=state_machine_arn,
                  run_arn=run_arn)


def compensation_started(*, saga_id: str, status: str,
                         execution_error: dict[str, Any] | Maybe | None = ABSENT,
                         cause: dict[str, Any] | Maybe | None = ABSENT,
                         reason: str | Maybe = ABSENT, by: str | Maybe = ABSENT) -> Event:
    """cause: a step's undo began the compensation; reason and by: an operator asked."""
    return _event(COMPENSATION_STARTED, saga_id=saga_id, status=str(status), cause=cause,
                  execution_error=execution_error, reason=reason, by=by)


def _ended(event_type: str, *, saga_id: str, status: str,
           execution_error: dict[str, Any] | Maybe | None, reason: str | Maybe,
           reconciled: bool | Maybe, **extra: Any) -> Event:
    return _event(event_type, saga_id=saga_id, status=str(status),
                  execution_error=execution_error, reason=reason, reconciled=reconciled,
                  **extra)


def saga_completed(*, saga_id: str, status: str,
                   execution_error: dict[str, Any] | Maybe | None = ABSENT,
                   output: dict[str, Any] | Maybe | None = ABSENT,
                   output_error: dict[str, Any] | Maybe | None = ABSENT,
                   reason: str | Maybe = ABSENT, reconciled: bool | Maybe = ABSENT) -> Event:
    """output and output_error: the recorder's; reason and reconciled: the reconciler's."""
    return _ended(SAGA_COMPLETED, saga_id=saga_id, status=status,
                  execution_error=execution_error, reason=reason, reconciled=reconciled,
                  output=output, output_error=output_error)


def saga_compensated(*, saga_id: str, status: str,
                     execution_error: dict[str, Any] | Maybe | None = ABSENT,
                     reason: str | Maybe = ABSENT, reconciled: bool | Maybe = ABSENT) -> Event:
    return _ended(SAGA_COMPENSATED, saga_id=saga_id, status=status,
                  execution_error=execution_error, reason=reason, reconciled=reconciled)


def saga_failed(*, saga_id: str, status: str,
                execution_error: dict[str, Any] | Maybe | None = ABSENT,
                reason: str | Maybe = ABSENT, reconciled: bool | Maybe = ABSENT) -> Event:
    """status: FAILED or TIMED_OUT (one event type for both)."""
    return _ended(SAGA_FAILED, saga_id=saga_id, status=status,
                  execution_error=execution_error, reason=reason, reconciled=reconciled)


def compensation_failed(*, saga_id: str, status: str,
                        execution_error: dict[str, Any] | Maybe | None = ABSENT,
                        reason: str | Maybe = ABSENT,
                        reconciled: bool | Maybe = ABSENT) -> Event:
    return _ended(COMPENSATION_FAILED, saga_id=saga_id, status=status,
                  execution_error=execution_error, reason=reason, reconciled=reconciled)


def saga_parked(*, saga_id: str, status: str,
                execution_error: dict[str, Any] | Maybe | None = ABSENT,
                reason: str | Maybe = ABSENT, reconciled: bool | Maybe = ABSENT) -> Event:
    return _ended(SAGA_PARKED, saga_id=saga_id, status=status,
                  execution_error=execution_error, reason=reason, reconciled=reconciled)


def saga_resumed(*, saga_id: str, status: str, by: str,
                 steps: Sequence[Mapping[str, Any]],
                 reason: str = "retry forward requested") -> Event:
    """An operator's retry forward (by: who; reason: as an operator's compensation says
    why). steps: each reset step's step_id and its record as the write model holds it now."""
    return _event(SAGA_RESUMED, saga_id=saga_id, status=str(status), by=by, reason=reason,
                  execution_error=None, steps=[dict(step) for step in steps])


def saga_resolved(*, saga_id: str, by: str, reason: str) -> Event:
    return _event(SAGA_RESOLVED, saga_id=saga_id, by=by, reason=reason)


_MOVES: dict[str, Callable[..., Event]] = {
    COMPENSATION_STARTED: compensation_started, SAGA_COMPLETED: saga_completed,
    SAGA_COMPENSATED: saga_compensated, SAGA_FAILED: saga_failed,
    COMPENSATION_FAILED: compensation_failed, SAGA_PARKED: saga_parked,
}


def moved(event_type: str, *, saga_id: str, status: str,
          execution_error: dict[str, Any] | Maybe | None = ABSENT, **detail: Any) -> Event:
    """The event of an execution's move to `status` (ExecutionStore.transition): built by its
    type's builder, which refuses a detail that type does not carry."""
    builder = _MOVES.get(event_type)
    if builder is None:
        raise ValueError(f"{event_type} is not the event of a store's status move")
    return builder(saga_id=saga_id, status=status, execution_error=execution_error, **detail)


# -- a step's attempts (keyed by execution id)

@dataclass(frozen=True)
class StepAttempt:
    """Which attempt of which step an event reports, and when it ran."""

    saga_id: str
    step_id: str
    attempt: int
    phase: str
    started: datetime
    ended: datetime
    # What the attempt was sent (executions.Attempt.input): carried only when kept.
    input: dict[str, Any] | None = None

    def data(self) -> dict[str, Any]:
        data = {"saga_id": self.saga_id, "step_id": self.step_id, "attempt": self.attempt,
                "phase": str(self.phase), "started_at": _iso(self.started),
                "duration_ms": int((self.ended - self.started).total_seconds() * 1000)}
        if self.input is not None:
            data["input"] = self.input
        return data


def step_started(attempt: StepAttempt) -> Event:
    """An action's first attempt (its times are those of the attempt that succeeded)."""
    return Event(STEP_STARTED, attempt.data())


def step_succeeded(attempt: StepAttempt, *, result: Any, step: Mapping[str, Any]) -> Event:
    """step: the step's record as the write model holds it after the attempt."""
    return Event(STEP_SUCCEEDED, {**attempt.data(), "result": result, "step": dict(step)})


_ACTION = Phase.ACTION.value  # what a wait's events report: the action's attempt


def step_waiting(attempt: StepAttempt, *, step: Mapping[str, Any],
                 result: Any = ABSENT) -> Event:
    """A callback's call answered (result: its answer, kept for the compensation) or a timer
    set: the step waits; step["waiting"] says for what and until when."""
    return _event(STEP_WAITING, **attempt.data(), result=result, step=dict(step))


def step_heartbeat(*, saga_id: str, step_id: str, attempt: int,
                   step: Mapping[str, Any]) -> Event:
    """A waiting callback was kept alive (step["waiting"]["heartbeat_at"] says when)."""
    return Event(STEP_HEARTBEAT, {"saga_id": saga_id, "step_id": step_id, "attempt": attempt,
                                  "phase": _ACTION, "step": dict(step)})


def step_callback_received(*, saga_id: str, step_id: str, attempt: int, outcome: str,
                           by: str, step: Mapping[str, Any]) -> Event:
    """A completion of a waiting callback was accepted: outcome succeeded or failed, by whom
    (the step's succeeded or failed event follows in the same transaction)."""
    return Event(STEP_CALLBACK_RECEIVED, {"saga_id": saga_id, "step_id": step_id,
                                          "attempt": attempt, "phase": _ACTION,
                                          "outcome": outcome, "by": by, "step": dict(step)})


def step_timer_fired(*, saga_id: str, step_id: str, attempt: int,
                     step: Mapping[str, Any]) -> Event:
    return Event(STEP_TIMER_FIRED, {"saga_id": saga_id, "step_id": step_id,
                                    "attempt": attempt, "phase": _ACTION, "step": dict(step)})


def step_skipped(*, saga_id: str, step_id: str, at: datetime, condition: Mapping[str, Any],
                 step: Mapping[str, Any]) -> Event:
    """A step's `when` condition was false: condition holds its text ("when"), its value and
    the values it read ("operands"); step: its record (status SKIPPED). No attempt ran."""
    return Event(STEP_SKIPPED, {"saga_id": saga_id, "step_id": step_id, "attempt": 0,
                                "phase": _ACTION, "started_at": _iso(at),
                                "condition": dict(condition), "step": dict(step)})


def step_fanned_out(*, saga_id: str, step_id: str, at: datetime, plan: Mapping[str, Any],
                    step: Mapping[str, Any]) -> Event:
    """A fan-out started its items: plan is {"items", "max_concurrency", "tolerated"}."""
    return Event(STEP_FANNED_OUT, {"saga_id": saga_id, "step_id": step_id, "attempt": 0,
                                   "phase": _ACTION, "started_at": _iso(at),
                                   "fanout": dict(plan), "step": dict(step)})


def step_compensated(attempt: StepAttempt, *, result: Any, step: Mapping[str, Any]) -> Event:
    return Event(STEP_COMPENSATED, {**attempt.data(), "result": result, "step": dict(step)})


def step_aborted(attempt: StepAttempt, *, error: Mapping[str, Any]) -> Event:
    """A delivery of an action its execution moved on from: the step keeps its record."""
    return Event(STEP_ABORTED, {**attempt.data(), "error": dict(error)})


def _attempt_failed(event_type: str, attempt: StepAttempt, *, error: Mapping[str, Any],
                    outcome: str, step: Mapping[str, Any], result: Any = ABSENT,
                    execution_error: dict[str, Any] | Maybe = ABSENT) -> Event:
    return _event(event_type, **attempt.data(), error=dict(error), outcome=str(outcome),
                  result=result, execution_error=execution_error, step=dict(step))


def step_retried(attempt: StepAttempt, *, error: Mapping[str, Any], outcome: str,
                 step: Mapping[str, Any], result: Any = ABSENT) -> Event:
    """result: a late answer kept with an unknown outcome."""
    return _attempt_failed(STEP_RETRIED, attempt, error=error, outcome=outcome, step=step,
                           result=result)


def step_failed(attempt: StepAttempt, *, error: Mapping[str, Any], outcome: str,
                step: Mapping[str, Any],
                execution_error: dict[str, Any] | Maybe = ABSENT) -> Event:
    """execution_error: why the execution will not complete (absent for a fan-out's item:
    its step decides once its items have ended)."""
    return _attempt_failed(STEP_FAILED, attempt, error=error, outcome=outcome, step=step,
                           execution_error=execution_error)


def step_outcome_unknown(attempt: StepAttempt, *, error: Mapping[str, Any], outcome: str,
                         step: Mapping[str, Any],
                         execution_error: dict[str, Any] | Maybe = ABSENT,
                         result: Any = ABSENT) -> Event:
    return _attempt_failed(STEP_OUTCOME_UNKNOWN, attempt, error=error, outcome=outcome,
                           step=step, result=result, execution_error=execution_error)


def step_compensation_failed(attempt: StepAttempt, *, error: Mapping[str, Any], outcome: str,
                             step: Mapping[str, Any],
                             execution_error: dict[str, Any]) -> Event:
    return _attempt_failed(STEP_COMPENSATION_FAILED, attempt, error=error, outcome=outcome,
                           step=step, execution_error=execution_error)


_FAILURES: dict[str, Callable[..., Event]] = {
    STEP_RETRIED: step_retried, STEP_FAILED: step_failed,
    STEP_OUTCOME_UNKNOWN: step_outcome_unknown,
    STEP_COMPENSATION_FAILED: step_compensation_failed,
}


def attempt_failed(event_type: str, attempt: StepAttempt, **fields: Any) -> Event:
    """The event of a failed attempt, of the type the lifecycle's step table chose: built by
    that type's builder (a retried attempt carries no execution_error, a final one does)."""
    builder = _FAILURES.get(event_type)
    if builder is None:
        raise ValueError(f"{event_type} is not the event of a failed attempt")
    return builder(attempt, **fields)
