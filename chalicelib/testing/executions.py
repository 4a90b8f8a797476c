"""Executions in memory: the write model (ExecutionStore). The store keeps its events in
`events`, the way the outbox would."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib.domain import events
from chalicelib.domain import expected_by as expected
from chalicelib.domain.callbacks import Callback
from chalicelib.domain.errors import NotFound
from chalicelib.domain.executions import Execution, StepRun, StepShape, awaits_approval
from chalicelib.domain.lifecycle import (
    ACTIVE,
    ExecutionStatus,
    StepStatus,
    accepts_decision,
    can_resolve,
    can_transition,
    needs_attention,
)
from chalicelib.testing.definitions import InMemoryDefinitionStore
from chalicelib.testing.outbox import outbox_envelope
from chalicelib.usecases.ports import ExecutionPage, ExecutionQuery, RunRef


def _iso(at: datetime | None) -> str | None:
    return None if at is None else (at if at.tzinfo else at.replace(tzinfo=UTC)).isoformat()


def step_record(step: StepRun) -> dict[str, Any]:
    """A step's recorded state as events carry it (the MySQL ledger's step_record)."""
    return {"status": step.status.value, "action_attempts": step.action_attempts,
            "group": step.group, "kind": None if step.kind is None else step.kind.value,
            "compensation_attempts": step.compensation_attempts, "error": step.error,
            "started_at": _iso(step.started_at), "ended_at": _iso(step.ended_at),
            "compensated_at": _iso(step.compensated_at),
            "waiting": None if step.waiting is None else step.waiting.record(),
            "condition": step.condition, "fanout": step.fanout, "item": step.item,
            "child": step.child}


def _matches(execution: Execution, query: ExecutionQuery) -> bool:
    return ((query.saga_id is None or execution.saga_id == query.saga_id)
            and (query.status is None or execution.status == query.status)
            and (query.started_after is None or execution.started_at >= query.started_after)
            and (query.started_before is None or execution.started_at < query.started_before)
            and (query.needs_attention is None or query.needs_attention == needs_attention(
                execution.status, execution.resolved_by,
                awaiting_approval=any(awaits_approval(step) for step in execution.steps)))
            and (query.resolved is None
                 or query.resolved == (execution.resolved_by is not None))
            and (query.q is None or query.q in (execution.id, execution.saga_id)))


def newest_first(found: list[Execution], query: ExecutionQuery) -> ExecutionPage:
    """Newest first; the cursor is the last id seen (the real ones encode time and id)."""
    items = sorted((e for e in found if _matches(e, query)),
                   key=lambda e: (e.started_at, e.id), reverse=True)
    if query.cursor is not None:
        ids = [e.id for e in items]
        if query.cursor not in ids:
            raise ValueError("cursor is not one this listing gave out")
        items = items[ids.index(query.cursor) + 1:]
    page = items[:query.limit]
    return ExecutionPage(page, page[-1].id if len(items) > query.limit and page else None)


class InMemoryExecutionStore:
    def __init__(self, definitions: InMemoryDefinitionStore | None = None) -> None:
        self._definitions = definitions  # given: create refuses a saga that does not exist
        self._rows: dict[str, Execution] = {}
        self.events: list[dict[str, Any]] = []
        # The step ledger's callbacks, by id (the step_callbacks table).
        self.callbacks: dict[str, Callback] = {}
        # MySQL's row lock: an operator's check and change happen as one, even from threads.
        self._lock = threading.RLock()

    def _sequence(self, execution_id: str) -> int:
        return sum(1 for e in self.events if e["key"] == execution_id)

    def _emit(self, event: events.Event, execution_id: str, at: datetime | None = None) -> None:
        self.events.append(outbox_envelope(event, key=execution_id,
                                           subject=f"execution/{execution_id}",
                                           sequence=self._sequence(execution_id) + 1, at=at))

    def _view(self, row: Execution) -> Execution:
        """A copy as the MySQL store reads it: the write model's view, and its last event."""
        return row.model_copy(update={"consistency": {
            "source": "write_model", "sequence": self._sequence(row.id)}}, deep=True)

    def put(self, execution: Execution) -> None:
        """Set a row as it is (a test's given state)."""
        self._rows[execution.id] = execution.model_copy(deep=True)

    def create(self, execution: Execution,
               shapes: Sequence[StepShape]) -> tuple[Execution, bool]:
        if self._definitions is not None and self._definitions.get(execution.saga_id) is None:
            raise NotFound(f"saga {execution.saga_id!r} does not exist",
                           saga_id=execution.saga_id)
        if execution.id in self._rows:
            return self._view(self._rows[execution.id]), False
        steps = [StepRun(step_id=shape.step_id, position=i, group=shape.group, kind=shape.kind,
                         status=StepStatus.PENDING)
                 for i, shape in enumerate(shapes, start=1)]
        self._rows[execution.id] = execution.model_copy(update={
            "steps": steps, "expected_by": None if execution.status.is_final
            else expected.at_start(execution.started_at)}, deep=True)
        self._emit(events.execution_started(execution, shapes), execution.id,
                   at=execution.started_at)
        return self._view(self._rows[execution.id]), True

    def get(self, execution_id: str) -> Execution | None:
        with self._lock:  # never a row half way through a change
            row = self._rows.get(execution_id)
            return self._view(row) if row else None

    def list(self, query: ExecutionQuery) -> ExecutionPage:
        page = newest_first(list(self._rows.values()), query)
        return ExecutionPage([self._view(e) for e in page.items], page.next_cursor)

    def latest(self, saga_id: str, status: ExecutionStatus | None = None) -> Execution | None:
        found = newest_first(list(self._rows.values()),
                      ExecutionQuery(limit=1, saga_id=saga_id, status=status)).items
        return self._view(found[0]) if found else None

    def mark_started(self, execution_id: str, run: RunRef) -> Execution | None:
        with self._lock:
            row = self._rows.get(execution_id)
            if row is None:
                return None
            if run.run is not None and row.sfn_execution_arn == run.run:
                return self._view(row)  # the same run started again: recorded once
            row.state_machine_arn, row.sfn_execution_arn = run.where, run.run
            row.updated_at = datetime.now(UTC)
            # As MySQL: the row's change and its event at one moment.
            self._emit(events.run_started(saga_id=row.saga_id, state_machine_arn=run.where,
                                          run_arn=run.run), execution_id, at=row.updated_at)
            return self._view(row)

    def transition(self, execution_id: str, allowed_from: AbstractSet[ExecutionStatus],
                   to: ExecutionStatus, event_type: str, data: dict[str, Any],
                   error: dict[str, Any] | None = None, *,
                   by_operator: bool = False) -> Execution | None:
        with self._lock:
            row = self._rows.get(execution_id)
            if row is None or row.status not in allowed_from or not can_transition(
                    row.status, to, by_operator=by_operator, resolved_by=row.resolved_by):
                return None
            now = datetime.now(UTC)
            # As MySQL: a final execution expects nothing more, one active again moves at once.
            update: dict[str, Any] = {"status": to, "updated_at": now,
                                      "ended_at": now if to.is_final else None,
                                      "expected_by": None if to.is_final
                                      else row.expected_by or now}
            if error is not None:
                update["error"] = error
            self._rows[execution_id] = Execution.model_validate({**row.model_dump(), **update})
            self._emit(events.moved(event_type, saga_id=row.saga_id, status=to,
                                    execution_error=error or events.ABSENT, **data),
                       execution_id, at=now)
            return self.get(execution_id)

    def resume(self, execution_id: str, steps: Sequence[str], by: str) -> Execution | None:
        with self._lock:
            row = self._rows.get(execution_id)
            if row is None or row.status is not ExecutionStatus.PARKED or \
                    not accepts_decision(row.resolved_by):
                return None
            row.status, row.error, row.ended_at = ExecutionStatus.RUNNING, None, None
            row.updated_at = datetime.now(UTC)
            row.expected_by = row.expected_by or row.updated_at
            for step in row.steps:
                if step.step_id in steps:
                    step.status, step.error, step.ended_at = StepStatus.PENDING, None, None
                    step.waiting = None
                    step.retry_base = step.action_attempts
            self._emit(events.saga_resumed(
                saga_id=row.saga_id, status=ExecutionStatus.RUNNING, by=by,
                steps=[{"step_id": s.step_id, **step_record(s)}  # in the order asked
                       for step_id in steps for s in row.steps if s.step_id == step_id]),
                execution_id,
                at=row.updated_at)
            return self.get(execution_id)

    def resolve(self, execution_id: str, by: str, reason: str) -> Execution | None:
        with self._lock:
            row = self._rows.get(execution_id)
            if row is None or not can_resolve(row.status, row.resolved_by):
                return None
            # As MySQL: the decision's time is the row's last change (nothing moves it after).
            row.resolved_by, row.resolution = by, reason
            row.updated_at = row.resolved_at = datetime.now(UTC)
            self._emit(events.saga_resolved(saga_id=row.saga_id, by=by, reason=reason),
                       execution_id, at=row.updated_at)
            return self.get(execution_id)

    def count_active(self, saga_id: str) -> int:
        return sum(1 for e in self._rows.values() if e.saga_id == saga_id and e.status in ACTIVE)

    def pinned_revisions(self, saga_id: str) -> list[int]:
        return sorted({e.revision for e in self._rows.values() if e.saga_id == saga_id})

    def unsettled(self, grace_seconds: float, limit: int) -> list[Execution]:
        # As MySQL: a row with no expected moment (a test's given state) is due by its last
        # change.
        cutoff = datetime.now(UTC) - timedelta(seconds=grace_seconds)
        due = {e.id: e.expected_by or e.updated_at for e in self._rows.values()
               if e.status in ACTIVE}
        overdue = sorted((at, execution_id) for execution_id, at in due.items() if at < cutoff)
        return [self._view(self._rows[execution_id]) for _, execution_id in overdue[:limit]]
