"""Executions as the read model (MongoDB) holds them, for the API's reads."""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime
from typing import Any, ParamSpec, TypeVar

from pymongo import ASCENDING, DESCENDING
from pymongo.database import Database
from pymongo.errors import PyMongoError

from chalicelib.adapters.cursors import decode_cursor, decode_time_cursor, encode_cursor
from chalicelib.adapters.mongo.projector import EVENTS, EXECUTIONS, SUMMARIES
from chalicelib.domain import read_views
from chalicelib.domain.executions import Execution
from chalicelib.domain.history import unwound
from chalicelib.domain.lifecycle import AWAITING_APPROVAL, NEEDS_ATTENTION, StepStatus
from chalicelib.domain.read_views import to_execution, utc
from chalicelib.usecases.ports import (
    ExecutionPage,
    ExecutionQuery,
    HistoryPage,
    HistoryQuery,
    ReadModelUnavailable,
)

# lifecycle.needs_attention as a query (an end to look at, not resolved, or a running execution
# with an approval step waiting: domain.executions.awaits_approval), and its negation.
_NEEDS_ATTENTION: dict[str, Any] = {"$or": [
    {"status": {"$in": sorted(status.value for status in NEEDS_ATTENTION)},
     "resolved_by": None},
    {"status": AWAITING_APPROVAL.value, "steps": {"$elemMatch": {
        "status": StepStatus.WAITING.value, "waiting.approval": True,
        "waiting.completed_at": None}}}]}
_NO_ATTENTION: dict[str, Any] = {"$nor": [_NEEDS_ATTENTION]}

P = ParamSpec("P")
R = TypeVar("R")


def unavailable_on_failure(method: Callable[P, R]) -> Callable[P, R]:
    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(*args, **kwargs)
        except PyMongoError as error:
            raise ReadModelUnavailable(f"{type(error).__name__}: {error}") from error

    return wrapper


class MongoExecutionReadModel:
    def __init__(self, db: Database) -> None:
        self._db = db

    @unavailable_on_failure
    def get(self, execution_id: str) -> Execution | None:
        doc = self._db[EXECUTIONS].find_one({"_id": execution_id})
        return to_execution(doc) if doc else None

    @unavailable_on_failure
    def list(self, request: ExecutionQuery) -> ExecutionPage:
        limit = request.limit
        query: dict[str, Any] = {}
        if request.saga_id:
            query["saga_id"] = request.saga_id
        if request.status:
            query["status"] = request.status
        # BSON dates keep milliseconds: bounds are cut to them, so a started_at copied from
        # an execution (microseconds) bounds it as it does in the write model.
        started: dict[str, datetime] = {}
        if request.started_after:
            started["$gte"] = _to_millisecond(request.started_after)
        if request.started_before:
            started["$lt"] = _to_millisecond(request.started_before)
        if started:
            query["started_at"] = started
        clauses: list[dict[str, Any]] = []
        if request.needs_attention is not None:
            clauses.append(_NEEDS_ATTENTION if request.needs_attention else _NO_ATTENTION)
        if request.resolved is not None:
            clauses.append({"resolved_by": {"$ne": None} if request.resolved else None})
        if request.q:
            clauses.append({"$or": [{"_id": request.q}, {"saga_id": request.q}]})
        if request.cursor:
            # Newest first; the cursor holds "started_at|id" of the last item seen.
            at, last_id = decode_time_cursor(request.cursor)
            clauses.append({"$or": [{"started_at": {"$lt": at}},
                                    {"started_at": at, "_id": {"$lt": last_id}}]})
        if clauses:
            query["$and"] = clauses
        docs = list(self._db[EXECUTIONS].find(query, {"steps": 0, "input": 0})
                    .sort([("started_at", DESCENDING), ("_id", DESCENDING)]).limit(limit + 1))
        # Not loaded, for light pages: the empty input only fills the model; listings leave
        # it out (app.LISTED_WITHOUT), never show it as the execution's.
        items = [to_execution({**doc, "steps": [], "input": {}}) for doc in docs[:limit]]
        next_cursor = None
        if len(docs) > limit and items:
            last = docs[limit - 1]
            next_cursor = encode_cursor(f"{utc(last['started_at']).isoformat()}|{last['_id']}")
        return ExecutionPage(items, next_cursor)

    @unavailable_on_failure
    def latest(self, saga_id: str) -> Execution | None:
        doc = self._db[EXECUTIONS].find_one({"saga_id": saga_id},
                                           sort=[("started_at", DESCENDING), ("_id", DESCENDING)])
        return to_execution(doc) if doc else None

    @unavailable_on_failure
    def summary(self, saga_id: str) -> dict[str, Any]:
        return read_views.summary(self._db[SUMMARIES].find_one({"_id": saga_id}) or {})

    @unavailable_on_failure
    def totals(self) -> dict[str, Any]:
        return read_views.totals(self._db[SUMMARIES].find({}, {"by_status": 1, "executions": 1}))

    @unavailable_on_failure
    def history(self, query: HistoryQuery) -> HistoryPage:
        # Buckets' ids sort as (execution, first sequence): the _id index walks one
        # execution's, from the bucket holding the cursor's sequence on; read while needed.
        after = _history_after(query.cursor)
        execution_id = query.execution_id
        found = self._db[EVENTS].find(
            {"_id": {"$gte": f"{execution_id}/", "$lt": f"{execution_id}0"},
             "execution_id": execution_id, "last": {"$gt": after}}, {"events": 1},
            sort=[("_id", ASCENDING)], batch_size=8)
        with found:
            items, more = unwound(found, after, query.limit)
        return HistoryPage(items, encode_cursor(str(items[-1].sequence)) if more else None)


def _history_after(cursor: str | None) -> int:
    """The sequence a history cursor holds (0: from the first event)."""
    if cursor is None:
        return 0
    after = decode_cursor(cursor)
    if not after.isdigit():
        raise ValueError("cursor is not one this API returned")
    return int(after)


def _to_millisecond(at: datetime) -> datetime:
    return at.replace(microsecond=at.microsecond // 1000 * 1000)

