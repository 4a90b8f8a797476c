"""The projector's bulk path end to end on the real MariaDB, Kafka and MongoDB: executions that
end every way, run side by side by the real step runtime over the MySQL stores (their events
interleaved in the outbox), relayed to Kafka and projected by the consumer in batches of many
executions. The read model then equals the write model field by field, and the same events
replayed from the topic's start by a second consumer group change nothing; a rebuild from the
outbox gives it again. And two projectors writing the same events at once, in batches cut
differently, count every change once."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import pytest
from pymongo.database import Database

from chalicelib.adapters.kafka import publisher as kafka
from chalicelib.adapters.kafka.consumer import run_projector
from chalicelib.adapters.kafka.publisher import KafkaPublisher
from chalicelib.adapters.mongo.client import mongo_client
from chalicelib.adapters.mongo.projector import EXECUTIONS, SUMMARIES, Projector, ensure_indexes
from chalicelib.adapters.mongo.read_model import MongoExecutionReadModel
from chalicelib.adapters.mysql.connector import MySQLConnector
from chalicelib.adapters.mysql.definitions import MySQLDefinitionStore
from chalicelib.adapters.mysql.executions import MySQLExecutionStore, load_execution
from chalicelib.adapters.mysql.relay import OutboxRelay
from chalicelib.adapters.mysql.step_ledger import MySQLStepLedger
from chalicelib.config import Settings
from chalicelib.domain.projection import by_execution
from chalicelib.domain.read_documents import APPLIED
from chalicelib.roots import runtime
from chalicelib.roots.container import Container
from infra.local_events import rebuild_read_model
from tests.support.databases import migrated_connector
from tests.support.projection_streams import ENDINGS, Streams, written
from tests.support.records import differences

EXECUTIONS_RUN = 5 * len(ENDINGS)
DATABASE = f"saga_db_test_bulk_{uuid.uuid4().hex[:8]}"


class Watched:
    """The real projector, counting what it is given and what it applies."""

    def __init__(self, projector: Projector) -> None:
        self.projector = projector
        self.seen = 0
        self.applied = 0
        self.widest = 0  # the most executions one batch held
        self.lock = threading.Lock()

    def apply(self, event: Mapping[str, Any]) -> bool:
        return self.apply_batch([event]) == 1

    def apply_batch(self, events: Iterable[Mapping[str, Any]]) -> int:
        batch = list(events)
        applied = self.projector.apply_batch(batch)
        with self.lock:
            self.seen += len(batch)
            self.applied += applied
            self.widest = max(self.widest, len(by_execution(batch)))
        return applied


@pytest.fixture(scope="module")
def in_mysql(settings: Settings) -> Iterator[tuple[MySQLConnector, list[str], list[dict]]]:
    """The executions written, their ids, and the whole outbox in order."""
    with migrated_connector(settings, DATABASE) as connector:
        streams = Streams(MySQLDefinitionStore(connector), MySQLExecutionStore(connector),
                          MySQLStepLedger(connector))
        ids = streams.run(EXECUTIONS_RUN)
        with connector.transaction() as cur:
            cur.execute("SELECT envelope FROM outbox ORDER BY id")
            outbox = [json.loads(row["envelope"]) for row in cur.fetchall()]
        yield connector, ids, outbox


@pytest.fixture
def read_model(settings: Settings, unique: str) -> Iterator[Database]:
    client = mongo_client(settings.database.mongodb)
    db = client[f"bulk_{unique}"]
    ensure_indexes(db)
    try:
        yield db
    finally:
        client.drop_database(db.name)
        client.close()


def _project_from_the_start(settings: Settings, topic: str, watched: Watched,
                            until: int) -> None:
    """A consumer group of its own reads the topic from its start into `watched`, until it
    has been given `until` events."""
    group = f"bulk-{uuid.uuid4().hex[:8]}"
    stop = threading.Event()
    worker = threading.Thread(target=run_projector, args=(
        lambda: kafka.consumer(settings.kafka, [topic], group_id=group), watched, stop),
        kwargs={"deadline": time.monotonic() + 60}, daemon=True)
    worker.start()
    try:
        deadline = time.monotonic() + 60
        while watched.seen < until and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        worker.join(timeout=20)
    assert watched.seen >= until, f"{watched.seen} of {until} events consumed"


def _same_as_written(connector: MySQLConnector, ids: list[str], read_model: Database) -> None:
    """Every execution as the write model holds it, field by field; each saga's counters."""
    reads = MongoExecutionReadModel(read_model)
    statuses: Counter[tuple[str, str]] = Counter()
    with connector.transaction() as cur:
        for execution_id in ids:
            write = load_execution(cur, execution_id)
            assert write is not None
            assert differences(write, reads.get(execution_id)) == [], execution_id
            statuses[(write.saga_id, write.status.value)] += 1
    for saga_id in {saga for saga, _ in statuses}:
        summary = reads.summary(saga_id)
        assert summary["by_status"] == {status: n for (saga, status), n in statuses.items()
                                        if saga == saga_id}
        assert summary["executions"] == sum(summary["by_status"].values())


def test_interleaved_executions_are_projected_in_bulk_and_replayed_idempotently(
        settings: Settings, in_mysql: tuple[MySQLConnector, list[str], list[dict]],
        read_model: Database) -> None:
    connector, ids, outbox = in_mysql
    topic = f"bulk-{uuid.uuid4().hex[:8]}"
    assert OutboxRelay(connector, KafkaPublisher(settings.kafka), topic,
                       batch_size=1000).drain() == len(outbox)
    applicable = sum(1 for event in outbox if event["type"] in APPLIED)

    first = Watched(Projector(read_model.client, read_model))
    _project_from_the_start(settings, topic, first, until=len(outbox))
    assert first.applied == applicable
    assert first.widest >= 10, "the batches held few executions each"

    _same_as_written(connector, ids, read_model)

    documents = {doc["_id"]: doc for doc in read_model[EXECUTIONS].find()}
    summaries = list(read_model[SUMMARIES].find())
    again = Watched(Projector(read_model.client, read_model))
    _project_from_the_start(settings, topic, again, until=len(outbox))
    assert again.applied == 0
    assert {doc["_id"]: doc for doc in read_model[EXECUTIONS].find()} == documents
    assert list(read_model[SUMMARIES].find()) == summaries


def test_two_projectors_at_once_never_go_back_and_count_each_change_once(
        read_model: Database) -> None:
    run = written(4 * len(ENDINGS))
    errors: list[BaseException] = []

    def project(size: int) -> None:
        projector = Projector(read_model.client, read_model)
        try:
            for start in range(0, len(run.outbox), size):
                projector.apply_batch(run.outbox[start:start + size])
        except BaseException as error:  # reported below, not lost in the thread
            errors.append(error)

    workers = [threading.Thread(target=project, args=(size,)) for size in (7, 11)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert errors == []
    reads = MongoExecutionReadModel(read_model)
    for execution_id in run.ids:
        assert differences(run.write_view(execution_id), reads.get(execution_id)) == []
    counted = Counter(run.write_view(i).status.value for i in run.ids)
    assert (reads.totals()["executions"], reads.totals()["by_status"]) == (
        len(run.ids), dict(counted))


def test_a_rebuild_from_the_outbox_is_the_write_model(
        settings: Settings, in_mysql: tuple[MySQLConnector, list[str], list[dict]],
        read_model: Database) -> None:
    connector, ids, outbox = in_mysql
    database = settings.database.model_copy(update={
        "mysql": settings.database.mysql.model_copy(update={"database": DATABASE}),
        "mongodb": settings.database.mongodb.model_copy(update={"database": read_model.name})})
    parts = Container(settings.model_copy(update={"database": database})).provide(
        mongo=read_model.client)
    runtime.use(parts)
    try:
        # Small batches: many of them, each read while the one before is written.
        assert rebuild_read_model(batch=16) == sum(e["type"] in APPLIED for e in outbox)
    finally:
        runtime.use(None)
        parts.connector.close()
    _same_as_written(connector, ids, read_model)

