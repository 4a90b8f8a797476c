"""The outbox relay against the real MariaDB and Kafka, including Kafka going away."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from kafka.consumer.fetcher import ConsumerRecord

from chalicelib.adapters.kafka import publisher as kafka
from chalicelib.adapters.kafka.publisher import KafkaPublisher
from chalicelib.adapters.mysql import connector as mysql
from chalicelib.adapters.mysql.executions import append_event, insert_execution
from chalicelib.adapters.mysql.relay import OutboxRelay
from chalicelib.config import Settings
from chalicelib.domain.event_records import header_map
from chalicelib.domain.executions import Execution, ExecutionStatus, StepShape
from chalicelib.domain.lifecycle import StepKind
from chalicelib.domain.storable import (
    ENVELOPE_OVERHEAD_BYTES,
    TooLarge,
    check_storable,
    event_bytes,
)
from infra.stack.supervisor import Supervisor
from tests.support.databases import migrated_connector

DB = "saga_db_test_relay"

ONE_STEP = StepShape(step_id="a", group=1, kind=StepKind.COMPENSATABLE)


@pytest.fixture(scope="module")
def connector(settings: Settings) -> Iterator[mysql.MySQLConnector]:
    with migrated_connector(settings, DB) as connector:
        yield connector


def _executions_with_events(connector: mysql.MySQLConnector, executions: int,
                            events_each: int) -> dict[str, list[str]]:
    """Executions with events in the outbox; their event ids, in order, by execution."""
    ids: dict[str, list[str]] = {}
    now = datetime.now(UTC)
    with connector.transaction() as cur:
        for _ in range(executions):
            execution_id = f"ex-{uuid.uuid4().hex[:10]}"
            insert_execution(cur, Execution(
                id=execution_id, saga_id="s", revision=1, version="1.0.0",
                status=ExecutionStatus.RUNNING, input={}, started_at=now, updated_at=now), [])
            ids[execution_id] = [
                append_event(cur, "saga.step.succeeded", execution_id=execution_id,
                             data={"n": n}, at=now.replace(tzinfo=None))["id"]
                for n in range(events_each)]
    return ids


def _consume_records(settings: Settings, topic: str, want: int,
                     seconds: float = 30) -> list[ConsumerRecord]:
    consumer = kafka.consumer(settings.kafka, [topic], group_id=f"g-{uuid.uuid4().hex}")
    got: list[ConsumerRecord] = []
    deadline = time.monotonic() + seconds
    try:
        while len(got) < want and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                got += records
    finally:
        consumer.close()
    return got


def _consume(settings: Settings, topic: str, want: int, seconds: float = 30) -> list[dict]:
    return [record.value for record in _consume_records(settings, topic, want, seconds)]


def _unpublished(connector: mysql.MySQLConnector) -> int:
    with connector.transaction() as cur:
        cur.execute("SELECT COUNT(*) AS n FROM outbox WHERE published_at IS NULL")
        return cur.fetchone()["n"]


def test_relay_publishes_every_event_once_in_order_per_key(
    settings: Settings, connector: mysql.MySQLConnector
) -> None:
    topic = f"relay-{uuid.uuid4().hex[:8]}"
    expected = _executions_with_events(connector, executions=20, events_each=5)
    relay = OutboxRelay(connector, KafkaPublisher(settings.kafka), topic, batch_size=30)
    assert relay.drain() == 100
    assert _unpublished(connector) == 0
    assert relay.drain() == 0  # nothing twice
    records = _consume_records(settings, topic, want=100)
    received = [record.value for record in records]
    by_key: dict[str, list[str]] = {}
    for event in received:
        by_key.setdefault(event["key"], []).append(event["id"])
    assert by_key == expected
    assert all([e["sequence"] for e in received if e["key"] == key] == [1, 2, 3, 4, 5]
               for key in expected)
    # Every record's headers say what its envelope says, field by field.
    for record in records:
        event = record.value
        assert header_map(record.headers) == {
            "event_id": event["id"], "event_type": event["type"], "event_key": event["key"],
            "event_sequence": str(event["sequence"]), "content-type": "application/json"}
        assert record.key == event["key"]


def test_the_largest_event_the_api_accepts_is_one_the_broker_takes(
    settings: Settings, connector: mysql.MySQLConnector
) -> None:
    topic = f"relay-{uuid.uuid4().hex[:8]}"
    limit = settings.kafka.max_request_size - ENVELOPE_OVERHEAD_BYTES
    saga_input = {"note": "x" * (limit - event_bytes({"note": ""}))}
    check_storable({"input": saga_input}, max_event_bytes=settings.kafka.max_request_size)
    with pytest.raises(TooLarge):  # one byte more is refused at the door
        check_storable({"input": {"note": saga_input["note"] + "x"}},
                       max_event_bytes=settings.kafka.max_request_size)
    now = datetime.now(UTC)
    execution_id = f"ex-{uuid.uuid4().hex[:10]}"
    with connector.transaction() as cur:
        insert_execution(cur, Execution(
            id=execution_id, saga_id="s", revision=1, version="1.0.0",
            status=ExecutionStatus.RUNNING, input=saga_input, started_at=now, updated_at=now),
            [ONE_STEP])
        sent = append_event(cur, "saga.execution.started", execution_id=execution_id,
                            data={"saga_id": "s", "input": saga_input, "steps": ["a"]},
                            at=now.replace(tzinfo=None))
    relay = OutboxRelay(connector, KafkaPublisher(settings.kafka), topic, batch_size=10)
    assert relay.drain() == 1
    assert relay.stats.dead_letters == 0 and relay.stats.failures == 0
    [record] = _consume_records(settings, topic, want=1)
    assert record.value["id"] == sent["id"]
    assert record.value["data"]["input"] == saga_input
    assert len(record.value["data"]["input"]["note"]) > 1_000_000


def test_nothing_is_lost_while_kafka_is_down(
    settings: Settings, connector: mysql.MySQLConnector, local_stack: Supervisor
) -> None:
    topic = f"relay-{uuid.uuid4().hex[:8]}"
    # A short producer timeout: the send to a stopped broker gives up in seconds, not 30.
    quick = settings.kafka.model_copy(update={"producer_timeout": "2s"})
    relay = OutboxRelay(connector, KafkaPublisher(quick), topic, batch_size=50)
    relay.drain()  # what earlier tests left
    local_stack.down(["kafka"])
    try:
        expected = _executions_with_events(connector, executions=10, events_each=3)
        started = time.monotonic()
        with pytest.raises(Exception):  # noqa: B017 - any Kafka client error will do
            relay.run_once()
        # The producer timeout (2 s) bounds the wait, not kafka-python's 30 s bootstrap default.
        assert time.monotonic() - started < 15
        assert _unpublished(connector) == 30  # nothing marked sent that was not acked
    finally:
        local_stack.up(["kafka"])
    recovered_at = time.monotonic()
    deadline = recovered_at + 60
    while _unpublished(connector) and time.monotonic() < deadline:
        try:
            relay.drain()
        except Exception:
            time.sleep(0.5)  # the broker is still electing leaders
    assert _unpublished(connector) == 0
    received = _consume(settings, topic, want=30)
    ids = [event["id"] for event in received]
    assert sorted(ids) == sorted(i for events in expected.values() for i in events)
    assert len(ids) == len(set(ids))
