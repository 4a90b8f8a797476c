"""Saga definitions in memory (the DefinitionStore port). Its events (`events`) and audit
rows are the MySQL store's: the same types and data, the same entries."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from chalicelib.domain import events
from chalicelib.domain.errors import Conflict, NotFound
from chalicelib.domain.models import SagaDefinition, StoredSaga
from chalicelib.domain.workflow import WorkflowChoice, stored_fields
from chalicelib.testing.outbox import outbox_envelope
from chalicelib.usecases.ports import Actor, Page, SagaFilter, Totals


def _summary(saga: StoredSaga | None) -> dict[str, Any] | None:
    """What the audit log keeps of a saga (the MySQL store's summary)."""
    if saga is None:
        return None
    return {"saga_id": saga.id, "version": saga.version, "revision": saga.revision,
            "active": saga.active, "steps": [s.id for s in saga.steps]}


class InMemoryDefinitionStore:
    def __init__(self) -> None:
        self._versions: dict[str, list[StoredSaga]] = {}  # every revision, oldest first
        self._latest: dict[str, StoredSaga] = {}  # sagas that exist (not destroyed)
        self.audit: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []  # the outbox's definition events
        self._created_by: dict[tuple[str, int], str] = {}

    def _record(self, event: events.Event, actor: Actor, action: str, saga_id: str,
                before: StoredSaga | None, after: StoredSaga | None) -> None:
        """The change's audit row and event, as the MySQL store writes them with it."""
        now = datetime.now(UTC)
        self.audit.append({"entity_type": "saga", "entity_id": saga_id, "at": now,
                           "actor": actor.name, "action": action,
                           "request_id": actor.request_id, "before_state": _summary(before),
                           "after_state": _summary(after)})
        sequence = sum(1 for e in self.events if e["key"] == saga_id) + 1
        self.events.append(outbox_envelope(event, key=saga_id, subject=f"saga/{saga_id}",
                                           sequence=sequence, at=now))

    def insert_version(self, saga: SagaDefinition, *, expected_revision: int | None,
                       actor: Actor, action: str,
                       workflow: WorkflowChoice | None = None) -> StoredSaga:
        assert saga.id and saga.version and saga.name and saga.description is not None
        current = self._latest.get(saga.id)
        if expected_revision is None and current is not None:
            raise Conflict(f"saga {saga.id!r} already exists", saga_id=saga.id)
        if expected_revision is not None:
            if current is None:
                raise NotFound(f"saga {saga.id!r} does not exist", saga_id=saga.id)
            if current.revision != expected_revision:
                raise Conflict(f"saga {saga.id!r} was changed concurrently; read it again",
                               saga_id=saga.id)
            if any(v.version == saga.version for v in self._versions[saga.id]):
                raise Conflict(f"version {saga.version} of saga {saga.id!r} exists already",
                               saga_id=saga.id, version=saga.version)
        history = self._versions.setdefault(saga.id, [])
        now = datetime.now(UTC)
        stored = StoredSaga(
            id=saga.id, name=saga.name, description=saga.description, version=saga.version,
            revision=len(history) + 1, steps=saga.steps, active=saga.active, type=saga.type,
            metadata=saga.metadata, output=saga.output, deadline=saga.deadline,
            **stored_fields(workflow),
            created_at=current.created_at if current else now,
            updated_at=now, version_created_at=now)
        history.append(stored)
        self._latest[saga.id] = stored
        self._created_by[(saga.id, stored.revision)] = actor.name
        built = events.definition_created if current is None else events.definition_updated
        self._record(built(stored, action=action), actor, action, saga.id, current, stored)
        return stored

    def get(self, saga_id: str, version: str | None = None) -> StoredSaga | None:
        latest = self._latest.get(saga_id)
        if latest is None or version is None:
            return latest
        return next((v for v in self._versions[saga_id] if v.version == version
                     and v.version_created_at >= latest.created_at), None)

    def get_revision(self, saga_id: str, revision: int) -> StoredSaga | None:
        return next((v for v in self._versions.get(saga_id, []) if v.revision == revision),
                    None)

    def list(self, limit: int, cursor: str | None, filters: SagaFilter) -> Page:
        sagas = sorted((s for s in self._latest.values()
                        if (filters.active is None or s.active == filters.active)
                        and (filters.type is None or s.type == filters.type)
                        and (cursor is None or s.id > cursor)), key=lambda s: s.id)
        items = sagas[:limit]
        return Page(items, items[-1].id if len(sagas) > limit and items else None)

    def versions(self, saga_id: str) -> list[dict[str, Any]]:
        latest = self._latest.get(saga_id)
        if latest is None:
            return []
        return [{"revision": v.revision, "version": v.version,
                 "created_at": v.version_created_at,
                 "created_by": self._created_by.get((saga_id, v.revision)),
                 "workflow_type": v.workflow_type}
                for v in self._versions[saga_id] if v.version_created_at >= latest.created_at]

    def set_active(self, saga_id: str, active: bool, actor: Actor) -> StoredSaga | None:
        latest = self._latest.get(saga_id)
        if latest is None:
            return None
        if latest.active == active:
            return latest  # nothing changes, nothing to audit
        changed = latest.model_copy(update={"active": active,
                                            "updated_at": datetime.now(UTC)})
        self._latest[saga_id] = changed
        self._versions[saga_id][-1] = changed
        self._record(events.definition_updated(changed, action="set_active"), actor,
                     "activate" if active else "deactivate", saga_id, latest, changed)
        return changed

    def delete(self, saga_id: str, actor: Actor, keep_revisions: list[int]) -> bool:
        before = self._latest.pop(saga_id, None)
        if before is None:
            return False
        self._versions[saga_id] = [v for v in self._versions[saga_id]
                                   if v.revision in keep_revisions]
        self._record(events.definition_deleted(saga_id=saga_id, version=before.version), actor,
                     "delete", saga_id, before, None)
        return True

    def totals(self) -> Totals:
        by_type: dict[str, int] = {}
        for saga in self._latest.values():
            by_type[saga.type or "untyped"] = by_type.get(saga.type or "untyped", 0) + 1
        return Totals(sagas=len(self._latest),
                      steps=sum(len(s.steps) for s in self._latest.values()),
                      versions=sum(len(v) for v in self._versions.values()),
                      active_sagas=sum(s.active for s in self._latest.values()),
                      by_type=by_type)

    def audit_entries(self, entity_type: str, entity_id: str) -> list[dict[str, Any]]:
        return [{key: value for key, value in entry.items()
                 if key not in ("entity_type", "entity_id")} for entry in self.audit
                if (entry["entity_type"], entry["entity_id"]) == (entity_type, entity_id)]
