"""The projector: applies batches of events to the MongoDB read model.

A batch costs a few round trips whatever its size: its executions' documents are read with one
query, its events folded onto them in memory (chalicelib.domain.projection: idempotent by each
execution's sequence), and the results written with one unordered bulk write: new documents
inserted, the others replaced only while their stored sequence is below the new one, so a
replayed or concurrent writer never moves one backwards. Each saga's counters then move by the
batch's sums in one more.

All of it runs in one MongoDB transaction. The counters are what needs it: a document and the
counters its events moved must change together, or a retry after a failure between the two
writes would find the events applied already and never count them (and a concurrent writer of
the same document would count them twice). One transaction per batch, not per event, is the
price.

The applied events are also kept as the executions' history (collection `events`,
chalicelib.domain.history), inserted in the same transaction, an execution's events of the
batch in one bucket document: only events the fold applied are inserted, so a re-applied
event (its execution's sequence is past it) adds nothing. A bucket's _id is "<execution
id>/<first sequence, 12 digits>", so the _id index is the index by (execution_id, sequence)
that the history's reads walk. A TTL index on its last event's time removes it once config
read_model.history_retention has passed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel, InsertOne, MongoClient, ReplaceOne, UpdateOne
from pymongo.client_session import ClientSession
from pymongo.database import Database
from pymongo.errors import OperationFailure

from chalicelib.config import DEFAULT_HISTORY_RETENTION_S
from chalicelib.domain.history import buckets
from chalicelib.domain.lifecycle import ExecutionStatus
from chalicelib.domain.projection import Placed, Projection, by_execution, project

EXECUTIONS = "executions"
SUMMARIES = "saga_summaries"
EVENTS = "events"
_RETENTION_INDEX = "at_ttl"
_INDEX_OPTIONS_CONFLICT = 85


def ensure_indexes(db: Database, history_retention_s: int = DEFAULT_HISTORY_RETENTION_S) -> None:
    """One index per query the API makes of the read model (one command a collection: a
    rebuild makes them again), and the history's retention (a TTL index: MongoDB removes a
    record once `history_retention_s` has passed since its event; a new retention changes
    the index in place)."""
    ensure_execution_indexes(db)
    ensure_history_indexes(db, history_retention_s)


def ensure_execution_indexes(db: Database) -> None:
    db[EXECUTIONS].create_indexes([
        IndexModel([("saga_id", ASCENDING), ("started_at", DESCENDING), ("_id", DESCENDING)]),
        IndexModel([("status", ASCENDING), ("started_at", DESCENDING), ("_id", DESCENDING)]),
        IndexModel([("started_at", DESCENDING), ("_id", DESCENDING)]),
        # GET /callbacks: running executions only (few, next to those that ended), by their
        # steps' statuses (one WAITING: a wait), then saga.
        IndexModel([("steps.status", ASCENDING), ("saga_id", ASCENDING)], name="open_waits",
                   partialFilterExpression={"status": ExecutionStatus.RUNNING.value})])


def ensure_history_indexes(db: Database, history_retention_s: int) -> None:
    """The history's retention: a TTL index on each bucket's last event's time."""
    retention = IndexModel([("at", ASCENDING)], name=_RETENTION_INDEX,
                           expireAfterSeconds=history_retention_s)
    try:
        db[EVENTS].create_indexes([retention])
    except OperationFailure as error:
        if error.code != _INDEX_OPTIONS_CONFLICT:
            raise
        db.command("collMod", EVENTS, index={"name": _RETENTION_INDEX,
                                             "expireAfterSeconds": history_retention_s})


class Overtaken(RuntimeError):
    """A document had moved past what the batch read (another writer): nothing was written,
    and the batch can be applied again from a fresh read."""


class Projector:
    def __init__(self, client: MongoClient, db: Database,
                 on_applied: Callable[[Mapping[str, Any]], None] | None = None) -> None:
        self.client = client
        self.db = db
        self.on_applied = on_applied

    def apply(self, event: Mapping[str, Any]) -> bool:
        """Apply one event; False when it was already applied (or is not for the read model)."""
        return self.apply_batch([event]) == 1

    def apply_batch(self, events: Iterable[Mapping[str, Any]]) -> int:
        """Apply a batch of events (executions interleaved, each's in order); how many changed
        the read model. All or nothing: on an error nothing of the batch is written."""
        grouped = by_execution(events)
        if not grouped:  # definitions' events and the like: no I/O at all
            return 0
        with self.client.start_session() as session:
            projection: Projection = session.with_transaction(
                lambda s: self._write(s, grouped))
        if self.on_applied is not None:
            for event in projection.applied:
                self.on_applied(event)
        return len(projection.applied)

    def _write(self, session: ClientSession,
               grouped: Mapping[str, list[Placed]]) -> Projection:
        executions = self.db[EXECUTIONS]
        current = {doc["_id"]: doc for doc in executions.find(
            {"_id": {"$in": list(grouped)}}, session=session)}
        projection = project(grouped, current, datetime.now(UTC))
        # A new document is inserted (a concurrent insert of the same one conflicts), one
        # read is replaced only while its stored sequence is below the new one.
        writes = [InsertOne(projected.document) if projected.read_sequence is None else
                  ReplaceOne({"_id": execution_id,
                              "sequence": {"$lt": projected.document["sequence"]}},
                             projected.document)
                  for execution_id, projected in projection.documents.items()]
        if writes:
            result = executions.bulk_write(writes, ordered=False, session=session)
            written = result.inserted_count + result.matched_count
            if written != len(writes):
                raise Overtaken(f"{len(writes) - written} of {len(writes)} documents moved on "
                                "meanwhile")
        counters = [UpdateOne({"_id": saga_id}, {
            "$inc": {**({"executions": change.executions} if change.executions else {}),
                     **{f"by_status.{status}": n for status, n in change.by_status.items()}},
            "$max": {"last_execution_at": change.last_at}}, upsert=True)
            for saga_id, change in projection.summaries.items()]
        if counters:
            self.db[SUMMARIES].bulk_write(counters, ordered=False, session=session)
        if projection.applied:
            # New to the history: each is past its document's sequence as read, and that
            # document's write above holds it against any other writer until the commit.
            self.db[EVENTS].insert_many(buckets(projection.applied), ordered=False,
                                        session=session)
        return projection
