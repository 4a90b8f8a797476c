"""The step_callbacks table: one row per callback (migration 0011). Statements only; the
decisions are chalicelib.domain.callbacks'."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from chalicelib.adapters.mysql.executions import naive_utc
from chalicelib.domain.callbacks import Callback, CallbackState
from chalicelib.domain.step_context import Cursor


def _aware(at: datetime | None) -> datetime | None:
    return at.replace(tzinfo=UTC) if at is not None else None


def insert(cur: Cursor, callback: Callback) -> None:
    cur.execute("INSERT INTO step_callbacks (id, secret_sha256, execution_id, step_id, attempt, "
                "task_token, heartbeat_s, created_at, expires_at, state) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (callback.id, callback.secret_sha256, callback.execution_id, callback.step_id,
                 callback.attempt, callback.task_token, callback.heartbeat_s,
                 naive_utc(callback.created_at), naive_utc(callback.expires_at),
                 callback.state.value))


def supersede_open(cur: Cursor, execution_id: str, step_id: str) -> None:
    """The step's open callbacks become superseded. The caller holds the execution's row
    lock, so no other writer touches them: they are found by a plain read and changed by
    primary key. (An UPDATE searching callbacks_by_step would lock the index's gap up to the
    next entry; two executions opening their first callbacks at once each held that gap and
    waited for the other's insert into it: a deadlock between unrelated executions.)"""
    cur.execute("SELECT id FROM step_callbacks WHERE execution_id = %s AND step_id = %s "
                "AND state = %s", (execution_id, step_id, CallbackState.OPEN.value))
    for row in cur.fetchall():
        cur.execute("UPDATE step_callbacks SET state = %s WHERE id = %s AND state = %s",
                    (CallbackState.SUPERSEDED.value, row["id"], CallbackState.OPEN.value))


def lock(cur: Cursor, callback_id: str) -> Callback | None:
    cur.execute("SELECT * FROM step_callbacks WHERE id = %s FOR UPDATE", (callback_id,))
    row = cur.fetchone()
    return None if row is None else _callback(row)


def close(cur: Cursor, callback_id: str, state: CallbackState, *, at: datetime,
          by: str | None) -> None:
    cur.execute("UPDATE step_callbacks SET state = %s, closed_at = %s, closed_by = %s "
                "WHERE id = %s", (state.value, naive_utc(at), by, callback_id))


def _callback(row: dict[str, Any]) -> Callback:
    return Callback(id=row["id"], secret_sha256=row["secret_sha256"],
                    execution_id=row["execution_id"], step_id=row["step_id"],
                    attempt=int(row["attempt"]), task_token=row["task_token"],
                    created_at=_aware(row["created_at"]) or datetime.now(UTC),
                    expires_at=_aware(row["expires_at"]) or datetime.now(UTC),
                    heartbeat_s=row["heartbeat_s"], state=CallbackState(row["state"]),
                    closed_at=_aware(row["closed_at"]), closed_by=row["closed_by"])
