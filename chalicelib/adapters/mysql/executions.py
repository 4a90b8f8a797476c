"""Executions, step runs, attempts and outbox events in MySQL.

Functions take a cursor so that callers compose them into one transaction: an action's effect,
its step status, its attempt and its events commit together or not at all.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from datetime import UTC, datetime
from typing import Any

import pymysql

from chalicelib.adapters.cursors import decode_time_cursor, encode_cursor
from chalicelib.domain import events
from chalicelib.domain import expected_by as expected
from chalicelib.domain.errors import NotFound
from chalicelib.domain.executions import (
    Attempt,
    Execution,
    ExecutionStatus,
    ParentRef,
    StepRun,
    StepShape,
    StepStatus,
    Waiting,
)
from chalicelib.domain.lifecycle import (
    ACTIVE,
    AWAITING_APPROVAL,
    NEEDS_ATTENTION,
    RESOLVABLE,
    Phase,
    accepts_decision,
    can_resolve,
)
from chalicelib.domain.lifecycle import allowed_from as sources_of
from chalicelib.domain.step_context import Cursor
from chalicelib.usecases.ports import ExecutionPage, ExecutionQuery, RunRef

# ER_DUP_ENTRY: an INSERT met a row with its key.
DUPLICATE_ENTRY = 1062
# The statuses of executions still going, as query parameters (an IN list of this size).
_ACTIVE_VALUES = tuple(sorted(status.value for status in ACTIVE))
_ACTIVE_MARKS = ", ".join(["%s"] * len(_ACTIVE_VALUES))
_RESOLVABLE_VALUES = tuple(sorted(status.value for status in RESOLVABLE))
_RESOLVABLE_MARKS = ", ".join(["%s"] * len(_RESOLVABLE_VALUES))
# lifecycle.accepts_decision in SQL: an operator's change never touches a resolved execution.
_UNDECIDED = "resolved_by IS NULL"
# lifecycle.needs_attention in SQL (the triage queue): an end to look at, not resolved, or a
# running execution with an approval step waiting (domain.executions.awaits_approval).
_ATTENTION_VALUES = (*sorted(status.value for status in NEEDS_ATTENTION),
                     AWAITING_APPROVAL.value, StepStatus.WAITING.value)
_NEEDS_ATTENTION = (f"((status IN ({', '.join(['%s'] * len(NEEDS_ATTENTION))}) "
                    f"AND {_UNDECIDED}) OR (status = %s AND EXISTS (SELECT 1 FROM step_runs w "
                    "WHERE w.execution_id = executions.id AND w.status = %s "
                    "AND JSON_CONTAINS(w.waiting, 'true', '$.approval') "
                    "AND JSON_VALUE(w.waiting, '$.completed_at') IS NULL)))")


def now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _utc(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value is not None else None


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, default=str)


def json_text(value: Any) -> str | None:
    """A value as a JSON column holds it (None stays NULL)."""
    return _json(value)


def _load(value: Any) -> Any:
    return None if value is None else json.loads(value)


# -- events ----------------------------------------------------------------------

_INSERT_OUTBOX = ("INSERT INTO outbox (event_id, partition_key, sequence, type, envelope, "
                  "created_at) VALUES (%s, %s, %s, %s, %s, %s)")


def _outbox_row(event_type: str, *, key: str, subject: str, sequence: int,
                data: dict[str, Any], at: datetime) -> tuple[dict[str, Any], tuple[Any, ...]]:
    """An event's envelope, and its outbox row."""
    event = events.envelope(event_type, key=key, subject=subject, sequence=sequence, data=data,
                            time=at.replace(tzinfo=UTC))
    return event, (event["id"], key, sequence, event_type, json.dumps(event), at)


def append_event(cur: Cursor, event_type: str, *, execution_id: str, data: dict[str, Any],
                 at: datetime) -> dict[str, Any]:
    """Outbox row for an execution event; the sequence comes from the (locked) execution row."""
    cur.execute("UPDATE executions SET last_sequence = last_sequence + 1 WHERE id = %s",
                (execution_id,))
    cur.execute("SELECT last_sequence FROM executions WHERE id = %s", (execution_id,))
    row = cur.fetchone()
    assert row is not None, f"no execution {execution_id}"
    return _insert_event(cur, event_type, key=execution_id, subject=f"execution/{execution_id}",
                         sequence=row["last_sequence"], data=data, at=at)


def record_event(cur: Cursor, event: events.Event, *, execution_id: str,
                 at: datetime) -> dict[str, Any]:
    """A built event of an execution, persisted as it is in the caller's transaction."""
    return append_event(cur, event.type, execution_id=execution_id, data=event.data, at=at)


def insert_execution_event(cur: Cursor, event: events.Event, *, execution_id: str,
                           sequence: int, at: datetime) -> dict[str, Any]:
    """An execution's event at the sequence the caller took from its row (locked, or inserted
    in this transaction) and wrote back there itself: no read of it."""
    return _insert_event(cur, event.type, key=execution_id, subject=f"execution/{execution_id}",
                         sequence=sequence, data=event.data, at=at)


def append_events(cur: Cursor, execution: dict[str, Any],
                  batch: list[tuple[events.Event, datetime]]) -> None:
    """Several events of one execution in two statements. The caller holds the execution's
    row lock, so its last_sequence (read under that lock) is the one to continue from."""
    if not batch:
        return
    execution_id = execution["id"]
    first = int(execution["last_sequence"]) + 1
    rows = [_outbox_row(event.type, key=execution_id, subject=f"execution/{execution_id}",
                        sequence=first + offset, data=event.data, at=at)[1]
            for offset, (event, at) in enumerate(batch)]
    cur.executemany(_INSERT_OUTBOX, rows)
    last = first + len(batch) - 1
    cur.execute("UPDATE executions SET last_sequence = %s WHERE id = %s", (last, execution_id))
    execution["last_sequence"] = last


def append_definition_event(cur: Cursor, event: events.Event, *, saga_id: str,
                            at: datetime) -> dict[str, Any]:
    # Callers hold the saga's header row lock, so MAX + 1 cannot race. (An execution may
    # have been given the same id as a saga: definition events count on their own.)
    cur.execute("SELECT COALESCE(MAX(sequence), 0) + 1 AS next FROM outbox "
                "WHERE partition_key = %s AND type LIKE 'saga.definition.%%'", (saga_id,))
    sequence = cur.fetchone()["next"]  # type: ignore[index]
    return _insert_event(cur, event.type, key=saga_id, subject=f"saga/{saga_id}",
                         sequence=sequence, data=event.data, at=at)


def _insert_event(cur: Cursor, event_type: str, *, key: str, subject: str, sequence: int,
                  data: dict[str, Any], at: datetime) -> dict[str, Any]:
    event, row = _outbox_row(event_type, key=key, subject=subject, sequence=sequence,
                             data=data, at=at)
    cur.execute(_INSERT_OUTBOX, row)
    return event


# -- executions ----------------------------------------------------------------------

# The executions columns a new row leaves at their default (NULL).
_UNWRITTEN: dict[str, Any] = dict.fromkeys((
    "error", "output", "output_error", "sfn_execution_arn", "ended_at", "resolved_by",
    "resolution"))


def insert_execution(cur: Cursor, execution: Execution, steps: Sequence[StepShape], *,
                     last_sequence: int = 0) -> Execution:
    """Insert the execution and its steps (PENDING, in one multi-row statement); return them
    as written, which is what load_execution would read back. last_sequence: the events the
    caller writes with it in this transaction (numbered 1 on)."""
    expected_by = (None if execution.status.is_final
                   else naive_utc(expected.at_start(execution.started_at)))
    written = {
        "id": execution.id, "saga_id": execution.saga_id, "revision": execution.revision,
        "version": execution.version, "status": execution.status.value,
        "input": json.dumps(execution.input),
        "faults": _json([f.model_dump() for f in execution.faults]),
        "state_machine_arn": execution.state_machine_arn,
        "started_at": naive_utc(execution.started_at),
        "updated_at": naive_utc(execution.updated_at), "expected_by": expected_by,
        "last_sequence": last_sequence, "depth": execution.depth,
        "parent_execution_id": execution.parent.execution_id if execution.parent else None,
        "parent_step_id": execution.parent.step_id if execution.parent else None}
    cur.execute(f"INSERT INTO executions ({', '.join(written)}) "
                f"VALUES ({', '.join(['%s'] * len(written))})", tuple(written.values()))
    runs = [StepRun(step_id=shape.step_id, position=position, group=shape.group,
                    kind=shape.kind, status=StepStatus.PENDING)
            for position, shape in enumerate(steps, start=1)]
    # executemany sends one multi-row INSERT.
    cur.executemany("INSERT INTO step_runs (execution_id, step_id, position, status, "
                    "step_group, kind) VALUES (%s, %s, %s, %s, %s, %s)",
                    [(execution.id, run.step_id, run.position, run.status.value, run.group,
                      run.kind.value if run.kind is not None else None) for run in runs])
    # MySQL has no INSERT ... RETURNING (MariaDB has): the row is what the statement set,
    # the columns it left out at their defaults.
    inserted = row_to_execution({**_UNWRITTEN, **written})
    inserted.steps = runs
    return inserted


def lock_execution(cur: Cursor, execution_id: str) -> dict[str, Any] | None:
    cur.execute("SELECT * FROM executions WHERE id = %s FOR UPDATE", (execution_id,))
    return cur.fetchone()


def set_execution_status(cur: Cursor, execution_id: str, status: ExecutionStatus, *,
                         at: datetime, error: dict[str, Any] | None = None,
                         by_operator: bool = False) -> bool:
    """Move to `status` if the domain's transition table allows it from the current one
    (an operator's action only while the execution is not resolved); False (nothing written)
    if not, so a late writer loses without a trace. A final execution expects nothing more
    (expected_by NULL); one made active again (an operator's retry or compensation) is
    expected to move at once."""
    sources = sorted(s.value for s in sources_of(status, by_operator=by_operator))
    if not sources:
        return False
    ended = at if status.is_final else None
    expect = "NULL" if status.is_final else "COALESCE(expected_by, %s)"
    marks = ", ".join(["%s"] * len(sources))
    undecided = f" AND {_UNDECIDED}" if by_operator else ""
    cur.execute("UPDATE executions SET status = %s, updated_at = %s, ended_at = %s, "
                f"expected_by = {expect}, error = COALESCE(%s, error) "
                f"WHERE id = %s AND status IN ({marks}){undecided}",
                (status.value, at, ended, *(() if status.is_final else (at,)), _json(error),
                 execution_id, *sources))
    return bool(cur.rowcount)


def expected_after(row: dict[str, Any], at: datetime) -> datetime | None:
    """The expected moment of a locked execution row once it must next move by `at` (naive
    UTC), as expected_by.moved folds it; None (nothing to write) if the row has ended. The
    row's own expected_by is brought up to date, for the rest of the transaction."""
    if ExecutionStatus(row["status"]).is_final:
        return None
    row["expected_by"] = expected.moved(row.get("expected_by"), at)
    return row["expected_by"]


def expect_by(cur: Cursor, execution_id: str, at: datetime,
              current: dict[str, Any] | None = None) -> None:
    """The execution must next move by `at` (naive UTC): folded into the moment kept
    (expected_by.moved). `current`: its row as locked in this transaction, if it is;
    otherwise the row is locked here. Nothing for an execution that is not active."""
    if current is None:
        cur.execute("SELECT status, expected_by FROM executions WHERE id = %s FOR UPDATE",
                    (execution_id,))
        current = cur.fetchone()
        if current is None:
            return
    kept = expected_after(current, at)
    if kept is not None:
        cur.execute(f"UPDATE executions SET expected_by = %s WHERE id = %s "
                    f"AND status IN ({_ACTIVE_MARKS})", (kept, execution_id, *_ACTIVE_VALUES))


def set_run(cur: Cursor, row: dict[str, Any], state_machine_arn: str,
            sfn_execution_arn: str | None, at: datetime) -> int:
    """Keep a started run's ref on the execution's locked `row`, and take the sequence of the
    event that says so (the caller writes it); `row` is brought up to date with what was
    written, for the rest of the transaction."""
    sequence = int(row["last_sequence"]) + 1
    cur.execute("UPDATE executions SET state_machine_arn = %s, sfn_execution_arn = %s, "
                "updated_at = %s, last_sequence = %s WHERE id = %s",
                (state_machine_arn, sfn_execution_arn, at, sequence, row["id"]))
    row.update(state_machine_arn=state_machine_arn, sfn_execution_arn=sfn_execution_arn,
               updated_at=at, last_sequence=sequence)
    return sequence


def resolve_execution(cur: Cursor, execution_id: str, *, by: str, reason: str,
                      at: datetime) -> bool:
    """Record the decision if none was taken and the execution is still resolvable (the
    lifecycle's can_resolve, as a guard); False (nothing written) if not."""
    cur.execute("UPDATE executions SET resolved_by = %s, resolution = %s, updated_at = %s "
                f"WHERE id = %s AND {_UNDECIDED} AND status IN ({_RESOLVABLE_MARKS})",
                (by, reason, at, execution_id, *_RESOLVABLE_VALUES))
    return bool(cur.rowcount)


# -- step runs and attempts ----------------------------------------------------------------------

def lock_step_run(cur: Cursor, execution_id: str, step_id: str) -> dict[str, Any] | None:
    cur.execute("SELECT * FROM step_runs WHERE execution_id = %s AND step_id = %s FOR UPDATE",
                (execution_id, step_id))
    return cur.fetchone()


def claim_attempt(cur: Cursor, execution_id: str, step_id: str, *, phase: Phase,
                  deadline: datetime, expected_by: datetime | None = None) -> int:
    """Counts an attempt as it is admitted; an action's keeps its latest deadline.
    expected_by: the execution's new expected moment, written by the same statement."""
    counter = f"{Phase(phase).value}_attempts"  # action_attempts | compensation_attempts
    keep_deadline = (", s.action_deadline = GREATEST(COALESCE(s.action_deadline, %s), %s)"
                     if phase is Phase.ACTION else "")
    args: tuple[Any, ...] = (deadline, deadline) if phase is Phase.ACTION else ()
    expect = ""
    if expected_by is not None:  # an ended execution expects nothing
        expect = f", e.expected_by = IF(e.status IN ({_ACTIVE_MARKS}), %s, e.expected_by)"
        args = (*args, *_ACTIVE_VALUES, expected_by)
    joined = " JOIN executions e ON e.id = s.execution_id" if expect else ""
    # LAST_INSERT_ID(expr) hands the new count back with the UPDATE's own answer: one round
    # trip, no SELECT (the execution's row joined in, its expected moment too).
    cur.execute(f"UPDATE step_runs s{joined} SET s.{counter} = LAST_INSERT_ID(s.{counter} + 1)"
                f"{keep_deadline}{expect} WHERE s.execution_id = %s AND s.step_id = %s",
                (*args, execution_id, step_id))
    return int(cur.lastrowid or 0)


def update_step_run(cur: Cursor, execution_id: str, step_id: str, *, status: StepStatus,
                    phase: str, at: datetime, result: dict[str, Any] | None = None,
                    error: dict[str, Any] | None = None, count_attempt: bool = True,
                    started: datetime | None = None,
                    answered_by: datetime | None = None) -> None:
    """started: when this attempt started (a step starts with its first attempt); an action
    attempt's end is the step's end, a successful compensation's its compensated_at.
    answered_by: an action attempt's deadline that it answered by; the kept deadline is
    released (in the same statement) unless a later attempt's is kept."""
    counter = f"{Phase(phase).value}_attempts"  # action_attempts | compensation_attempts
    increment = 1 if count_attempt else 0
    ended = at if phase == Phase.ACTION else None
    compensated = at if status is StepStatus.COMPENSATED else None
    release = (", action_deadline = IF(action_deadline <= %s, NULL, action_deadline)"
               if answered_by is not None else "")
    cur.execute(
        f"UPDATE step_runs SET status = %s, {counter} = {counter} + %s, "
        "result = COALESCE(%s, result), error = %s, "
        "started_at = COALESCE(started_at, %s), ended_at = COALESCE(%s, ended_at), "
        f"compensated_at = COALESCE(%s, compensated_at){release} "
        "WHERE execution_id = %s AND step_id = %s",
        (status.value, increment, _json(result), _json(error), started or at, ended,
         compensated, *((answered_by,) if answered_by is not None else ()),
         execution_id, step_id))


def step_record(cur: Cursor, execution_id: str, step_id: str) -> dict[str, Any]:
    """A step's recorded state as events carry it, so the read model copies it exactly."""
    cur.execute("SELECT status, error, action_attempts, compensation_attempts, started_at, "
                "ended_at, compensated_at, step_group, kind, waiting, step_condition, fanout, "
                "item_of, item_index, child_execution_id FROM step_runs "
                "WHERE execution_id = %s AND step_id = %s",
                (execution_id, step_id))
    row = cur.fetchone() or {}
    return {**{key: row.get(key) for key in ("status", "action_attempts",
                                             "compensation_attempts", "kind")},
            "group": row.get("step_group"),
            "error": _load(row.get("error")),
            **{key: _iso(row.get(key)) for key in ("started_at", "ended_at",
                                                    "compensated_at")},
            "waiting": waiting_record(row.get("waiting")),
            "condition": _load(row.get("step_condition")),
            "fanout": _load(row.get("fanout")),
            "item": item_record(row.get("item_of"), row.get("item_index")),
            "child": row.get("child_execution_id")}


def item_record(of: str | None, index: int | None) -> dict[str, Any] | None:
    """Which fan-out and item a run is, as records and events carry it."""
    return None if of is None else {"of": of, "index": index}


def waiting_record(value: Any) -> dict[str, Any] | None:
    """A step's wait (the JSON column step_runs.waiting) as events carry it and the loader
    reads it: the Waiting model's fields, its times ISO-8601 in UTC (a time stored without a
    zone is UTC); None when the step has no wait."""
    loaded = _load(value) if isinstance(value, str | bytes) else value
    return None if loaded is None else Waiting.model_validate(loaded).record()


def set_execution_error(cur: Cursor, execution_id: str, error: dict[str, Any]) -> None:
    cur.execute("UPDATE executions SET error = %s WHERE id = %s", (_json(error), execution_id))


def naive_utc(at: datetime) -> datetime:
    """MySQL's DATETIME columns hold UTC without a zone; a naive time is taken as UTC."""
    return at if at.tzinfo is None else at.astimezone(UTC).replace(tzinfo=None)


def _iso(value: datetime | None) -> str | None:
    return value.replace(tzinfo=UTC).isoformat() if value is not None else None


def insert_attempt(cur: Cursor, execution_id: str, step_id: str, *, phase: str, attempt: int,
                   outcome: str, started: datetime, ended: datetime,
                   error_type: str | None = None, error_message: str | None = None,
                   sent: dict[str, Any] | None = None) -> None:
    cur.execute(
        "INSERT INTO step_attempts (execution_id, step_id, phase, attempt, outcome, error_type, "
        "error_message, started_at, ended_at, duration_ms, sent_input) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (execution_id, step_id, str(phase), attempt, str(outcome), error_type,
         (error_message or "")[:2000] or None, started, ended,
         int((ended - started).total_seconds() * 1000),
         None if sent is None else json.dumps(sent)))


def step_results(cur: Cursor, execution_id: str) -> dict[str, dict[str, Any]]:
    # In step order: an action may look for "the latest earlier result carrying X".
    cur.execute("SELECT step_id, result FROM step_runs WHERE execution_id = %s AND status = %s "
                "AND item_of IS NULL ORDER BY position", (execution_id,
                                                          StepStatus.SUCCEEDED.value))
    return {row["step_id"]: _load(row["result"]) or {} for row in cur.fetchall()}


# -- reads ----------------------------------------------------------------------

def row_to_execution(row: dict[str, Any]) -> Execution:
    return Execution(
        id=row["id"], saga_id=row["saga_id"], revision=row["revision"], version=row["version"],
        status=ExecutionStatus(row["status"]), input=_load(row["input"]) or {},
        faults=_load(row["faults"]) or [], error=_load(row["error"]),
        output=_load(row.get("output")), output_error=_load(row.get("output_error")),
        state_machine_arn=row["state_machine_arn"], sfn_execution_arn=row["sfn_execution_arn"],
        started_at=_utc(row["started_at"]), updated_at=_utc(row["updated_at"]),
        ended_at=_utc(row["ended_at"]), resolved_by=row["resolved_by"],
        resolution=row["resolution"],
        # Nothing moves a resolved execution: its last change is the resolution.
        resolved_at=_utc(row["updated_at"]) if row["resolved_by"] else None,
        expected_by=_utc(row.get("expected_by")),
        parent=(None if row.get("parent_execution_id") is None else ParentRef(
            execution_id=row["parent_execution_id"], step_id=row["parent_step_id"])),
        depth=row.get("depth") or 0,
        consistency={"source": "write_model", "sequence": row["last_sequence"]})


def load_execution(cur: Cursor, execution_id: str, *, with_steps: bool = True,
                   row: dict[str, Any] | None = None) -> Execution | None:
    """row: the execution's row as this transaction holds it (locked and written), if it
    does; only the steps are read then."""
    if row is None:
        cur.execute("SELECT * FROM executions WHERE id = %s", (execution_id,))
        row = cur.fetchone()
    if row is None:
        return None
    execution = row_to_execution(row)
    if not with_steps:
        return execution
    cur.execute("SELECT * FROM step_attempts WHERE execution_id = %s ORDER BY id",
                (execution_id,))
    attempts: dict[str, list[Attempt]] = {}
    for a in cur.fetchall():
        attempts.setdefault(a["step_id"], []).append(Attempt(
            phase=a["phase"], attempt=a["attempt"], outcome=a["outcome"],
            error_type=a["error_type"], error_message=a["error_message"],
            started_at=_utc(a["started_at"]), ended_at=_utc(a["ended_at"]),
            duration_ms=a["duration_ms"], input=_load(a.get("sent_input"))))
    # A fan-out's items follow it, in item order (NULL sorts first).
    cur.execute("SELECT * FROM step_runs WHERE execution_id = %s ORDER BY position, item_index",
                (execution_id,))
    execution.steps = [StepRun(
        step_id=s["step_id"], position=s["position"], group=s.get("step_group"),
        kind=s.get("kind"), status=StepStatus(s["status"]),
        result=_load(s["result"]), error=_load(s["error"]),
        action_attempts=s["action_attempts"], compensation_attempts=s["compensation_attempts"],
        started_at=_utc(s["started_at"]), ended_at=_utc(s["ended_at"]),
        compensated_at=_utc(s["compensated_at"]), attempts=attempts.get(s["step_id"], []),
        waiting=waiting_record(s.get("waiting")),
        condition=_load(s.get("step_condition")), fanout=_load(s.get("fanout")),
        item=item_record(s.get("item_of"), s.get("item_index")),
        child=s.get("child_execution_id"))
        for s in cur.fetchall()]
    return execution


# -- the store ----------------------------------------------------------------------

class MySQLExecutionStore:
    def __init__(self, connector: Any) -> None:
        self._db = connector

    def create(self, execution: Execution,
               steps: Sequence[StepShape]) -> tuple[Execution, bool]:
        # One transaction: the execution, its steps and its first event, returned as written;
        # or the execution that holds the id, as it is.
        with self._db.transaction() as cur:
            # Share-locks the saga row until this execution is committed, so a concurrent
            # DELETE either sees it (and answers 409) or wins first (and this is a 404).
            cur.execute("SELECT id FROM sagas WHERE id = %s LOCK IN SHARE MODE",
                        (execution.saga_id,))
            if cur.fetchone() is None:
                raise NotFound(f"saga {execution.saga_id!r} does not exist",
                               saga_id=execution.saga_id)
            try:
                created = insert_execution(cur, execution, steps, last_sequence=1)
            except pymysql.IntegrityError as error:
                if error.args[0] != DUPLICATE_ENTRY:
                    raise
                # Only the failed statement was undone. The duplicate is reported once its
                # holder committed, and no plain read came before (the saga's is a locking
                # one), so the snapshot this read starts sees that row.
                existing = load_execution(cur, execution.id)
                assert existing is not None
                return existing, False
            insert_execution_event(cur, events.execution_started(execution, steps),
                                   execution_id=execution.id, sequence=1,
                                   at=naive_utc(execution.started_at))
        return created, True

    def get(self, execution_id: str) -> Execution | None:
        with self._db.transaction() as cur:
            return load_execution(cur, execution_id)

    def list(self, query: ExecutionQuery) -> ExecutionPage:
        limit = query.limit
        where, args = ["1 = 1"], []
        if query.saga_id:
            where.append("saga_id = %s")
            args.append(query.saga_id)
        if query.status:
            where.append("status = %s")
            args.append(query.status)
        if query.started_after:
            where.append("started_at >= %s")
            args.append(naive_utc(query.started_after))
        if query.started_before:
            where.append("started_at < %s")
            args.append(naive_utc(query.started_before))
        if query.needs_attention is not None:
            where.append(_NEEDS_ATTENTION if query.needs_attention
                         else f"NOT {_NEEDS_ATTENTION}")
            args += _ATTENTION_VALUES
        if query.resolved is not None:
            where.append("resolved_by IS NOT NULL" if query.resolved else "resolved_by IS NULL")
        if query.q:
            where.append("(id = %s OR saga_id = %s)")
            args += [query.q, query.q]
        if query.cursor:
            # Newest first; the cursor holds "started_at|id" of the last item seen.
            started, last_id = decode_time_cursor(query.cursor)
            where.append("(started_at, id) < (%s, %s)")
            args += [naive_utc(started), last_id]
        with self._db.transaction() as cur:
            cur.execute(f"SELECT * FROM executions WHERE {' AND '.join(where)} "
                        "ORDER BY started_at DESC, id DESC LIMIT %s", (*args, limit + 1))
            rows = cur.fetchall()
        items = [row_to_execution(row) for row in rows[:limit]]
        next_cursor = None
        if len(rows) > limit and items:
            last = rows[limit - 1]
            next_cursor = encode_cursor(f"{_utc(last['started_at']).isoformat()}|{last['id']}")
        return ExecutionPage(items, next_cursor)

    def latest(self, saga_id: str, status: ExecutionStatus | None = None) -> Execution | None:
        with self._db.transaction() as cur:
            if status is None:
                cur.execute("SELECT id FROM executions WHERE saga_id = %s "
                            "ORDER BY started_at DESC, id DESC LIMIT 1", (saga_id,))
            else:
                cur.execute("SELECT id FROM executions WHERE saga_id = %s AND status = %s "
                            "ORDER BY started_at DESC, id DESC LIMIT 1",
                            (saga_id, status.value))
            row = cur.fetchone()
            return load_execution(cur, row["id"]) if row else None

    def mark_started(self, execution_id: str, run: RunRef) -> Execution | None:
        # The ref's parts are the row's state_machine_arn and sfn_execution_arn.
        with self._db.transaction() as cur:
            row = lock_execution(cur, execution_id)
            if row is None:
                return None
            if run.run is not None and row["sfn_execution_arn"] == run.run:
                # The same run started again (two repeats of a throttled execute): once.
                return load_execution(cur, execution_id, row=row)
            at = now()
            sequence = set_run(cur, row, run.where, run.run, at)
            insert_execution_event(cur, events.run_started(saga_id=row["saga_id"],
                                                           state_machine_arn=run.where,
                                                           run_arn=run.run),
                                   execution_id=execution_id, sequence=sequence, at=at)
            # Its steps are read: the run may have moved its first one already.
            return load_execution(cur, execution_id, row=row)

    def transition(self, execution_id: str, allowed_from: AbstractSet[ExecutionStatus],
                   to: ExecutionStatus, event_type: str, data: dict[str, Any],
                   error: dict[str, Any] | None = None, *,
                   by_operator: bool = False) -> Execution | None:
        with self._db.transaction() as cur:
            row = lock_execution(cur, execution_id)
            if row is None or ExecutionStatus(row["status"]) not in allowed_from or (
                    by_operator and not accepts_decision(row["resolved_by"])):
                return None
            at = now()
            if not set_execution_status(cur, execution_id, to, at=at, error=error,
                                        by_operator=by_operator):
                return None
            if to is ExecutionStatus.COMPENSATING:
                # A new compensation run: its failure is counted afresh.
                cur.execute("UPDATE executions SET ended_at = NULL WHERE id = %s",
                            (execution_id,))
            record_event(cur, events.moved(event_type, saga_id=row["saga_id"], status=to,
                                           execution_error=error or events.ABSENT, **data),
                         execution_id=execution_id, at=at)
            return load_execution(cur, execution_id)

    def resume(self, execution_id: str, steps: Sequence[str], by: str) -> Execution | None:
        with self._db.transaction() as cur:
            row = lock_execution(cur, execution_id)
            if row is None or row["status"] != ExecutionStatus.PARKED.value or \
                    not accepts_decision(row["resolved_by"]):
                return None
            at = now()
            if not set_execution_status(cur, execution_id, ExecutionStatus.RUNNING, at=at,
                                        by_operator=True):
                return None
            cur.execute("UPDATE executions SET error = NULL, ended_at = NULL WHERE id = %s",
                        (execution_id,))
            reset = []
            for step_id in steps:
                cur.execute("UPDATE step_runs SET status = %s, error = NULL, waiting = NULL, "
                            "retry_base = action_attempts, ended_at = NULL "
                            "WHERE execution_id = %s AND step_id = %s",
                            (StepStatus.PENDING.value, execution_id, step_id))
                reset.append({"step_id": step_id, **step_record(cur, execution_id, step_id)})
            record_event(cur, events.saga_resumed(saga_id=row["saga_id"],
                                                  status=ExecutionStatus.RUNNING, by=by,
                                                  steps=reset),
                         execution_id=execution_id, at=at)
            return load_execution(cur, execution_id)

    def resolve(self, execution_id: str, by: str, reason: str) -> Execution | None:
        # Check and act under the row lock: of concurrent resolves (or a resolve racing a
        # retry) exactly one commits its decision and its event; the others get None.
        with self._db.transaction() as cur:
            row = lock_execution(cur, execution_id)
            if row is None or not can_resolve(ExecutionStatus(row["status"]),
                                              row["resolved_by"]):
                return None
            at = now()
            if not resolve_execution(cur, execution_id, by=by, reason=reason, at=at):
                return None
            record_event(cur, events.saga_resolved(saga_id=row["saga_id"], by=by,
                                                   reason=reason),
                         execution_id=execution_id, at=at)
            return load_execution(cur, execution_id)

    def count_active(self, saga_id: str) -> int:
        with self._db.transaction() as cur:
            cur.execute("SELECT COUNT(*) AS n FROM executions WHERE saga_id = %s "
                        f"AND status IN ({_ACTIVE_MARKS})", (saga_id, *_ACTIVE_VALUES))
            return int(cur.fetchone()["n"])

    def pinned_revisions(self, saga_id: str) -> list[int]:
        with self._db.transaction() as cur:
            cur.execute("SELECT DISTINCT revision FROM executions WHERE saga_id = %s "
                        "ORDER BY revision", (saga_id,))
            return [row["revision"] for row in cur.fetchall()]

    def unsettled(self, grace_seconds: float, limit: int) -> list[Execution]:
        with self._db.transaction() as cur:
            cur.execute(*unsettled_query(grace_seconds, limit))
            return [row_to_execution(row) for row in cur.fetchall()]


_CUTOFF = "UTC_TIMESTAMP(6) - INTERVAL %s MICROSECOND"


def unsettled_query(grace_seconds: float, limit: int) -> tuple[str, tuple[Any, ...]]:
    """The reconciler's work list, as a statement and its arguments: the active executions
    whose expected moment passed `grace_seconds` ago, the longest overdue first.

    A row with no expected_by (kept before executions had one, or written by an older version
    of the service) is due by its last change. The key (status, expected_by) serves both: NULL
    sorts first, so each active status is one range of it, and only the executions overdue
    are read, however many wait."""
    grace = int(grace_seconds * 1_000_000)
    return (f"SELECT * FROM executions WHERE status IN ({_ACTIVE_MARKS}) "
            f"AND (expected_by < {_CUTOFF} OR expected_by IS NULL) "
            f"AND COALESCE(expected_by, updated_at) < {_CUTOFF} "
            "ORDER BY COALESCE(expected_by, updated_at), id LIMIT %s",
            (*_ACTIVE_VALUES, grace, grace, limit))
