"""An execution's history on the real stores: executions moved by MariaDB's write model as the
operator's actions move them (parked, retried forward, parked again, resolved; a compensation
asked for; one left running), their outbox events applied to MongoDB by the real projector in
overlapping batches and once more whole. The history equals the outbox's events field by field,
no event is kept twice, the resolved execution's document says who, when and why as the write
model does, the listing's triage filters agree between the two models, and the history's
retention is a TTL index the configured retention changes in place."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import pytest
from pymongo.database import Database

from chalicelib.adapters.mongo.client import mongo_client
from chalicelib.adapters.mongo.projector import EVENTS, Projector, ensure_indexes
from chalicelib.adapters.mongo.read_model import MongoExecutionReadModel
from chalicelib.adapters.mysql.connector import MySQLConnector
from chalicelib.adapters.mysql.definitions import MySQLDefinitionStore
from chalicelib.adapters.mysql.executions import MySQLExecutionStore
from chalicelib.config import Settings
from chalicelib.domain import event_types
from chalicelib.domain.executions import (
    Execution,
    ExecutionStatus,
    StepShape,
    StepStatus,
    Waiting,
    awaits_approval,
)
from chalicelib.domain.lifecycle import StepKind, needs_attention
from chalicelib.domain.models import SagaDefinition
from chalicelib.usecases.ports import Actor, ExecutionQuery, HistoryQuery
from tests.support.databases import migrated_connector
from tests.support.records import differences

T0 = datetime(2026, 12, 7, 9, 0, 0, 123456, tzinfo=UTC)
_S = ExecutionStatus


@dataclass
class Stores:
    connector: MySQLConnector
    writes: MySQLExecutionStore
    projector: Projector
    reads: MongoExecutionReadModel
    db: Database

    def outbox(self) -> list[dict[str, object]]:
        with self.connector.transaction() as cur:
            cur.execute("SELECT envelope FROM outbox ORDER BY id")
            return [json.loads(row["envelope"]) for row in cur.fetchall()]


@pytest.fixture(scope="module")
def stores(settings: Settings) -> Iterator[Stores]:
    suffix = uuid.uuid4().hex[:8]
    with migrated_connector(settings, f"saga_db_test_history_{suffix}") as connector:
        client = mongo_client(settings.database.mongodb)
        db: Database = client[f"saga_db_test_history_{suffix}"]
        ensure_indexes(db)
        try:
            yield Stores(connector, MySQLExecutionStore(connector), Projector(client, db),
                         MongoExecutionReadModel(db), db)
        finally:
            client.drop_database(db.name)
            client.close()


def _park(writes: MySQLExecutionStore, execution_id: str) -> None:
    assert writes.transition(execution_id, {_S.RUNNING}, _S.PARKED, event_types.SAGA_PARKED,
                             {"reason": "out of attempts"}) is not None


def _written(stores: Stores) -> list[str]:
    MySQLDefinitionStore(stores.connector).insert_version(SagaDefinition.model_validate({
        "id": "ship", "name": "ship", "description": "history test", "version": "1.0.0",
        "steps": [{"id": "a", "order": 1, "action": "send_notification",
                   "compensation": "cancel_notification"}]}),
        expected_revision=None, actor=Actor("test"), action="create")
    writes = stores.writes
    ids = [f"h{n}" for n in range(4)]
    for n, execution_id in enumerate(ids):
        at = T0 + timedelta(minutes=n)
        writes.create(Execution(id=execution_id, saga_id="ship", revision=1, version="1.0.0",
                                status=_S.RUNNING, input={"n": n}, started_at=at,
                                updated_at=at),
                      [StepShape(step_id="a", group=1, kind=StepKind.RETRIABLE)])
    parked, resolved, compensated, _running = ids
    _park(writes, parked)
    _park(writes, resolved)
    assert writes.resume(resolved, ["a"], "alice") is not None
    _park(writes, resolved)
    assert writes.resolve(resolved, "bob", "shipped by hand") is not None
    assert writes.transition(compensated, {_S.RUNNING}, _S.COMPLETED,
                             event_types.SAGA_COMPLETED, {}) is not None
    assert writes.transition(compensated, {_S.COMPLETED}, _S.COMPENSATING,
                             event_types.COMPENSATION_STARTED,
                             {"reason": "compensation requested", "by": "carol"},
                             by_operator=True) is not None
    return ids


def test_the_history_is_the_outboxs_events_field_by_field_and_never_doubled(
        stores: Stores) -> None:
    ids = _written(stores)
    outbox = [event for event in stores.outbox() if event["key"] in ids]
    half = len(outbox) // 2
    stores.projector.apply_batch(outbox[:half + 3])
    stores.projector.apply_batch(outbox[half - 3:])  # overlapping: six events again
    assert stores.projector.apply_batch(outbox) == 0  # a whole replay applies nothing
    kept = [event for bucket in stores.db[EVENTS].find() for event in bucket["events"]]
    assert len(kept) == len(outbox)  # each event once
    for execution_id in ids:
        published = [e for e in outbox if e["key"] == execution_id]
        kept, cursor = [], None
        while True:
            page = stores.reads.history(HistoryQuery(execution_id, 2, cursor))
            kept += page.items
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        assert [(e.id, e.type, e.sequence, e.time, e.data) for e in kept] == [
            (p["id"], p["type"], p["sequence"], datetime.fromisoformat(p["time"]), p["data"])
            for p in published], execution_id
        read = stores.reads.get(execution_id)
        assert read is not None and differences(stores.writes.get(execution_id), read) == []
    decisions = {e.type: e for e in stores.reads.history(HistoryQuery("h1", 100)).items}
    assert (decisions[event_types.SAGA_RESUMED].actor,
            decisions[event_types.SAGA_RESOLVED].actor,
            decisions[event_types.SAGA_RESOLVED].reason) == ("alice", "bob", "shipped by hand")
    resolved = stores.reads.get("h1")
    assert resolved is not None and resolved.resolved_at == decisions[
        event_types.SAGA_RESOLVED].time
    started = {e.type: e for e in stores.reads.history(HistoryQuery("h2", 100)).items}
    assert (started[event_types.COMPENSATION_STARTED].actor,
            started[event_types.COMPENSATION_STARTED].reason) == ("carol",
                                                                  "compensation requested")

    for flags, wanted in (({"needs_attention": True}, {"h0"}),
                          ({"needs_attention": False}, {"h1", "h2", "h3"}),
                          ({"resolved": True}, {"h1"}),
                          ({"resolved": False}, {"h0", "h2", "h3"})):
        query = ExecutionQuery(limit=2, saga_id="ship", **flags)  # type: ignore[arg-type]
        for model in (stores.reads, stores.writes):
            listed, cursor = set(), None
            for _ in range(10):
                page = model.list(replace(query, cursor=cursor))
                listed |= {e.id for e in page.items}
                cursor = page.next_cursor
                if cursor is None:
                    break
            assert listed == wanted, (type(model).__name__, flags)


def test_the_retention_is_a_ttl_index_a_new_setting_changes_in_place(stores: Stores) -> None:
    def retention() -> int:
        indexes = stores.db[EVENTS].index_information()
        return int(next(i["expireAfterSeconds"] for i in indexes.values()
                        if "expireAfterSeconds" in i))

    ensure_indexes(stores.db, 7 * 24 * 3600)
    assert retention() == 7 * 24 * 3600
    ensure_indexes(stores.db, 3600)  # the same index, changed (collMod), not a second one
    assert retention() == 3600
    assert sum("expireAfterSeconds" in i
               for i in stores.db[EVENTS].index_information().values()) == 1


def test_a_running_execution_whose_approval_waits_is_in_the_write_models_queue(
        stores: Stores) -> None:
    MySQLDefinitionStore(stores.connector).insert_version(SagaDefinition.model_validate({
        "id": "approve", "name": "approve", "description": "queue test", "version": "1.0.0",
        "steps": [{"id": "ok", "order": 1, "kind": "callback", "timeout": "48h"}]}),
        expected_revision=None, actor=Actor("test"), action="create")
    since = T0 + timedelta(hours=1)
    wait = Waiting(kind="callback", since=since, until=since + timedelta(hours=48),
                   callback_id="cb_1", approval=True, input={"amount": "9.00"})
    rows = {"waits": (StepStatus.WAITING, wait),
            "decided": (StepStatus.SUCCEEDED,
                        wait.model_copy(update={"completed_by": "callback:alice",
                                                "completed_at": since})),
            "partner": (StepStatus.WAITING, wait.model_copy(update={"approval": False})),
            "not-yet": (StepStatus.PENDING, None)}
    for n, (execution_id, (status, waiting)) in enumerate(rows.items()):
        stores.writes.create(Execution(
            id=execution_id, saga_id="approve", revision=1, version="1.0.0", status=_S.RUNNING,
            input={}, started_at=since + timedelta(seconds=n), updated_at=since),
            [StepShape(step_id="ok", group=1, kind=StepKind.CALLBACK)])
        with stores.connector.transaction() as cur:
            cur.execute("UPDATE step_runs SET status = %s, waiting = %s WHERE execution_id = %s",
                        (status.value, None if waiting is None else json.dumps(waiting.record()),
                         execution_id))
    for flag, wanted in ((True, {"waits"}), (False, {"decided", "partner", "not-yet"})):
        page = stores.writes.list(ExecutionQuery(limit=10, saga_id="approve",
                                                 needs_attention=flag))
        assert {e.id for e in page.items} == wanted, flag
    # The rule the query spells: the lifecycle's, over the loaded records.
    for execution_id in rows:
        loaded = stores.writes.get(execution_id)
        assert loaded is not None
        assert needs_attention(loaded.status, loaded.resolved_by, awaiting_approval=any(
            awaits_approval(step) for step in loaded.steps)) is (execution_id == "waits")
