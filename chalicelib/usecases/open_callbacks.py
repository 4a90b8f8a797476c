"""Listing the open callbacks (GET /callbacks, GET /callbacks/count): the waiting callback
steps of running executions, approvals among them, from the read model, each named and
described by the definition version its execution runs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from chalicelib.domain.errors import BadRequest
from chalicelib.domain.open_callbacks import OpenCallback, OpenCallbackCount, OpenCallbackList
from chalicelib.usecases.definitions import page_size, query_flag
from chalicelib.usecases.ports import (
    CallbackQuery,
    DefinitionStore,
    OpenCallbackReads,
    ReadModelDown,
    ReadModelUnavailable,
)


@dataclass
class CallbackListing:
    reads: OpenCallbackReads
    definitions: DefinitionStore
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))

    def list(self, *, approval: str | None, saga_id: str | None, limit: str | None,
             cursor: str | None) -> OpenCallbackList:
        """Oldest first; `total` counts every open callback its filters match."""
        query = CallbackQuery(limit=page_size(limit), now=self.clock(),
                              approval=query_flag("approval", approval),
                              saga_id=saga_id or None, cursor=cursor or None)
        try:
            page = self.reads.open_callbacks(query)
            total = self.reads.count_open_callbacks(query)
        except ReadModelUnavailable:
            raise ReadModelDown("the read model cannot be reached; try again") from None
        except ValueError as bad_cursor:
            raise BadRequest(str(bad_cursor), value=cursor) from None
        items = self._named(page.items)
        return OpenCallbackList(items=items, next_cursor=page.next_cursor, count=len(items),
                                total=max(total, len(items)))

    def count(self, *, approval: str | None, saga_id: str | None) -> OpenCallbackCount:
        query = CallbackQuery(limit=1, now=self.clock(),
                              approval=query_flag("approval", approval), saga_id=saga_id or None)
        try:
            return OpenCallbackCount(total=self.reads.count_open_callbacks(query))
        except ReadModelUnavailable:
            raise ReadModelDown("the read model cannot be reached; try again") from None

    def _named(self, items: list[OpenCallback]) -> list[OpenCallback]:
        """Each with its step's name and description, each version read once."""
        steps: dict[tuple[str, int], dict[str, tuple[str | None, str | None]]] = {}
        named = []
        for item in items:
            key = (item.saga_id, item.revision)
            if key not in steps:
                saga = self.definitions.get_revision(*key)
                steps[key] = {} if saga is None else {
                    str(step.id): (step.name, step.description) for step in saga.steps}
            name, description = steps[key].get(item.step_id, (None, None))
            named.append(item.model_copy(update={"step_name": name,
                                                 "step_description": description}))
        return named
