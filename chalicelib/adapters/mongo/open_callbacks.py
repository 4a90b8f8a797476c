"""Open callbacks as the read model (MongoDB) holds them: GET /callbacks and its count.

The rule of which step is one and their order are chalicelib.domain.open_callbacks'; here
they are a pipeline: the running executions with such a step (the partial index
`open_waits` holds running executions only, by their steps' statuses), only the fields the
listing shows, one row per step, the rule again on the step itself, then the order.
"""

from __future__ import annotations

from typing import Any

from pymongo.database import Database

from chalicelib.adapters.cursors import decode_cursor, encode_cursor
from chalicelib.adapters.mongo.projector import EXECUTIONS
from chalicelib.adapters.mongo.read_model import unavailable_on_failure
from chalicelib.domain.lifecycle import ExecutionStatus, StepStatus, WaitKind
from chalicelib.domain.open_callbacks import (
    OpenCallback,
    after_cursor,
    cursor_text,
    record_time,
)
from chalicelib.usecases.ports import CallbackPage, CallbackQuery

_SHOWN = {"saga_id": 1, "version": 1, "revision": 1, "steps.step_id": 1, "steps.status": 1,
          "steps.waiting": 1}
_ORDER = {"steps.waiting.since": 1, "steps.waiting.callback_id": 1}


def open_rows(query: CallbackQuery) -> list[dict[str, Any]]:
    """The pipeline's stages up to one row per open callback (before the cursor)."""
    step: dict[str, Any] = {
        "status": StepStatus.WAITING.value, "waiting.kind": WaitKind.CALLBACK.value,
        "waiting.completed_at": None, "waiting.callback_id": {"$gt": ""},
        # Times are ISO 8601 text in UTC (+00:00): compared as text, in time order.
        "waiting.until": {"$gt": record_time(query.now)}}
    if query.approval is not None:
        step["waiting.approval"] = True if query.approval else {"$ne": True}
    documents: dict[str, Any] = {"status": ExecutionStatus.RUNNING.value,
                                 "steps": {"$elemMatch": step}}
    if query.saga_id is not None:
        documents["saga_id"] = query.saga_id
    return [{"$match": documents}, {"$project": _SHOWN}, {"$unwind": "$steps"},
            {"$match": {f"steps.{name}": value for name, value in step.items()}}]


class MongoOpenCallbacks:
    def __init__(self, db: Database) -> None:
        self._db = db

    @unavailable_on_failure
    def open_callbacks(self, query: CallbackQuery) -> CallbackPage:
        pipeline = open_rows(query)
        if query.cursor:
            since, callback_id = after_cursor(decode_cursor(query.cursor))
            pipeline.append({"$match": {"$or": [
                {"steps.waiting.since": {"$gt": since}},
                {"steps.waiting.since": since,
                 "steps.waiting.callback_id": {"$gt": callback_id}}]}})
        pipeline += [{"$sort": _ORDER}, {"$limit": query.limit + 1}]
        rows = list(self._db[EXECUTIONS].aggregate(pipeline))
        items = [OpenCallback.of(row, row["steps"]) for row in rows[:query.limit]]
        more = len(rows) > query.limit and items
        return CallbackPage(items, encode_cursor(cursor_text(rows[query.limit - 1]["steps"]))
                            if more else None)

    @unavailable_on_failure
    def count_open_callbacks(self, query: CallbackQuery) -> int:
        counted = list(self._db[EXECUTIONS].aggregate([*open_rows(query), {"$count": "n"}]))
        return int(counted[0]["n"]) if counted else 0
