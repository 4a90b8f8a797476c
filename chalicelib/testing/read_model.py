"""The read model in memory: the reads (ExecutionReadModel) and the projector that keeps them
(ReadModelProjector), over the same documents and counters the MongoDB projector writes."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from chalicelib.adapters.cursors import decode_cursor, encode_cursor
from chalicelib.domain import read_views
from chalicelib.domain.executions import Execution
from chalicelib.domain.history import buckets, unwound
from chalicelib.domain.open_callbacks import (
    OpenCallback,
    after_cursor,
    cursor_text,
    document_of,
    open_waits,
    sort_key,
)
from chalicelib.domain.projection import SummaryChange, by_execution, project
from chalicelib.domain.read_views import to_execution
from chalicelib.testing.executions import newest_first
from chalicelib.usecases.ports import (
    CallbackPage,
    CallbackQuery,
    ExecutionPage,
    ExecutionQuery,
    HistoryPage,
    HistoryQuery,
    ReadModelUnavailable,
)


class RefusedDocument(ValueError):
    """A document MongoDB would refuse to store (its BSON encoder refuses a NUL in a key)."""


def _millisecond(value: Any) -> Any:
    return value.replace(microsecond=value.microsecond // 1000 * 1000) \
        if isinstance(value, datetime) else value


def _stored(doc: Mapping[str, Any]) -> dict[str, Any]:
    """A document as MongoDB would give it back: its dates cut to milliseconds (BSON's)."""
    _refuse_nul_keys(doc)
    return {key: _millisecond(value) for key, value in doc.items()}


def _refuse_nul_keys(value: Any) -> None:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, Mapping):
            for key, child in item.items():
                if "\x00" in str(key):
                    raise RefusedDocument(f"key {key!r} must not contain a NUL character")
                stack.append(child)
        elif isinstance(item, list | tuple):
            stack.extend(item)


class InMemoryReadModel:
    """The projected view. `apply` and `apply_batch` fold events as the MongoDB projector does
    (chalicelib.domain.projection: idempotent by sequence, a batch all or nothing, each saga's
    counters moved with it); `project` copies an execution in as it is (a test's given state).
    `available = False` makes every read raise ReadModelUnavailable, as an unreachable
    MongoDB does."""

    def __init__(self) -> None:
        self.available = True
        self._docs: dict[str, Execution] = {}
        self._documents: dict[str, dict[str, Any]] = {}
        self.summaries: dict[str, dict[str, Any]] = {}
        # Each execution's history: its buckets of applied events, by first sequence.
        self.history_buckets: dict[str, dict[int, dict[str, Any]]] = {}
        self._lock = threading.Lock()  # a batch is applied as one, even from threads

    # -- the projector ------------------------------------------------------------------------

    def apply(self, event: Mapping[str, Any]) -> bool:
        return self.apply_batch([event]) == 1

    def apply_batch(self, events: Iterable[Mapping[str, Any]]) -> int:
        grouped = by_execution(events)
        if not grouped:
            return 0
        with self._lock:
            current = {key: self._documents[key] for key in grouped if key in self._documents}
            projection = project(grouped, current, datetime.now(UTC))
            # Every document made (and checked) before any is kept: all or nothing.
            stored = {key: _stored(projected.document)
                      for key, projected in projection.documents.items()}
            views = {key: to_execution(doc) for key, doc in stored.items()}
            made = [_stored(bucket) for bucket in buckets(projection.applied)]
            for bucket in made:  # MongoDB's duplicate key: a bucket is never doubled
                if bucket["first"] in self.history_buckets.get(bucket["execution_id"], {}):
                    raise RuntimeError(f"history bucket {bucket['_id']} exists already")
            self._documents.update(stored)
            for bucket in made:
                self.history_buckets.setdefault(bucket["execution_id"], {})[
                    bucket["first"]] = bucket
            self._docs.update(views)
            for saga_id, change in projection.summaries.items():
                self._count(saga_id, change)
        return len(projection.applied)

    def _count(self, saga_id: str, change: SummaryChange) -> None:
        doc = self.summaries.setdefault(saga_id, {"by_status": {}})
        if change.executions:
            doc["executions"] = doc.get("executions", 0) + change.executions
        for status, n in change.by_status.items():
            doc["by_status"][status] = doc["by_status"].get(status, 0) + n
        last = _millisecond(change.last_at)
        doc["last_execution_at"] = max(doc.get("last_execution_at") or last, last)

    def project(self, execution: Execution, sequence: int = 1) -> None:
        before = self._docs.get(execution.id)
        self._docs[execution.id] = execution.model_copy(
            update={"consistency": {"source": "read_model", "sequence": sequence}}, deep=True)
        change = SummaryChange(execution.updated_at)
        change.move(before.status.value if before else None, execution.status.value,
                    execution.updated_at)
        self._count(execution.saga_id, change)

    # -- the reads ----------------------------------------------------------------------------

    def _check(self) -> None:
        if not self.available:
            raise ReadModelUnavailable("the read model is down (test)")

    def get(self, execution_id: str) -> Execution | None:
        self._check()
        return self._docs.get(execution_id)

    def list(self, query: ExecutionQuery) -> ExecutionPage:
        self._check()
        return newest_first(list(self._docs.values()), query)

    def latest(self, saga_id: str) -> Execution | None:
        self._check()
        found = newest_first(list(self._docs.values()),
                             ExecutionQuery(limit=1, saga_id=saga_id)).items
        return found[0] if found else None

    def summary(self, saga_id: str) -> dict[str, Any]:
        self._check()
        return read_views.summary(self.summaries.get(saga_id) or {})

    def totals(self) -> dict[str, Any]:
        self._check()
        return read_views.totals(self.summaries.values())

    def history(self, query: HistoryQuery) -> HistoryPage:
        """The cursor is the last sequence seen (MongoDB's wraps it as its listings do)."""
        self._check()
        if query.cursor is not None and not query.cursor.isdigit():
            raise ValueError("cursor is not one this listing gave out")
        after = int(query.cursor or 0)
        mine = self.history_buckets.get(query.execution_id, {})
        items, more = unwound((mine[first] for first in sorted(mine)), after, query.limit)
        return HistoryPage(items, str(items[-1].sequence) if more else None)

    # -- open callbacks (OpenCallbackReads) ------------------------------------------------------

    def _open(self, query: CallbackQuery) -> list[tuple[dict[str, Any], Mapping[str, Any]]]:
        """(document, step) of every open callback the query's filters match, in order."""
        found = []
        for execution in self._docs.values():
            if query.saga_id is not None and execution.saga_id != query.saga_id:
                continue
            document = document_of(execution)
            found += [(document, step) for step in open_waits(document, now=query.now,
                                                               approval=query.approval)]
        return sorted(found, key=lambda pair: sort_key(pair[1]))

    def open_callbacks(self, query: CallbackQuery) -> CallbackPage:
        self._check()
        found = self._open(query)
        if query.cursor:
            after = after_cursor(decode_cursor(query.cursor))
            found = [pair for pair in found if sort_key(pair[1]) > after]
        page = found[:query.limit]
        more = len(found) > query.limit and page
        return CallbackPage([OpenCallback.of(document, step) for document, step in page],
                            encode_cursor(cursor_text(page[-1][1])) if more else None)

    def count_open_callbacks(self, query: CallbackQuery) -> int:
        self._check()
        return len(self._open(query))
