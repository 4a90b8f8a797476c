"""MariaDB, MongoDB and Kafka really work through the project's own client code."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pymysql
import pytest
from pymongo.errors import OperationFailure

from chalicelib.adapters.kafka import publisher as kafka
from chalicelib.adapters.mongo import client as mongo
from chalicelib.adapters.mysql import connector as mysql
from chalicelib.config import Settings


@pytest.fixture
def connector(settings: Settings) -> Iterator[mysql.MySQLConnector]:
    connector = mysql.MySQLConnector(settings.database.mysql)
    yield connector
    connector.close()


def test_mysql_round_trip_in_a_transaction(connector: mysql.MySQLConnector, unique: str) -> None:
    table = f"smoke_{unique}"
    with connector.transaction() as cur:
        cur.execute(f"CREATE TABLE `{table}` (id INT PRIMARY KEY, note VARCHAR(50)) ENGINE=InnoDB")
    try:
        with connector.transaction() as cur:
            cur.execute(f"INSERT INTO `{table}` VALUES (%s, %s), (%s, %s)",
                        (1, "ünïcode ✓", 2, "two"))
        with connector.transaction() as cur:
            cur.execute(f"SELECT id, note FROM `{table}` ORDER BY id")
            assert cur.fetchall() == [{"id": 1, "note": "ünïcode ✓"}, {"id": 2, "note": "two"}]
    finally:
        with connector.transaction() as cur:
            cur.execute(f"DROP TABLE `{table}`")


def test_mysql_transaction_rolls_back_every_row_on_error(
    connector: mysql.MySQLConnector, unique: str
) -> None:
    table = f"smoke_{unique}"
    with connector.transaction() as cur:
        cur.execute(f"CREATE TABLE `{table}` (id INT PRIMARY KEY) ENGINE=InnoDB")
    try:
        with pytest.raises(pymysql.IntegrityError), connector.transaction() as cur:
            cur.execute(f"INSERT INTO `{table}` VALUES (1)")
            cur.execute(f"INSERT INTO `{table}` VALUES (1)")  # duplicate key
        with connector.transaction() as cur:
            cur.execute(f"SELECT COUNT(*) AS n FROM `{table}`")
            assert cur.fetchone()["n"] == 0
    finally:
        with connector.transaction() as cur:
            cur.execute(f"DROP TABLE `{table}`")


def test_mysql_connector_reconnects_after_the_server_dropped_it(
    connector: mysql.MySQLConnector,
) -> None:
    with connector.transaction() as cur:
        cur.execute("SELECT CONNECTION_ID() AS id")
        first = cur.fetchone()["id"]
    # Kill our own session from a second connection, as a server restart or idle timeout would.
    with mysql.MySQLConnector(connector._settings).transaction() as other:
        other.execute("KILL %s", (first,))
    with connector.transaction() as cur:
        cur.execute("SELECT CONNECTION_ID() AS id")
        assert cur.fetchone()["id"] != first


def test_mongodb_insert_find_and_transaction(settings: Settings, unique: str) -> None:
    with mongo.mongo_client(settings.database.mongodb) as client:
        collection = mongo.read_model(client, settings.database.mongodb)[f"smoke_{unique}"]
        try:
            collection.insert_one({"_id": "a", "n": 1})
            assert collection.find_one({"_id": "a"}) == {"_id": "a", "n": 1}
            # Multi-document transactions need the replica set the stack initiates.
            with (client.start_session() as session, pytest.raises(OperationFailure),
                  session.start_transaction()):
                collection.insert_one({"_id": "b", "n": 2}, session=session)
                collection.database.command({"invalidCommandForAbort": 1}, session=session)
            assert collection.count_documents({}) == 1
            with client.start_session() as session, session.start_transaction():
                collection.insert_one({"_id": "c", "n": 3}, session=session)
            assert sorted(doc["_id"] for doc in collection.find()) == ["a", "c"]
        finally:
            collection.drop()


def _poll(consumer, want: int, seconds: float = 20.0) -> list:  # type: ignore[no-untyped-def]
    records = []
    deadline = time.monotonic() + seconds
    while len(records) < want and time.monotonic() < deadline:
        for batch in consumer.poll(timeout_ms=500).values():
            records.extend(batch)
    return records


def test_kafka_produce_then_consume_in_a_group(settings: Settings, unique: str) -> None:
    topic = f"smoke-{unique}"
    group = f"smoke-group-{unique}"
    producer = kafka.producer(settings.kafka)
    try:
        for n in range(5):
            producer.send(topic, key="execution-1", value={"n": n, "text": "ü"}).get(timeout=20)
    finally:
        producer.close()

    first = kafka.consumer(settings.kafka, [topic], group_id=group)
    try:
        records = _poll(first, want=5)
        assert [r.value for r in records] == [{"n": n, "text": "ü"} for n in range(5)]
        assert {r.key for r in records} == {"execution-1"}
        first.commit()
    finally:
        first.close()

    # The group's committed offset holds: a new member of the group reads nothing again.
    producer = kafka.producer(settings.kafka)
    try:
        producer.send(topic, key="execution-1", value={"n": 5}).get(timeout=20)
    finally:
        producer.close()
    second = kafka.consumer(settings.kafka, [topic], group_id=group)
    try:
        assert [r.value for r in _poll(second, want=1)] == [{"n": 5}]
    finally:
        second.close()
