"""A step's wait written to the MySQL write model as the step runtime writes it, without the
engine: in one transaction the step's row (its status, its `waiting` column) and the event that
carries the step's record, appended to the outbox. For the read side's tests: the projector's
(applied directly) and the console's (published by `saga serve`'s relay and pushed live)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from chalicelib.adapters.mysql import executions as records
from chalicelib.adapters.mysql.connector import MySQLConnector
from chalicelib.domain import events
from chalicelib.domain.executions import Execution, ExecutionStatus, StepShape, Waiting
from chalicelib.domain.lifecycle import Outcome, Phase, StepKind, StepStatus, WaitKind
from chalicelib.domain.step_context import Cursor

SHAPE = (StepShape(step_id="reserve", group=1, kind=StepKind.COMPENSATABLE),
         StepShape(step_id="payment-confirmed", group=2, kind=StepKind.CALLBACK),
         StepShape(step_id="cool-off", group=3, kind=StepKind.WAIT))


def _naive(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(tzinfo=None)


class WaitWriter:
    """One execution of `saga_id` with the steps of `shape`, and its waits as they go."""

    def __init__(self, connector: MySQLConnector, saga_id: str = "waits",
                 shape: Sequence[StepShape] = SHAPE) -> None:
        self.connector = connector
        self.saga_id = saga_id
        self.shape = list(shape)
        self.execution_id = f"w-{uuid.uuid4().hex[:10]}"
        self.waits: dict[str, Waiting] = {}
        self.called: dict[str, datetime] = {}

    def create(self, at: datetime) -> str:
        execution = Execution(id=self.execution_id, saga_id=self.saga_id, revision=1,
                              version="1.0.0", status=ExecutionStatus.RUNNING, input={},
                              started_at=at, updated_at=at)
        with self.connector.transaction() as cur:
            records.insert_execution(cur, execution, self.shape)
            records.record_event(cur, events.execution_started(execution, self.shape),
                                 execution_id=self.execution_id, at=_naive(at))
        return self.execution_id

    # -- the step's row and its event --------------------------------------------------------

    def _set(self, cur: Cursor, step_id: str, wait: Waiting, *,
             status: StepStatus | None = None, started: datetime | None = None,
             result: dict[str, Any] | None = None) -> dict[str, Any]:
        """The row changed (its wait as pydantic writes JSON: times with a Z); its record."""
        self.waits[step_id] = wait
        cur.execute("UPDATE step_runs SET waiting = %s, status = COALESCE(%s, status), "
                    "started_at = COALESCE(started_at, %s), result = COALESCE(%s, result), "
                    "action_attempts = GREATEST(action_attempts, 1) "
                    "WHERE execution_id = %s AND step_id = %s",
                    (json.dumps(wait.model_dump(mode="json")),
                     None if status is None else status.value,
                     None if started is None else _naive(started),
                     None if result is None else json.dumps(result),
                     self.execution_id, step_id))
        return records.step_record(cur, self.execution_id, step_id)

    def _emit(self, cur: Cursor, event: events.Event, at: datetime) -> None:
        records.record_event(cur, event, execution_id=self.execution_id, at=_naive(at))

    def _attempt(self, step_id: str, ended: datetime) -> events.StepAttempt:
        return events.StepAttempt(saga_id=self.saga_id, step_id=step_id, attempt=1,
                                  phase=Phase.ACTION, started=self.called[step_id],
                                  ended=ended)

    # -- what the runtime does ---------------------------------------------------------------

    def wait(self, step_id: str, at: datetime, *, until: datetime,
             callback_id: str | None = None, answer: dict[str, Any] | None = None,
             called: datetime | None = None,
             decides_on: dict[str, Any] | None = None) -> Waiting:
        """The step starts waiting: for a callback (its call, made at `called`, answered
        `answer`), for an approval (a callback whose person `decides_on` its input) or,
        without a callback id, a timer."""
        self.called[step_id] = called or at
        wait = Waiting(kind=WaitKind.CALLBACK if callback_id else WaitKind.TIMER, since=at,
                       until=until, callback_id=callback_id, approval=decides_on is not None,
                       input=decides_on)
        with self.connector.transaction() as cur:
            record = self._set(cur, step_id, wait, status=StepStatus.WAITING,
                               started=self.called[step_id], result=answer)
            self._emit(cur, events.step_waiting(self._attempt(step_id, at), step=record,
                                                result=events.ABSENT if answer is None
                                                else answer), at)
        return wait

    def heartbeat(self, step_id: str, at: datetime) -> Waiting:
        wait = self.waits[step_id].model_copy(update={"heartbeat_at": at})
        with self.connector.transaction() as cur:
            record = self._set(cur, step_id, wait)
            self._emit(cur, events.step_heartbeat(saga_id=self.saga_id, step_id=step_id,
                                                  attempt=1, step=record), at)
        return wait

    def complete(self, step_id: str, at: datetime, *, by: str,
                 result: dict[str, Any]) -> Waiting:
        """The partner completes the callback: callback received, then the step succeeds."""
        wait = self.waits[step_id].model_copy(update={"completed_by": by, "completed_at": at})
        with self.connector.transaction() as cur:
            record = self._set(cur, step_id, wait)
            self._emit(cur, events.step_callback_received(
                saga_id=self.saga_id, step_id=step_id, attempt=1,
                outcome=Outcome.SUCCEEDED.value, by=by, step=record), at)
            self._succeed(cur, step_id, at, result)
        return wait

    def fire(self, step_id: str, at: datetime) -> Waiting:
        """The timer fires: timer fired, then the step succeeds."""
        wait = self.waits[step_id].model_copy(update={"completed_by": "timer",
                                                      "completed_at": at})
        with self.connector.transaction() as cur:
            record = self._set(cur, step_id, wait)
            self._emit(cur, events.step_timer_fired(saga_id=self.saga_id, step_id=step_id,
                                                    attempt=1, step=record), at)
            self._succeed(cur, step_id, at, {})
        return wait

    def finish(self, at: datetime) -> None:
        """The execution completes (what its recorder would write after the last step)."""
        with self.connector.transaction() as cur:
            records.lock_execution(cur, self.execution_id)
            assert records.set_execution_status(cur, self.execution_id,
                                                ExecutionStatus.COMPLETED, at=_naive(at))
            self._emit(cur, events.saga_completed(saga_id=self.saga_id,
                                                  status=ExecutionStatus.COMPLETED.value,
                                                  output=None), at)

    def _succeed(self, cur: Cursor, step_id: str, at: datetime,
                 result: dict[str, Any]) -> None:
        """The attempt's end, as every step records it: its attempt row, status, event."""
        started = self.called[step_id]
        records.insert_attempt(cur, self.execution_id, step_id, phase=Phase.ACTION,
                               attempt=1, outcome=Outcome.SUCCEEDED, started=_naive(started),
                               ended=_naive(at))
        records.update_step_run(cur, self.execution_id, step_id, status=StepStatus.SUCCEEDED,
                                phase=Phase.ACTION, at=_naive(at), result=result,
                                count_attempt=False, started=_naive(started))
        self._emit(cur, events.step_succeeded(
            self._attempt(step_id, at), result=result,
            step=records.step_record(cur, self.execution_id, step_id)), at)
