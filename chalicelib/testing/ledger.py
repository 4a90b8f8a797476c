"""The step ledger in memory, over an InMemoryExecutionStore's executions and events.

A transaction works on copies and writes them back only when it ends without an error, so a
failed attempt leaves nothing behind, as a rolled-back MySQL transaction does. One lock stands
for the row locks: `locked` says whether a transaction is open (a participant must be called
with it free). A built-in action's writes through `cursor` are kept as (statement, arguments)
in `effects`, committed with the step's record or not at all.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from chalicelib.domain import events
from chalicelib.domain import expected_by as expected
from chalicelib.domain.callbacks import Callback, CallbackState
from chalicelib.domain.executions import (
    Attempt,
    Execution,
    ExecutionError,
    OutputError,
    StepRun,
    StepShape,
    Waiting,
)
from chalicelib.domain.fanout import item_run_id
from chalicelib.domain.lifecycle import (
    ExecutionStatus,
    Outcome,
    Phase,
    StepStatus,
    allowed_from,
)
from chalicelib.domain.step_runs import EventBatch, LockedExecution, LockedStep
from chalicelib.testing.executions import InMemoryExecutionStore, step_record
from chalicelib.testing.outbox import outbox_envelope


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


class RecordingCursor:
    """Keeps what a built-in action executes; reads find nothing."""

    rowcount = 1
    lastrowid = 0

    def __init__(self, effects: list[tuple[str, Any]]) -> None:
        self._effects = effects

    def execute(self, query: str, args: Any = None) -> int:
        self._effects.append((query, args))
        return 1

    def fetchone(self) -> dict[str, Any] | None:
        return None

    def fetchall(self) -> list[dict[str, Any]]:
        return []


class InMemoryLedgerTransaction:
    def __init__(self, store: InMemoryExecutionStore) -> None:
        self._store = store
        self.rows: dict[str, Execution] = {}  # working copies, written back on commit
        self.events: list[dict[str, Any]] = []
        self.effects: list[tuple[str, Any]] = []
        self._cursor = RecordingCursor(self.effects)
        self._changed: dict[str, Callback] = {}  # callbacks written, kept on commit

    @property
    def cursor(self) -> RecordingCursor:
        return self._cursor

    @property
    def callbacks_changed(self) -> dict[str, Callback]:
        return self._changed

    def _row(self, execution_id: str) -> Execution | None:
        if execution_id not in self.rows:
            found = self._store.get(execution_id)
            if found is None:
                return None
            self.rows[execution_id] = found
        return self.rows[execution_id]

    def _step(self, execution_id: str, step_id: str) -> StepRun:
        row = self._row(execution_id)
        step = next((s for s in row.steps if s.step_id == step_id), None) if row else None
        if step is None:
            raise KeyError(f"execution {execution_id!r} has no step {step_id!r}")
        return step

    def lock_execution(self, execution_id: str) -> LockedExecution | None:
        row = self._row(execution_id)
        if row is None:
            return None
        return LockedExecution(id=row.id, saga_id=row.saga_id, revision=row.revision,
                               status=row.status,
                               error=row.error.model_dump() if row.error else None)

    def lock_step(self, execution_id: str, step_id: str) -> LockedStep | None:
        row = self._row(execution_id)
        step = next((s for s in row.steps if s.step_id == step_id), None) if row else None
        if step is None:
            return None
        return self._locked(step)

    @staticmethod
    def _locked(step: StepRun) -> LockedStep:
        return LockedStep(step_id=step.step_id, status=step.status,
                          action_attempts=step.action_attempts,
                          compensation_attempts=step.compensation_attempts,
                          result=dict(step.result) if step.result is not None else None,
                          error=dict(step.error) if step.error is not None else None,
                          retry_base=step.retry_base, action_deadline=step.action_deadline,
                          waiting=step.waiting, child=step.child)

    def load_execution(self, execution_id: str) -> Execution:
        row = self._row(execution_id)
        assert row is not None, f"no execution {execution_id}"
        return row.model_copy(update={"steps": []}, deep=True)

    def results(self, execution_id: str) -> dict[str, dict[str, Any]]:
        row = self._row(execution_id)
        steps = sorted(row.steps, key=lambda s: s.position) if row else []
        return {s.step_id: dict(s.result or {}) for s in steps
                if s.status is StepStatus.SUCCEEDED and s.item is None}

    def next_step(self, execution_id: str, step_id: str) -> str | None:
        row = self._row(execution_id)
        position = self._step(execution_id, step_id).position
        later = sorted((s for s in row.steps  # type: ignore[union-attr]
                        if s.position > position and s.item is None),
                       key=lambda s: s.position)
        return later[0].step_id if later else None

    def steps_in(self, execution_id: str, status: StepStatus) -> list[str]:
        row = self._row(execution_id)
        return [s.step_id for s in sorted(row.steps if row else [], key=lambda s: s.position)
                if s.status is status and s.item is None]

    def record_attempt(self, execution_id: str, step_id: str, *, phase: Phase, attempt: int,
                       outcome: Outcome, started: datetime, ended: datetime,
                       error_type: str | None = None, error_message: str | None = None,
                       sent: dict[str, Any] | None = None) -> None:
        self._step(execution_id, step_id).attempts.append(Attempt(
            phase=str(phase), attempt=attempt, outcome=str(outcome), error_type=error_type,
            error_message=(error_message or "")[:2000] or None, started_at=_aware(started),
            ended_at=_aware(ended), duration_ms=int((ended - started).total_seconds() * 1000),
            input=None if sent is None else copy.deepcopy(sent)))

    def claim_attempt(self, execution_id: str, step_id: str, *, phase: Phase,
                      deadline: datetime, expect_by: datetime | None = None) -> int:
        if expect_by is not None:
            self.expect_by(execution_id, expect_by)
        step = self._step(execution_id, step_id)
        if phase is Phase.ACTION:
            step.action_attempts += 1
            deadline = _aware(deadline)
            step.action_deadline = max(step.action_deadline or deadline, deadline)
            return step.action_attempts
        step.compensation_attempts += 1
        return step.compensation_attempts

    def record_outcome(self, execution_id: str, step_id: str, *, status: StepStatus,
                       phase: Phase, at: datetime, started: datetime,
                       result: dict[str, Any] | None = None,
                       error: dict[str, Any] | None = None,
                       claimed: bool = False,
                       answered_by: datetime | None = None) -> dict[str, Any]:
        # As the MySQL ledger writes it: an action's attempt ends the step, a result is kept
        # until another replaces it, the error is the latest attempt's.
        step = self._step(execution_id, step_id)
        if answered_by is not None and step.action_deadline is not None \
                and step.action_deadline <= answered_by:
            step.action_deadline = None
        step.status = status
        count = 0 if claimed else 1
        if phase is Phase.ACTION:
            step.action_attempts += count
            step.ended_at = _aware(at)
        else:
            step.compensation_attempts += count
        if result is not None:
            step.result = result
        step.error = error
        step.started_at = step.started_at or _aware(started)
        if status is StepStatus.COMPENSATED:
            step.compensated_at = _aware(at)
        return step_record(step)

    def set_execution_status(self, execution_id: str, status: ExecutionStatus, *,
                             at: datetime, error: dict[str, Any] | None = None,
                             by_operator: bool = False) -> bool:
        row = self._row(execution_id)
        if row is None or row.status not in allowed_from(status, by_operator=by_operator) \
                or (by_operator and row.resolved_by is not None):
            return False
        row.status, row.updated_at = status, _aware(at)
        row.ended_at = _aware(at) if status.is_final else None
        row.expected_by = None if status.is_final else row.expected_by or _aware(at)
        if error is not None:
            row.error = ExecutionError.model_validate(error)
        return True

    def set_execution_error(self, execution_id: str, error: dict[str, Any]) -> None:
        row = self._row(execution_id)
        assert row is not None, f"no execution {execution_id}"
        row.error = ExecutionError.model_validate(error)

    def set_execution_output(self, execution_id: str, output: dict[str, Any] | None,
                             error: dict[str, Any] | None = None) -> None:
        row = self._row(execution_id)
        assert row is not None, f"no execution {execution_id}"
        row.output = None if output is None else dict(output)
        row.output_error = None if error is None else OutputError.model_validate(error)

    def append_events(self, execution_id: str, batch: EventBatch) -> None:
        sequence = sum(1 for e in (*self._store.events, *self.events)
                       if e["key"] == execution_id)
        for event, at in batch:
            sequence += 1
            self.events.append(outbox_envelope(
                event, key=execution_id, subject=f"execution/{execution_id}",
                sequence=sequence, at=_aware(at)))

    def expect_by(self, execution_id: str, at: datetime) -> None:
        row = self._row(execution_id)
        if row is not None and not row.status.is_final:
            row.expected_by = expected.moved(row.expected_by, _aware(at))


    # -- child steps

    def add_execution(self, execution: Execution, shapes: Sequence[StepShape]) -> bool:
        if execution.id in self.rows or self._store.get(execution.id) is not None:
            return False
        steps = [StepRun(step_id=shape.step_id, position=i, group=shape.group, kind=shape.kind,
                         status=StepStatus.PENDING) for i, shape in enumerate(shapes, start=1)]
        self.rows[execution.id] = execution.model_copy(update={
            "steps": steps, "expected_by": expected.at_start(execution.started_at)}, deep=True)
        self.append_events(execution.id, [(events.execution_started(execution, shapes),
                                           execution.started_at)])
        return True

    def start_child(self, execution_id: str, step_id: str, *, child_id: str,
                    at: datetime) -> dict[str, Any]:
        step = self._step(execution_id, step_id)
        step.status = StepStatus.RUNNING
        step.action_attempts += 1
        step.child = child_id
        step.started_at = step.started_at or _aware(at)
        return step_record(step)

    # -- steps that wait

    def start_items(self, execution_id: str, step_id: str, *, count: int,
                    plan: dict[str, Any], at: datetime) -> dict[str, Any]:
        step = self._step(execution_id, step_id)
        row = self._row(execution_id)
        assert row is not None
        known = {s.step_id for s in row.steps}
        for index in range(count):
            run_id = item_run_id(step_id, index)
            if run_id not in known:
                row.steps.append(StepRun(step_id=run_id, position=step.position,
                                         group=step.group, kind=step.kind,
                                         status=StepStatus.PENDING,
                                         item={"of": step_id, "index": index}))
        # A fan-out's items follow it, in item order (the MySQL loader's order).
        row.steps.sort(key=lambda s: (s.position, -1 if s.item is None else s.item["index"]))
        step.status = StepStatus.RUNNING
        step.fanout = dict(plan)
        step.started_at = step.started_at or _aware(at)
        return step_record(step)

    def items_of(self, execution_id: str, step_id: str) -> list[LockedStep]:
        row = self._row(execution_id)
        items = [s for s in (row.steps if row else [])
                 if s.item is not None and s.item["of"] == step_id]
        return [self._locked(s) for s in sorted(items, key=lambda s: s.item["index"])]

    def record_skipped(self, execution_id: str, step_id: str, *, at: datetime,
                       condition: dict[str, Any]) -> dict[str, Any]:
        step = self._step(execution_id, step_id)
        step.status = StepStatus.SKIPPED
        step.condition = dict(condition)
        step.started_at = step.ended_at = at
        return step_record(step)

    def record_waiting(self, execution_id: str, step_id: str, *, waiting: dict[str, Any],
                       result: dict[str, Any] | None = None) -> dict[str, Any]:
        step = self._step(execution_id, step_id)
        step.status = StepStatus.WAITING
        step.waiting = Waiting.model_validate(waiting)
        if result is not None:
            step.result = result
        return step_record(step)

    def update_waiting(self, execution_id: str, step_id: str,
                       **changes: Any) -> dict[str, Any]:
        step = self._step(execution_id, step_id)
        current = step.waiting.model_dump(mode="json") if step.waiting else {}
        step.waiting = Waiting.model_validate({**current, **changes})
        return step_record(step)

    def register_callback(self, callback: Callback) -> None:
        callbacks = self._store.callbacks
        for other in list(callbacks.values()):
            if (other.execution_id, other.step_id) == (callback.execution_id, callback.step_id) \
                    and other.state is CallbackState.OPEN:
                self._changed[other.id] = replace(other, state=CallbackState.SUPERSEDED)
        self._changed[callback.id] = callback

    def lock_callback(self, callback_id: str) -> Callback | None:
        return self._changed.get(callback_id) or self._store.callbacks.get(callback_id)

    def close_callback(self, callback_id: str, state: CallbackState, *, at: datetime,
                       by: str | None) -> None:
        current = self.lock_callback(callback_id)
        if current is not None:
            self._changed[callback_id] = replace(current, state=state, closed_at=_aware(at),
                                                 closed_by=by)


class InMemoryStepLedger:
    """`transactions` counts the transactions that committed; `effects` holds the built-in
    actions' committed writes, in order."""

    def __init__(self, store: InMemoryExecutionStore | None = None) -> None:
        self.store = store if store is not None else InMemoryExecutionStore()
        self.effects: list[tuple[str, Any]] = []
        self.transactions = 0
        self._lock = threading.Lock()
        self._owner: int | None = None

    @property
    def locked(self) -> bool:
        """Whether a transaction holds the (row) locks now."""
        return self._lock.locked()

    @contextmanager
    def transaction(self) -> Iterator[InMemoryLedgerTransaction]:
        if self._owner == threading.get_ident():
            # The thread would wait on its own locks (MySQL would join the two).
            raise RuntimeError("a step ledger transaction is already open in this thread")
        with self._lock:
            self._owner = threading.get_ident()
            try:
                tx = InMemoryLedgerTransaction(self.store)
                yield tx  # an error raised in the block skips the write-back: a rollback
                for row in tx.rows.values():
                    self.store.put(row)
                self.store.callbacks.update(tx.callbacks_changed)
                self.store.events.extend(tx.events)
                self.effects.extend(tx.effects)
                self.transactions += 1
            finally:
                self._owner = None

    def peek(self, execution_id: str) -> Execution | None:
        found = self.store.get(execution_id)
        return found.model_copy(update={"steps": []}) if found else None
