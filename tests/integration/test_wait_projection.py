"""The read side of steps that wait, on the real stores: a callback step and a timer written to
MariaDB's write model as the step runtime writes them (tests/support/waits.py: the step's row,
then the event carrying its record, in one transaction), their events applied to MongoDB by the
real projector. After every event both views are equal field by field (tests/support/records.py,
which compares each step's `waiting`), the projected document holds the wait exactly as the
event carried it, a redelivered or late event changes nothing, every applied event is handed on
to the push, and GET /executions/{id} serves the wait from the read model (or from the write
model before the read model has the execution)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from chalice.test import Client
from pymongo.database import Database

from app import app
from chalicelib.adapters.mongo.client import mongo_client
from chalicelib.adapters.mongo.open_callbacks import MongoOpenCallbacks, open_rows
from chalicelib.adapters.mongo.projector import EXECUTIONS, Projector, ensure_indexes
from chalicelib.adapters.mongo.read_model import MongoExecutionReadModel
from chalicelib.adapters.mysql.connector import MySQLConnector
from chalicelib.adapters.mysql.executions import MySQLExecutionStore, load_execution
from chalicelib.config import Settings
from chalicelib.domain import event_types, events
from chalicelib.domain.executions import Execution, StepStatus, Waiting
from chalicelib.roots import runtime
from chalicelib.roots.container import Container
from chalicelib.roots.parts import part
from chalicelib.testing import InMemoryDefinitionStore, ScriptedEngine
from chalicelib.usecases.executions import ExecutionPolicy, ExecutionService
from chalicelib.usecases.ports import CallbackQuery
from tests.support.databases import migrated_connector
from tests.support.records import differences
from tests.support.waits import WaitWriter

# Microseconds everywhere: neither view may round a wait's times.
T0 = datetime(2026, 12, 7, 12, 0, 0, 123456, tzinfo=UTC)
CALLBACK, TIMER = "payment-confirmed", "cool-off"


@dataclass
class Views:
    connector: MySQLConnector
    projector: Projector
    reads: MongoExecutionReadModel
    db: Database
    pushed: list[dict[str, Any]] = field(default_factory=list)

    def outbox(self, execution_id: str, after: int = 0) -> list[dict[str, Any]]:
        with self.connector.transaction() as cur:
            cur.execute("SELECT envelope FROM outbox WHERE partition_key = %s AND sequence > %s "
                        "ORDER BY sequence", (execution_id, after))
            return [json.loads(row["envelope"]) for row in cur.fetchall()]

    def project(self, execution_id: str) -> list[str]:
        """Applies the execution's events not applied yet; their types."""
        doc = self.db[EXECUTIONS].find_one({"_id": execution_id}, {"sequence": 1})
        fresh = self.outbox(execution_id, doc["sequence"] if doc else 0)
        assert all(self.projector.apply(event) for event in fresh), fresh
        return [event["type"] for event in fresh]

    def doc_step(self, execution_id: str, step_id: str) -> dict[str, Any]:
        doc = self.db[EXECUTIONS].find_one({"_id": execution_id})
        assert doc is not None
        return next(step for step in doc["steps"] if step["step_id"] == step_id)

    def same(self, execution_id: str) -> Execution:
        """The projected view equals the write model's, field by field."""
        with self.connector.transaction() as cur:
            write = load_execution(cur, execution_id)
        read = self.reads.get(execution_id)
        assert read is not None and read.consistency["source"] == "read_model"
        assert differences(write, read) == []
        return read


@pytest.fixture(scope="module")
def views(settings: Settings) -> Iterator[Views]:
    suffix = uuid.uuid4().hex[:8]
    with migrated_connector(settings, f"saga_db_test_waits_{suffix}") as connector:
        client = mongo_client(settings.database.mongodb)
        db: Database = client[f"saga_db_test_waits_{suffix}"]
        ensure_indexes(db)
        pushed: list[dict[str, Any]] = []
        try:
            yield Views(connector, Projector(client, db, on_applied=pushed.append),
                        MongoExecutionReadModel(db), db, pushed)
        finally:
            client.drop_database(db.name)
            client.close()


def _iso(at: datetime) -> str:
    return at.isoformat()  # UTC, "+00:00": as the write model's record has every time


def _step(read: Execution, step_id: str) -> Any:
    return next(step for step in read.steps if step.step_id == step_id)


def test_a_callback_and_a_timer_are_projected_as_the_write_model_holds_them(
        views: Views) -> None:
    writer = WaitWriter(views.connector)
    x = writer.create(T0)
    views.project(x)
    views.same(x)

    # The call answered: the step waits, its answer kept for the compensation.
    called, answered = T0 + timedelta(seconds=1), T0 + timedelta(seconds=1, microseconds=5)
    until = called + timedelta(minutes=5)
    ticket = {"ticket": "T-1"}
    wait = writer.wait(CALLBACK, answered, until=until, callback_id="cb_7f3a", answer=ticket,
                       called=called)
    assert views.project(x) == [event_types.STEP_WAITING]
    read = views.same(x)
    waiting = {"kind": "callback", "since": _iso(answered), "until": _iso(until),
               "callback_id": "cb_7f3a", "heartbeat_at": None, "completed_by": None,
               "completed_at": None, "approval": False, "input": None}
    doc = views.doc_step(x, CALLBACK)
    assert (doc["status"], doc["waiting"], doc["result"], doc["attempts"]) == (
        StepStatus.WAITING.value, waiting, ticket, [])  # no attempt ended: it waits
    record = views.outbox(x)[-1]["data"]["step"]
    assert {key: doc[key] for key in record} == record  # every field of the record, copied
    assert (_step(read, CALLBACK).status, _step(read, CALLBACK).waiting) == (
        StepStatus.WAITING, wait)

    # A heartbeat keeps it alive.
    beat = answered + timedelta(seconds=20, microseconds=1)
    writer.heartbeat(CALLBACK, beat)
    assert views.project(x) == [event_types.STEP_HEARTBEAT]
    views.same(x)
    assert views.doc_step(x, CALLBACK)["waiting"] == {**waiting, "heartbeat_at": _iso(beat)}

    # The partner completes it: callback received, then the step's own success.
    done = beat + timedelta(seconds=9)
    writer.complete(CALLBACK, done, by="callback:secret", result={**ticket, "confirmed": True})
    assert views.project(x) == [event_types.STEP_CALLBACK_RECEIVED, event_types.STEP_SUCCEEDED]
    views.same(x)
    doc = views.doc_step(x, CALLBACK)
    assert doc["status"] == StepStatus.SUCCEEDED.value
    assert doc["waiting"] == {**waiting, "heartbeat_at": _iso(beat),
                              "completed_by": "callback:secret", "completed_at": _iso(done)}
    assert [(a["phase"], a["outcome"]) for a in doc["attempts"]] == [("action", "succeeded")]

    # A timer: it waits with no answer to keep, then fires.
    set_at = done + timedelta(milliseconds=3)
    fires = set_at + timedelta(seconds=30)
    writer.wait(TIMER, set_at, until=fires)
    assert views.project(x) == [event_types.STEP_WAITING]
    views.same(x)
    doc = views.doc_step(x, TIMER)
    assert (doc["status"], doc["result"], doc["waiting"]["kind"], doc["waiting"]["until"]) == (
        StepStatus.WAITING.value, None, "timer", _iso(fires))
    fired = writer.fire(TIMER, fires)
    assert views.project(x) == [event_types.STEP_TIMER_FIRED, event_types.STEP_SUCCEEDED]
    assert _step(views.same(x), TIMER).waiting == fired

    # Every applied event was handed on to the push, in order, the waits among them.
    pushed = [e["type"] for e in views.pushed if e["key"] == x]
    assert [t for t in pushed if t.startswith("saga.step.")] == [
        event_types.STEP_WAITING, event_types.STEP_HEARTBEAT,
        event_types.STEP_CALLBACK_RECEIVED, event_types.STEP_SUCCEEDED,
        event_types.STEP_WAITING, event_types.STEP_TIMER_FIRED, event_types.STEP_SUCCEEDED]

    # Redelivered, every event changes nothing.
    before = views.db[EXECUTIONS].find_one({"_id": x}, {"projected_at": 0})
    replay = views.outbox(x)
    assert [views.projector.apply(event) for event in replay] == [False] * len(replay)
    assert views.db[EXECUTIONS].find_one({"_id": x}, {"projected_at": 0}) == before


def test_an_approval_is_projected_with_what_it_decides_on_and_listed_while_open(
        views: Views) -> None:
    writer = WaitWriter(views.connector, saga_id=f"approvals-{uuid.uuid4().hex[:8]}")
    x = writer.create(T0)
    views.project(x)
    decides_on = {"refund": {"amount": "25.00", "currency": "EUR"}, "lines": [1, 2],
                  "note": "50/50 split"}
    until = T0 + timedelta(hours=48)
    wait = writer.wait(CALLBACK, T0 + timedelta(seconds=1), until=until,
                       callback_id=f"cb_{x}", decides_on=decides_on)
    assert views.project(x) == [event_types.STEP_WAITING]
    read = views.same(x)  # approval and input included, field by field
    assert _step(read, CALLBACK).waiting == wait
    doc = views.doc_step(x, CALLBACK)
    assert (doc["waiting"]["approval"], doc["waiting"]["input"]) == (True, decides_on)
    callbacks = MongoOpenCallbacks(views.db)
    now = T0 + timedelta(minutes=1)
    query = CallbackQuery(limit=10, now=now, approval=True, saga_id=writer.saga_id)
    [listed] = callbacks.open_callbacks(query).items
    assert (listed.callback_id, listed.execution_id, listed.step_id, listed.approval,
            listed.input, listed.since, listed.until) == (
        f"cb_{x}", x, CALLBACK, True, decides_on, wait.since, until)
    assert callbacks.count_open_callbacks(query) == 1
    # The partial index of running executions can serve its query (a plan the planner
    # weighs; which one wins on a handful of documents is its own choice).
    plan = views.db.command("explain", {"aggregate": EXECUTIONS, "cursor": {},
                                        "pipeline": open_rows(query)}, verbosity="queryPlanner")
    assert "open_waits" in json.dumps(plan, default=str)
    # Approved: its wait is kept, with who completed it, and it is no longer open.
    done = T0 + timedelta(minutes=2)
    writer.complete(CALLBACK, done, by="caller:alice", result={"approved": True})
    views.project(x)
    views.same(x)
    assert views.doc_step(x, CALLBACK)["waiting"]["input"] == decides_on
    assert callbacks.open_callbacks(query).items == []
    assert callbacks.count_open_callbacks(query) == 0


def test_a_late_waiting_event_is_refused_by_its_sequence(views: Views) -> None:
    writer = WaitWriter(views.connector)
    x = writer.create(T0)
    writer.wait(CALLBACK, T0, until=T0 + timedelta(minutes=1), callback_id="cb_1")
    beat = T0 + timedelta(seconds=5)
    writer.heartbeat(CALLBACK, beat)
    started, waiting, heartbeat = views.outbox(x)
    assert views.projector.apply(started) and views.projector.apply(heartbeat)
    assert views.projector.apply(waiting) is False  # older than what the document holds
    assert views.doc_step(x, CALLBACK)["waiting"]["heartbeat_at"] == _iso(beat)
    views.same(x)


def test_a_waiting_event_without_its_steps_record_still_says_waiting(views: Views) -> None:
    x = WaitWriter(views.connector).create(T0)
    views.project(x)
    assert views.projector.apply(events.envelope(
        event_types.STEP_WAITING, key=x, subject=f"execution/{x}", sequence=2,
        time=T0 + timedelta(seconds=2),
        data={"saga_id": "waits", "step_id": TIMER, "attempt": 1, "phase": "action"}))
    doc = views.doc_step(x, TIMER)
    assert (doc["status"], doc["waiting"], doc["attempts"]) == (
        StepStatus.WAITING.value, None, [])


class _NoLimit:
    def check(self, caller: str) -> None:
        return None


class _Api(Container):
    """The API's parts over this module's stores."""

    def __init__(self, settings: Settings, views: Views) -> None:
        super().__init__(settings)
        self.views = views

    @part
    def rate_limiter(self) -> _NoLimit:
        return _NoLimit()

    @part
    def execution_service(self) -> ExecutionService:
        return ExecutionService(InMemoryDefinitionStore(),
                                MySQLExecutionStore(self.views.connector), ScriptedEngine(),
                                ExecutionPolicy(faults_enabled=False), self.views.reads)


def test_get_execution_serves_the_wait_from_the_read_model_or_the_write_model(
        settings: Settings, views: Views) -> None:
    projected, unprojected = WaitWriter(views.connector), WaitWriter(views.connector)
    for writer in (projected, unprojected):
        writer.create(T0)
        writer.wait(CALLBACK, T0, until=T0 + timedelta(minutes=1), callback_id="cb_api")
        wait = writer.heartbeat(CALLBACK, T0 + timedelta(seconds=3))
    views.project(projected.execution_id)
    runtime.use(_Api(settings, views))
    try:
        with Client(app) as client:
            bodies = {writer.execution_id: json.loads(client.http.get(
                f"/api/v1/saga/executions/{writer.execution_id}").body)
                for writer in (projected, unprojected)}
    finally:
        runtime.use(None)
    for writer, source in ((projected, "read_model"), (unprojected, "write_model")):
        body = bodies[writer.execution_id]
        assert body["consistency"]["source"] == source
        served = next(s for s in body["steps"] if s["step_id"] == CALLBACK)
        assert served["status"] == StepStatus.WAITING.value
        assert Waiting.model_validate(served["waiting"]) == wait
        assert served["waiting"]["callback_id"] == "cb_api"
        assert all(s["waiting"] is None for s in body["steps"] if s["step_id"] != CALLBACK)
