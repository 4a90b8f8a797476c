"""The interfaces the service needs from the outside world; adapters/ implements them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from chalicelib.saga.models import SagaDefinition, StoredSaga


@dataclass(frozen=True)
class Actor:
    """Who asked: recorded in the audit log."""

    name: str = "anonymous"
    request_id: str | None = None


@dataclass(frozen=True)
class Page:
    items: list[StoredSaga]
    next_cursor: str | None


@dataclass(frozen=True)
class SagaFilter:
    active: bool | None = None
    type: str | None = None


@dataclass(frozen=True)
class Totals:
    sagas: int
    steps: int
    versions: int
    active_sagas: int
    by_type: dict[str, int] = field(default_factory=dict)


class DefinitionStore(Protocol):
    """The write model of saga definitions. Every mutation writes its audit row atomically."""

    def insert_version(self, saga: SagaDefinition, *, expected_revision: int | None,
                       actor: Actor, action: str) -> StoredSaga:
        """Store a new immutable version. expected_revision None means the saga must not
        exist; otherwise the latest revision must still be that one (optimistic lock)."""
        ...

    def get(self, saga_id: str, version: str | None = None) -> StoredSaga | None: ...

    def list(self, limit: int, cursor: str | None, filters: SagaFilter) -> Page: ...

    def versions(self, saga_id: str) -> list[dict[str, Any]]: ...

    def set_active(self, saga_id: str, active: bool, actor: Actor) -> StoredSaga | None: ...

    def delete(self, saga_id: str, actor: Actor) -> bool: ...

    def totals(self) -> Totals: ...

    def audit_entries(self, entity_type: str, entity_id: str) -> list[dict[str, Any]]: ...
