"""The step ledger in MySQL: row locks FOR UPDATE, one connection transaction per ledger
transaction, and the write model's own statements (chalicelib.adapters.mysql.executions)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pymysql

from chalicelib.adapters.mysql import callbacks
from chalicelib.adapters.mysql import executions as records
from chalicelib.adapters.mysql.connector import MySQLConnector
from chalicelib.adapters.mysql.executions import naive_utc
from chalicelib.domain import events
from chalicelib.domain.callbacks import Callback, CallbackState
from chalicelib.domain.executions import Execution, StepShape, Waiting
from chalicelib.domain.fanout import item_run_id
from chalicelib.domain.lifecycle import ExecutionStatus, Outcome, Phase, StepStatus
from chalicelib.domain.step_context import Cursor
from chalicelib.domain.step_runs import EventBatch, LockedExecution, LockedStep


def _aware(at: datetime | None) -> datetime | None:
    return at.replace(tzinfo=UTC) if at is not None else None


def _error(raw: Any) -> dict[str, Any] | None:
    return json.loads(raw) if isinstance(raw, str | bytes) else raw


def _locked(run: dict[str, Any]) -> LockedStep:
    """A step run's row as the runtime reads it under its lock."""
    return LockedStep(step_id=run["step_id"], status=StepStatus(run["status"]),
                      action_attempts=int(run["action_attempts"]),
                      compensation_attempts=int(run["compensation_attempts"]),
                      result=json.loads(run["result"]) if run["result"] else None,
                      error=json.loads(run["error"]) if run["error"] else None,
                      retry_base=int(run.get("retry_base") or 0),
                      action_deadline=_aware(run.get("action_deadline")),
                      waiting=Waiting.model_validate(_error(run["waiting"]))
                      if run.get("waiting") else None,
                      child=run.get("child_execution_id"))


class MySQLLedgerTransaction:
    def __init__(self, cur: Cursor) -> None:
        self._cur = cur
        # The rows locked here: their last_sequence continues the events' numbering, and
        # the full row is parsed into an Execution only if asked (its input may be large).
        self._rows: dict[str, dict[str, Any]] = {}

    @property
    def cursor(self) -> Cursor:
        return self._cur

    def lock_execution(self, execution_id: str) -> LockedExecution | None:
        row = records.lock_execution(self._cur, execution_id)
        if row is None:
            return None
        self._rows[execution_id] = row
        return LockedExecution(id=row["id"], saga_id=row["saga_id"],
                               revision=int(row["revision"]),
                               status=ExecutionStatus(row["status"]), error=_error(row["error"]))

    def lock_step(self, execution_id: str, step_id: str) -> LockedStep | None:
        run = records.lock_step_run(self._cur, execution_id, step_id)
        return None if run is None else _locked(run)


    def load_execution(self, execution_id: str) -> Execution:
        return records.row_to_execution(self._rows[execution_id])

    def results(self, execution_id: str) -> dict[str, dict[str, Any]]:
        return records.step_results(self._cur, execution_id)

    def next_step(self, execution_id: str, step_id: str) -> str | None:
        self._cur.execute("SELECT step_id FROM step_runs WHERE execution_id = %s AND position > "
                          "(SELECT position FROM step_runs WHERE execution_id = %s AND "
                          "step_id = %s) AND item_of IS NULL ORDER BY position LIMIT 1",
                          (execution_id, execution_id, step_id))
        row = self._cur.fetchone()
        return row["step_id"] if row else None

    def steps_in(self, execution_id: str, status: StepStatus) -> list[str]:
        self._cur.execute("SELECT step_id FROM step_runs WHERE execution_id = %s AND "
                          "status = %s AND item_of IS NULL ORDER BY position",
                          (execution_id, status.value))
        return [row["step_id"] for row in self._cur.fetchall()]

    def record_attempt(self, execution_id: str, step_id: str, *, phase: Phase, attempt: int,
                       outcome: Outcome, started: datetime, ended: datetime,
                       error_type: str | None = None, error_message: str | None = None,
                       sent: dict[str, Any] | None = None) -> None:
        records.insert_attempt(self._cur, execution_id, step_id, phase=phase, attempt=attempt,
                               outcome=outcome, started=naive_utc(started), ended=naive_utc(ended),
                               error_type=error_type, error_message=error_message, sent=sent)

    def claim_attempt(self, execution_id: str, step_id: str, *, phase: Phase,
                      deadline: datetime, expect_by: datetime | None = None) -> int:
        row = self._rows.get(execution_id)
        if expect_by is None or row is None:
            attempt = records.claim_attempt(self._cur, execution_id, step_id, phase=phase,
                                            deadline=naive_utc(deadline))
            if expect_by is not None:  # not locked here: on its own
                self.expect_by(execution_id, expect_by)
            return attempt
        # Locked here: the moment folded in from the row as locked, written with the count.
        kept = records.expected_after(row, naive_utc(expect_by))
        return records.claim_attempt(self._cur, execution_id, step_id, phase=phase,
                                     deadline=naive_utc(deadline), expected_by=kept)

    def record_outcome(self, execution_id: str, step_id: str, *, status: StepStatus,
                       phase: Phase, at: datetime, started: datetime,
                       result: dict[str, Any] | None = None,
                       error: dict[str, Any] | None = None,
                       claimed: bool = False,
                       answered_by: datetime | None = None) -> dict[str, Any]:
        records.update_step_run(self._cur, execution_id, step_id, status=status, phase=phase,
                                at=naive_utc(at), result=result, error=error,
                                started=naive_utc(started), count_attempt=not claimed,
                                answered_by=None if answered_by is None
                                else naive_utc(answered_by))
        return records.step_record(self._cur, execution_id, step_id)

    def record_skipped(self, execution_id: str, step_id: str, *, at: datetime,
                       condition: dict[str, Any]) -> dict[str, Any]:
        self._cur.execute("UPDATE step_runs SET status = %s, step_condition = %s, "
                          "started_at = %s, ended_at = %s "
                          "WHERE execution_id = %s AND step_id = %s",
                          (StepStatus.SKIPPED.value, records.json_text(condition),
                           naive_utc(at), naive_utc(at), execution_id, step_id))
        return records.step_record(self._cur, execution_id, step_id)

    def start_items(self, execution_id: str, step_id: str, *, count: int,
                    plan: dict[str, Any], at: datetime) -> dict[str, Any]:
        # The items share their step's position, group and kind; a repeated start adds none.
        self._cur.execute("SELECT position, step_group, kind FROM step_runs "
                          "WHERE execution_id = %s AND step_id = %s", (execution_id, step_id))
        own = self._cur.fetchone()
        if own is not None and count:
            self._cur.executemany(
                "INSERT IGNORE INTO step_runs (execution_id, step_id, position, status, "
                "step_group, kind, item_of, item_index) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                [(execution_id, item_run_id(step_id, index), own["position"],
                  StepStatus.PENDING.value, own["step_group"], own["kind"], step_id, index)
                 for index in range(count)])
        self._cur.execute("UPDATE step_runs SET status = %s, fanout = %s, "
                          "started_at = COALESCE(started_at, %s) "
                          "WHERE execution_id = %s AND step_id = %s",
                          (StepStatus.RUNNING.value, records.json_text(plan), naive_utc(at),
                           execution_id, step_id))
        return records.step_record(self._cur, execution_id, step_id)

    def add_execution(self, execution: Execution, shapes: Sequence[StepShape]) -> bool:
        try:
            records.insert_execution(self._cur, execution, shapes, last_sequence=1)
        except pymysql.IntegrityError as error:
            if error.args[0] != records.DUPLICATE_ENTRY:
                raise
            return False  # only the failed statement was undone
        records.insert_execution_event(self._cur, events.execution_started(execution, shapes),
                                       execution_id=execution.id, sequence=1,
                                       at=naive_utc(execution.started_at))
        return True

    def start_child(self, execution_id: str, step_id: str, *, child_id: str,
                    at: datetime) -> dict[str, Any]:
        self._cur.execute("UPDATE step_runs SET status = %s, action_attempts = action_attempts "
                          "+ 1, child_execution_id = %s, started_at = COALESCE(started_at, %s) "
                          "WHERE execution_id = %s AND step_id = %s",
                          (StepStatus.RUNNING.value, child_id, naive_utc(at), execution_id,
                           step_id))
        return records.step_record(self._cur, execution_id, step_id)

    def items_of(self, execution_id: str, step_id: str) -> list[LockedStep]:
        self._cur.execute("SELECT * FROM step_runs WHERE execution_id = %s AND item_of = %s "
                          "ORDER BY item_index", (execution_id, step_id))
        return [_locked(run) for run in self._cur.fetchall()]

    def set_execution_status(self, execution_id: str, status: ExecutionStatus, *,
                             at: datetime, error: dict[str, Any] | None = None,
                             by_operator: bool = False) -> bool:
        return records.set_execution_status(self._cur, execution_id, status, at=naive_utc(at),
                                            error=error, by_operator=by_operator)

    def set_execution_error(self, execution_id: str, error: dict[str, Any]) -> None:
        records.set_execution_error(self._cur, execution_id, error)

    def set_execution_output(self, execution_id: str, output: dict[str, Any] | None,
                             error: dict[str, Any] | None = None) -> None:
        self._cur.execute("UPDATE executions SET output = %s, output_error = %s WHERE id = %s",
                          (None if output is None else json.dumps(output),
                           None if error is None else json.dumps(error), execution_id))

    def append_events(self, execution_id: str, batch: EventBatch) -> None:
        timed = [(event, naive_utc(at)) for event, at in batch]
        row = self._rows.get(execution_id)
        if row is not None:
            # Locked here: continue from the last_sequence read under the lock.
            records.append_events(self._cur, row, timed)
            return
        for event, at in timed:
            records.record_event(self._cur, event, execution_id=execution_id, at=at)

    def expect_by(self, execution_id: str, at: datetime) -> None:
        # Locked here: its expected_by as read under the lock (and kept up to date).
        records.expect_by(self._cur, execution_id, naive_utc(at),
                          current=self._rows.get(execution_id))


    # -- steps that wait

    def record_waiting(self, execution_id: str, step_id: str, *, waiting: dict[str, Any],
                       result: dict[str, Any] | None = None) -> dict[str, Any]:
        self._cur.execute("UPDATE step_runs SET status = %s, waiting = %s, "
                          "result = COALESCE(%s, result) "
                          "WHERE execution_id = %s AND step_id = %s",
                          (StepStatus.WAITING.value, records.json_text(waiting),
                           None if result is None else records.json_text(result),
                           execution_id, step_id))
        return records.step_record(self._cur, execution_id, step_id)

    def update_waiting(self, execution_id: str, step_id: str,
                       **changes: Any) -> dict[str, Any]:
        self._cur.execute("SELECT waiting FROM step_runs WHERE execution_id = %s AND "
                          "step_id = %s", (execution_id, step_id))
        row = self._cur.fetchone() or {}
        waiting = {**(_error(row.get("waiting")) or {}), **changes}
        self._cur.execute("UPDATE step_runs SET waiting = %s WHERE execution_id = %s AND "
                          "step_id = %s", (records.json_text(waiting), execution_id, step_id))
        return records.step_record(self._cur, execution_id, step_id)

    def register_callback(self, callback: Callback) -> None:
        callbacks.supersede_open(self._cur, callback.execution_id, callback.step_id)
        callbacks.insert(self._cur, callback)

    def lock_callback(self, callback_id: str) -> Callback | None:
        return callbacks.lock(self._cur, callback_id)

    def close_callback(self, callback_id: str, state: CallbackState, *, at: datetime,
                       by: str | None) -> None:
        callbacks.close(self._cur, callback_id, state, at=naive_utc(at), by=by)


class MySQLStepLedger:
    def __init__(self, connector: MySQLConnector) -> None:
        self._db = connector

    @contextmanager
    def transaction(self) -> Iterator[MySQLLedgerTransaction]:
        with self._db.transaction() as cur:
            yield MySQLLedgerTransaction(cur)

    def peek(self, execution_id: str) -> Execution | None:
        with self._db.transaction() as cur:
            return records.load_execution(cur, execution_id, with_steps=False)
