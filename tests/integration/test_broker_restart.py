"""The whole event pipeline across a Kafka restart, on the real MariaDB, Kafka and MongoDB:
events keep being committed while the broker stops and starts again; the relay publishes every
one, and the projector applies every one to the read model exactly once."""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import pytest

from chalicelib.adapters.kafka import publisher as kafka
from chalicelib.adapters.kafka.consumer import run_projector
from chalicelib.adapters.kafka.publisher import KafkaPublisher
from chalicelib.adapters.mongo.projector import EXECUTIONS
from chalicelib.adapters.mysql import connector as mysql
from chalicelib.adapters.mysql.executions import append_event, insert_execution
from chalicelib.adapters.mysql.relay import OutboxRelay
from chalicelib.config import Settings
from chalicelib.domain import event_types
from chalicelib.domain.executions import Execution, ExecutionStatus, StepShape
from chalicelib.domain.lifecycle import StepKind
from chalicelib.roots import runtime
from chalicelib.roots.container import Container
from infra.stack.supervisor import Supervisor
from tests.support.databases import migrated_connector

DB = "saga_db_test_broker_restart"
EXECUTIONS_WRITTEN = 60
EVENTS_AFTER_START = 4

ONE_STEP = StepShape(step_id="a", group=1, kind=StepKind.COMPENSATABLE)


@pytest.fixture(scope="module")
def connector(settings: Settings) -> Iterator[mysql.MySQLConnector]:
    with migrated_connector(settings, DB) as connector:
        yield connector


@pytest.fixture
def isolated(settings: Settings, unique: str) -> Iterator[Settings]:
    """The session's settings with a read model and a topic of this test's own."""
    mongo = settings.database.mongodb.model_copy(update={"database": f"restart_{unique}"})
    database = settings.database.model_copy(update={"mongodb": mongo})
    yield settings.model_copy(update={
        "database": database,
        "kafka": settings.kafka.model_copy(update={"topic": f"restart-{unique}"})})
    runtime.container().mongo.drop_database(mongo.database)


def _write_execution(connector: mysql.MySQLConnector) -> list[str]:
    """One execution's events, committed to the outbox as the service commits them."""
    now = datetime.now(UTC)
    execution_id = f"rs-{uuid.uuid4().hex[:10]}"
    with connector.transaction() as cur:
        insert_execution(cur, Execution(
            id=execution_id, saga_id="restart", revision=1, version="1.0.0",
            status=ExecutionStatus.RUNNING, input={}, started_at=now, updated_at=now), [ONE_STEP])
        at = now.replace(tzinfo=None)
        sent = [append_event(cur, event_types.EXECUTION_STARTED, execution_id=execution_id,
                             data={"saga_id": "restart", "input": {}, "steps": ["a"]}, at=at)]
        sent += [append_event(cur, event_types.RUN_STARTED, execution_id=execution_id,
                              data={"state_machine_arn": f"arn:sm:{n}", "run_arn": f"arn:r:{n}"},
                              at=at)
                 for n in range(EVENTS_AFTER_START)]
    return [event["id"] for event in sent]


def _unpublished(connector: mysql.MySQLConnector) -> int:
    with connector.transaction() as cur:
        cur.execute("SELECT COUNT(*) AS n FROM outbox WHERE published_at IS NULL")
        return cur.fetchone()["n"]


def test_events_committed_across_a_broker_restart_are_all_applied_once(
        isolated: Settings, connector: mysql.MySQLConnector, local_stack: Supervisor) -> None:
    applied: Counter[str] = Counter()
    lock = threading.Lock()

    def count(event: Mapping[str, Any]) -> None:
        with lock:
            applied[event["id"]] += 1

    # This test's read model, on the process's MongoDB client.
    projector = Container(isolated).provide(mongo=runtime.container().mongo).new_projector(
        on_applied=count)
    relay = OutboxRelay(connector, KafkaPublisher(isolated.kafka), isolated.kafka.topic,
                        batch_size=50)
    group = f"restart-{uuid.uuid4().hex[:8]}"
    stop = threading.Event()
    deadline = time.monotonic() + 180
    workers = [
        threading.Thread(target=relay.run, args=(stop,), kwargs={"deadline": deadline},
                         daemon=True),
        threading.Thread(target=run_projector, args=(
            lambda: kafka.consumer(isolated.kafka, [isolated.kafka.topic], group_id=group),
            projector, stop), kwargs={"deadline": deadline}, daemon=True),
    ]
    committed: list[str] = []
    for worker in workers:
        worker.start()
    try:
        for index in range(EXECUTIONS_WRITTEN):  # ~12 s of commits, the restart in the middle
            committed += _write_execution(connector)
            if index == EXECUTIONS_WRITTEN // 3:
                local_stack.down(["kafka"])
            if index == EXECUTIONS_WRITTEN // 2:
                local_stack.up(["kafka"])
            time.sleep(0.2)
        local_stack.up(["kafka"])  # a no-op unless the restart above failed
        while time.monotonic() < deadline:
            with lock:
                done = len(applied) >= len(committed)
            if done and _unpublished(connector) == 0:
                break
            time.sleep(0.5)
    finally:
        stop.set()
        for worker in workers:
            worker.join(timeout=20)

    assert _unpublished(connector) == 0, "the relay left events unpublished"
    assert set(applied) == set(committed), (
        f"{len(set(committed) - set(applied))} events never reached the read model")
    assert [event_id for event_id, times in applied.items() if times != 1] == []
    documents = {doc["_id"]: doc for doc in projector.db[EXECUTIONS].find()}
    assert len(documents) == EXECUTIONS_WRITTEN
    assert {doc["sequence"] for doc in documents.values()} == {1 + EVENTS_AFTER_START}
    assert {doc["state_machine_arn"] for doc in documents.values()} == {
        f"arn:sm:{EVENTS_AFTER_START - 1}"}
