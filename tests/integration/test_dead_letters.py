"""Poison events against the real MariaDB, Kafka and MongoDB: each becomes a dead letter after
a few attempts, the events behind it still flow, and a replay delivers it."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime

import pytest

from chalicelib.adapters.kafka import publisher as kafka
from chalicelib.adapters.kafka.consumer import apply_all
from chalicelib.adapters.kafka.publisher import KafkaPublisher
from chalicelib.adapters.mongo.projector import EXECUTIONS
from chalicelib.adapters.mysql import connector as mysql
from chalicelib.adapters.mysql.dead_letters import PROJECTOR, RELAY, MySQLDeadLetters
from chalicelib.adapters.mysql.executions import append_event, insert_execution
from chalicelib.adapters.mysql.relay import OutboxRelay
from chalicelib.config import Settings
from chalicelib.domain import event_types, events
from chalicelib.domain.event_records import EventRecord
from chalicelib.domain.executions import Execution, ExecutionStatus
from chalicelib.roots import runtime
from chalicelib.roots.container import Container
from infra import cli
from infra.exit_codes import Exit
from tests.support.databases import migrated_connector

DB = "saga_db_test_dead_letters"


@pytest.fixture(scope="module")
def connector(settings: Settings) -> Iterator[mysql.MySQLConnector]:
    with migrated_connector(settings, DB) as connector:
        yield connector


def _execution_with(connector: mysql.MySQLConnector, payloads: list[dict]) -> tuple[str, list]:
    """An execution whose outbox holds one event per payload, written past the API's checks."""
    now = datetime.now(UTC)
    execution_id = f"dl-{uuid.uuid4().hex[:10]}"
    with connector.transaction() as cur:
        insert_execution(cur, Execution(
            id=execution_id, saga_id="s", revision=1, version="1.0.0",
            status=ExecutionStatus.RUNNING, input={}, started_at=now, updated_at=now), [])
        sent = [append_event(cur, event_types.STEP_SUCCEEDED, execution_id=execution_id, data=data,
                             at=now.replace(tzinfo=None)) for data in payloads]
    return execution_id, sent


def _consume(settings: Settings, topic: str, want: int, seconds: float = 20) -> list[dict]:
    consumer = kafka.consumer(settings.kafka, [topic], group_id=f"g-{uuid.uuid4().hex}")
    got: list[dict] = []
    deadline = time.monotonic() + seconds
    try:
        while len(got) < want and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                got += [r.value for r in records]
    finally:
        consumer.close()
    return got


class RefusingOnce(KafkaPublisher):
    """The real publisher, refusing named event ids (as a broker refuses a record) until told."""

    def __init__(self, settings: Settings, refuse: set[str]) -> None:
        super().__init__(settings.kafka)
        self.refuse = refuse

    def publish(self, topic: str, records: Sequence[EventRecord]) -> dict[int, str]:
        refused = {i: "InvalidRecordError: refused for the test" for i, record
                   in enumerate(records) if json.loads(record.value)["id"] in self.refuse}
        kept = [(i, r) for i, r in enumerate(records) if i not in refused]
        inner = super().publish(topic, [r for _, r in kept])
        refused.update({kept[j][0]: reason for j, reason in inner.items()})
        return refused


def test_an_event_kafka_refuses_is_dead_lettered_and_the_next_one_delivered(
        settings: Settings, connector: mysql.MySQLConnector) -> None:
    topic = f"dl-{uuid.uuid4().hex[:8]}"
    # 1.5 MB once encoded: over the producer's max_request_size (and the broker's limit).
    execution_id, sent = _execution_with(connector, [{"n": 1}, {"blob": "é" * 250_000},
                                                     {"n": 3}])
    relay = OutboxRelay(connector, KafkaPublisher(settings.kafka), topic, batch_size=50)
    for _ in range(5):
        relay.run_once()
    letters = [d for d in MySQLDeadLetters(connector).list() if d.event_key == execution_id]
    assert [(d.stage, d.event_id, d.attempts) for d in letters] == [(RELAY, sent[1]["id"], 3)]
    assert "MessageSizeTooLarge" in letters[0].reason
    received = _consume(settings, topic, want=2)
    assert [e["id"] for e in received] == [sent[0]["id"], sent[2]["id"]]
    assert relay.run_once() == 0  # nothing left waiting: the pipeline goes on


def test_a_replayed_relay_dead_letter_is_published(
        settings: Settings, connector: mysql.MySQLConnector,
        monkeypatch: pytest.MonkeyPatch) -> None:
    topic = f"dl-{uuid.uuid4().hex[:8]}"
    execution_id, sent = _execution_with(connector, [{"n": 1}, {"n": 2}])
    relay = OutboxRelay(connector, RefusingOnce(settings, {sent[0]["id"]}), topic)
    for _ in range(4):
        relay.run_once()
    letters = MySQLDeadLetters(connector)
    [letter] = [d for d in letters.list() if d.event_key == execution_id]
    # The CLI's container, with this test's database.
    parts = Container(settings).provide(connector=connector)
    monkeypatch.setattr(runtime, "container", lambda: parts)
    assert cli._dead_letters(letter.id) == Exit.OK
    assert relay.run_once() == 0  # still refused by this publisher: it waits, not re-lettered
    assert OutboxRelay(connector, KafkaPublisher(settings.kafka), topic).run_once() == 1
    assert [e["id"] for e in _consume(settings, topic, want=2)] == [sent[1]["id"],
                                                                   sent[0]["id"]]
    assert letters.get(letter.id).replayed_at is not None
    assert cli._dead_letters(letter.id) == Exit.FAILED  # replayed already


def test_a_document_mongodb_refuses_is_dead_lettered_and_the_next_one_projected(
        settings: Settings, connector: mysql.MySQLConnector) -> None:
    projector = runtime.container().new_projector()
    poison_id, good_id = f"dl-{uuid.uuid4().hex[:10]}", f"dl-{uuid.uuid4().hex[:10]}"

    def started(execution_id: str, saga_input: dict) -> dict:
        return events.envelope(event_types.EXECUTION_STARTED, key=execution_id,
                               subject=f"execution/{execution_id}", sequence=1,
                               data={"saga_id": "s", "input": saga_input, "steps": ["a"]})

    sink = MySQLDeadLetters(connector)
    applied = apply_all(projector, [started(poison_id, {"bad\x00key": 1}),
                                    started(good_id, {"ok": 1})], sink)
    assert applied == 1
    assert projector.db[EXECUTIONS].find_one({"_id": good_id})["input"] == {"ok": 1}
    assert projector.db[EXECUTIONS].find_one({"_id": poison_id}) is None
    [letter] = [d for d in sink.list() if d.event_key == poison_id]
    assert (letter.stage, letter.attempts) == (PROJECTOR, 3)
    assert "InvalidDocument" in letter.reason
    assert "dead letter" in runtime_health(settings, connector)


def runtime_health(settings: Settings, connector: mysql.MySQLConnector) -> str:
    from chalicelib.roots import health

    database = settings.database.model_copy(
        update={"mysql": settings.database.mysql.model_copy(update={"database": DB})})
    test_settings = settings.model_copy(update={"database": database})
    detail = health.check_health(Container(test_settings),
                                 {"dead_letters": health.CHECKS["dead_letters"]})
    assert detail["components"]["dead_letters"]["status"] == "up"
    count = MySQLDeadLetters(connector).open_count()
    assert detail["components"]["dead_letters"]["detail"].startswith(f"{count} dead letter")
    return detail["components"]["dead_letters"]["detail"]
