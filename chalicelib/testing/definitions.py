"""Saga definitions in memory (the DefinitionStore port)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from chalicelib.ports import Actor, Page, SagaFilter, Totals
from chalicelib.saga.errors import Conflict, NotFound
from chalicelib.saga.models import SagaDefinition, StoredSaga


class InMemoryDefinitionStore:
    def __init__(self) -> None:
        self._versions: dict[str, list[StoredSaga]] = {}  # every revision, oldest first
        self._latest: dict[str, StoredSaga] = {}  # sagas that exist (not destroyed)
        self.audit: list[dict[str, Any]] = []

    def insert_version(self, saga: SagaDefinition, *, expected_revision: int | None,
                       actor: Actor, action: str) -> StoredSaga:
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
            metadata=saga.metadata, output=saga.output,
            created_at=current.created_at if current else now,
            updated_at=now, version_created_at=now)
        history.append(stored)
        self._latest[saga.id] = stored
        self.audit.append({"action": action, "entity_id": saga.id, "actor": actor.name})
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
                 "created_at": v.version_created_at, "created_by": "test"}
                for v in self._versions[saga_id] if v.version_created_at >= latest.created_at]

    def set_active(self, saga_id: str, active: bool, actor: Actor) -> StoredSaga | None:
        latest = self._latest.get(saga_id)
        if latest is None:
            return None
        changed = latest.model_copy(update={"active": active,
                                            "updated_at": datetime.now(UTC)})
        self._latest[saga_id] = changed
        self._versions[saga_id][-1] = changed
        return changed

    def delete(self, saga_id: str, actor: Actor, keep_revisions: list[int]) -> bool:
        if self._latest.pop(saga_id, None) is None:
            return False
        self._versions[saga_id] = [v for v in self._versions[saga_id]
                                   if v.revision in keep_revisions]
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
        return [entry for entry in self.audit if entry["entity_id"] == entity_id]
