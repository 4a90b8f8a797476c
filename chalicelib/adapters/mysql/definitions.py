"""Saga definitions in MySQL: a header row per saga, an immutable row per version, audit rows."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pymysql

from chalicelib.adapters.cursors import decode_cursor, encode_cursor
from chalicelib.adapters.mysql.connector import MySQLConnector
from chalicelib.adapters.mysql.executions import append_definition_event
from chalicelib.domain import events
from chalicelib.domain.errors import Conflict, NotFound
from chalicelib.domain.executions import ExecutionStatus
from chalicelib.domain.models import SagaDefinition, StoredSaga
from chalicelib.domain.workflow import WorkflowChoice, stored_fields
from chalicelib.usecases.ports import Actor, Page, SagaFilter, Totals

_SELECT = """
    SELECT s.id, s.active, s.created_at, s.updated_at, s.latest_revision,
           v.revision, v.version, v.name, v.description, v.type, v.definition,
           v.created_at AS version_created_at
    FROM sagas s JOIN saga_versions v ON v.saga_id = s.id
"""


def _now() -> datetime:
    # Stored as naive UTC (DATETIME has no zone); _row_to_saga puts the zone back.
    return datetime.now(UTC).replace(tzinfo=None)


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC)


def _row_to_saga(row: dict[str, Any]) -> StoredSaga:
    body = json.loads(row["definition"])
    return StoredSaga(
        id=row["id"], name=row["name"], description=row["description"],
        version=row["version"], revision=row["revision"], steps=body["steps"],
        active=bool(row["active"]), type=row["type"], metadata=body.get("metadata", {}),
        output=body.get("output"), deadline=body.get("deadline"),
        **(body.get("workflow") or stored_fields(None)),
        created_at=_utc(row["created_at"]), updated_at=_utc(row["updated_at"]),
        version_created_at=_utc(row["version_created_at"]),
    )


def _summary_dict(saga: StoredSaga | None) -> dict[str, Any]:
    if saga is None:
        return {}
    return {"saga_id": saga.id, "version": saga.version, "revision": saga.revision,
            "active": saga.active, "steps": [s.id for s in saga.steps]}


def _summary(saga: StoredSaga | None) -> str | None:
    """What the audit log keeps of a saga: enough to see what changed, not the whole body."""
    return json.dumps(_summary_dict(saga)) if saga is not None else None


class MySQLDefinitionStore:
    def __init__(self, connector: MySQLConnector, *, auditing: bool = True) -> None:
        self._db = connector
        self._auditing = auditing

    # -- writes ---------------------------------------------------------------------------

    def insert_version(self, saga: SagaDefinition, *, expected_revision: int | None,
                       actor: Actor, action: str,
                       workflow: WorkflowChoice | None = None) -> StoredSaga:
        # Concurrent creates of new ids contend for the same gap locks: InnoDB may pick this
        # transaction as a deadlock's victim, and then it runs again.
        return self._db.retrying(
            lambda cur: self._insert_version(cur, saga, expected_revision, actor, action,
                                             workflow))

    def _insert_version(self, cur: Any, saga: SagaDefinition, expected_revision: int | None,
                        actor: Actor, action: str,
                        workflow: WorkflowChoice | None) -> StoredSaga:
        assert saga.id and saga.version and saga.name and saga.description is not None
        now = _now()
        cur.execute("SELECT latest_revision FROM sagas WHERE id = %s FOR UPDATE", (saga.id,))
        header = cur.fetchone()
        before = None
        if expected_revision is None:
            if header is not None:
                raise Conflict(f"saga {saga.id!r} already exists", saga_id=saga.id)
            # A destroyed saga may be created again at any version: versions its
            # executions still pin stay readable by revision, under a renamed version so
            # the new incarnation can use the number.
            cur.execute(
                "UPDATE saga_versions SET version = CONCAT(LEFT(version, 60), "
                "'+destroyed.r', revision) WHERE saga_id = %s AND version = %s",
                (saga.id, saga.version))
        elif header is None:
            raise NotFound(f"saga {saga.id!r} does not exist", saga_id=saga.id)
        elif header["latest_revision"] != expected_revision:
            raise Conflict(f"saga {saga.id!r} was changed concurrently; read it again",
                           saga_id=saga.id)
        else:
            before = self._get(cur, saga.id, None)
        cur.execute("SELECT COALESCE(MAX(revision), 0) AS r FROM saga_versions "
                    "WHERE saga_id = %s", (saga.id,))
        revision = cur.fetchone()["r"] + 1
        body = json.dumps({"steps": [s.model_dump() for s in saga.steps],
                           "metadata": saga.metadata, "output": saga.output,
                           "deadline": saga.deadline, "workflow": stored_fields(workflow)})
        try:
            cur.execute(
                "INSERT INTO saga_versions (saga_id, revision, version, name, description, "
                "type, definition, created_at, created_by) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (saga.id, revision, saga.version, saga.name, saga.description, saga.type,
                 body, now, actor.name))
        except pymysql.IntegrityError:
            raise Conflict(f"version {saga.version} of saga {saga.id!r} exists already; "
                           "use a higher version", saga_id=saga.id,
                           version=saga.version) from None
        step_count = len(saga.steps)
        if header is None:
            cur.execute(
                "INSERT INTO sagas (id, latest_revision, active, type, step_count, "
                "created_at, updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                (saga.id, revision, saga.active, saga.type, step_count, now, now))
        else:
            cur.execute(
                "UPDATE sagas SET latest_revision = %s, active = %s, type = %s, "
                "step_count = %s, updated_at = %s WHERE id = %s",
                (revision, saga.active, saga.type, step_count, now, saga.id))
        stored = self._get(cur, saga.id, None)
        assert stored is not None
        self._audit(cur, actor, action, "saga", saga.id, before, stored, now)
        built = events.definition_created if before is None else events.definition_updated
        append_definition_event(cur, built(stored, action=action), saga_id=saga.id, at=now)
        return stored

    def set_active(self, saga_id: str, active: bool, actor: Actor) -> StoredSaga | None:
        now = _now()
        with self._db.transaction() as cur:
            before = self._get(cur, saga_id, None, lock=True)
            if before is None:
                return None
            if before.active == active:
                return before  # nothing changes, nothing to audit
            cur.execute("UPDATE sagas SET active = %s, updated_at = %s WHERE id = %s",
                        (active, now, saga_id))
            after = self._get(cur, saga_id, None)
            self._audit(cur, actor, "activate" if active else "deactivate", "saga", saga_id,
                        before, after, now)
            assert after is not None
            append_definition_event(cur, events.definition_updated(after, action="set_active"),
                                    saga_id=saga_id, at=now)
        return after

    def delete(self, saga_id: str, actor: Actor, keep_revisions: list[int]) -> bool:
        now = _now()
        with self._db.transaction() as cur:
            before = self._get(cur, saga_id, None, lock=True)
            if before is None:
                return False
            # Under the saga row's lock, which every execute takes in share mode while it
            # inserts its execution: one that got in first is seen here, so the delete answers
            # 409 instead of removing the version that execution is about to run.
            running, ran = _executions_of(cur, saga_id)
            if running:
                raise Conflict(f"saga {saga_id!r} has {running} running execution(s); wait for "
                               "them to end before destroying it", saga_id=saga_id,
                               running=running)
            keep = sorted(set(keep_revisions) | ran) or [0]
            placeholders = ", ".join(["%s"] * len(keep))
            cur.execute(f"DELETE FROM saga_versions WHERE saga_id = %s "
                        f"AND revision NOT IN ({placeholders})", (saga_id, *keep))
            cur.execute("DELETE FROM sagas WHERE id = %s", (saga_id,))
            self._audit(cur, actor, "delete", "saga", saga_id, before, None, now)
            append_definition_event(cur, events.definition_deleted(saga_id=saga_id,
                                                                   version=before.version),
                                    saga_id=saga_id, at=now)
        return True

    def _audit(self, cur: Any, actor: Actor, action: str, entity_type: str, entity_id: str,
               before: StoredSaga | None, after: StoredSaga | None, at: datetime) -> None:
        if not self._auditing:
            return
        cur.execute(
            "INSERT INTO audit_log (at, actor, action, entity_type, entity_id, request_id, "
            "before_state, after_state) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            (at, actor.name, action, entity_type, entity_id, actor.request_id,
             _summary(before), _summary(after)))

    # -- reads ----------------------------------------------------------------------------

    def _get(self, cur: Any, saga_id: str, version: str | None, *,
             lock: bool = False) -> StoredSaga | None:
        if version is None:
            cur.execute(_SELECT + " WHERE s.id = %s AND v.revision = s.latest_revision"
                        + (" FOR UPDATE" if lock else ""), (saga_id,))
        else:
            # Versions from before a destroy are not this saga's (created_at: the re-creation).
            cur.execute(_SELECT + " WHERE s.id = %s AND v.version = %s "
                        "AND v.created_at >= s.created_at", (saga_id, version))
        row = cur.fetchone()
        return _row_to_saga(row) if row else None

    def get(self, saga_id: str, version: str | None = None) -> StoredSaga | None:
        with self._db.transaction() as cur:
            return self._get(cur, saga_id, version)

    def get_revision(self, saga_id: str, revision: int) -> StoredSaga | None:
        """A version by revision, even after its saga was destroyed (executions pin it)."""
        with self._db.transaction() as cur:
            cur.execute(
                "SELECT v.saga_id AS id, COALESCE(s.active, FALSE) AS active, "
                "COALESCE(s.created_at, v.created_at) AS created_at, "
                "COALESCE(s.updated_at, v.created_at) AS updated_at, v.revision, v.version, "
                "v.name, v.description, v.type, v.definition, "
                "v.created_at AS version_created_at "
                "FROM saga_versions v LEFT JOIN sagas s ON s.id = v.saga_id "
                "WHERE v.saga_id = %s AND v.revision = %s", (saga_id, revision))
            row = cur.fetchone()
        return _row_to_saga(row) if row else None

    def list(self, limit: int, cursor: str | None, filters: SagaFilter) -> Page:
        where = ["v.revision = s.latest_revision"]
        args: list[Any] = []
        if cursor:
            where.append("s.id > %s")
            args.append(decode_cursor(cursor))
        if filters.active is not None:
            where.append("s.active = %s")
            args.append(filters.active)
        if filters.type is not None:
            where.append("s.type = %s")
            args.append(filters.type)
        with self._db.transaction() as cur:
            cur.execute(_SELECT + " WHERE " + " AND ".join(where) + " ORDER BY s.id LIMIT %s",
                        (*args, limit + 1))
            rows = cur.fetchall()
        items = [_row_to_saga(row) for row in rows[:limit]]
        more = len(rows) > limit
        return Page(items, encode_cursor(items[-1].id) if more and items else None)

    def versions(self, saga_id: str) -> list[dict[str, Any]]:
        with self._db.transaction() as cur:
            cur.execute("SELECT v.revision, v.version, v.created_at, v.created_by, "
                        "COALESCE(JSON_VALUE(v.definition, '$.workflow.workflow_type'), "
                        "'standard') AS workflow_type "
                        "FROM saga_versions v JOIN sagas s ON s.id = v.saga_id "
                        "WHERE v.saga_id = %s AND v.created_at >= s.created_at "
                        "ORDER BY v.revision", (saga_id,))
            rows = cur.fetchall()
        return [{**row, "created_at": _utc(row["created_at"])} for row in rows]

    def totals(self) -> Totals:
        with self._db.transaction() as cur:
            cur.execute("SELECT COUNT(*) AS sagas, COALESCE(SUM(step_count), 0) AS steps, "
                        "COALESCE(SUM(active), 0) AS active FROM sagas")
            head = cur.fetchone()
            cur.execute("SELECT COUNT(*) AS n FROM saga_versions")
            versions = cur.fetchone()["n"]
            cur.execute("SELECT COALESCE(type, '') AS type, COUNT(*) AS n FROM sagas "
                        "GROUP BY type ORDER BY type")
            by_type = {row["type"] or "untyped": row["n"] for row in cur.fetchall()}
        return Totals(sagas=head["sagas"], steps=int(head["steps"]), versions=versions,
                      active_sagas=int(head["active"]), by_type=by_type)

    def audit_entries(self, entity_type: str, entity_id: str) -> list[dict[str, Any]]:
        with self._db.transaction() as cur:
            cur.execute("SELECT at, actor, action, request_id, before_state, after_state "
                        "FROM audit_log WHERE entity_type = %s AND entity_id = %s ORDER BY id",
                        (entity_type, entity_id))
            rows = cur.fetchall()
        return [{**row, "at": _utc(row["at"]),
                 "before_state": json.loads(row["before_state"]) if row["before_state"] else None,
                 "after_state": json.loads(row["after_state"]) if row["after_state"] else None}
                for row in rows]


def _executions_of(cur: Any, saga_id: str) -> tuple[int, set[int]]:
    """How many of the saga's executions still run, and every revision any of them ran."""
    going = [status.value for status in ExecutionStatus if not status.is_final]
    cur.execute(f"SELECT revision, SUM(status IN ({', '.join(['%s'] * len(going))})) AS running "
                "FROM executions WHERE saga_id = %s GROUP BY revision", (*going, saga_id))
    rows = cur.fetchall()
    return sum(int(row["running"] or 0) for row in rows), {int(row["revision"]) for row in rows}
