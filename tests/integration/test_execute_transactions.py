"""What POST /sagas/{id}/execute costs the write model, counted by MariaDB itself: the real
routes, services and MySQL stores on a database of their own, the engine a scripted fake
(starting a run is the engine's business, not the write model's).

At most three transactions a start (read the saga; create the execution with its first event;
record the run's start), fewer for a repeated request, and a refused one writes nothing.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from chalice.test import Client

from app import app
from bench.sessions import Sessions
from chalicelib.adapters.mysql import connector as mysql
from chalicelib.adapters.mysql.definitions import MySQLDefinitionStore
from chalicelib.adapters.mysql.executions import MySQLExecutionStore, insert_execution
from chalicelib.adapters.mysql.migrate import migrate
from chalicelib.config import Settings
from chalicelib.domain import event_types
from chalicelib.domain.executions import Execution, ExecutionStatus, StepShape
from chalicelib.roots import runtime
from chalicelib.roots.container import Container
from chalicelib.testing import ScriptedEngine

API = "/api/v1/saga"
SEED = json.loads((Path(__file__).parents[1] / "fixtures" / "payment-saga.json").read_text())
JSON = {"Content-Type": "application/json"}
BUDGET = 3  # transactions per execute


@dataclass
class Spent:
    """What the server ran for a request, from the session counters of the pool's
    connections."""

    statements: int
    transactions: int
    writes: int


@dataclass
class World:
    client: Client
    engine: ScriptedEngine
    sessions: Sessions
    connector: mysql.MySQLConnector

    def execute(self, saga_id: str, body: dict[str, Any]) -> tuple[Any, Spent]:
        before = self.sessions.totals()
        response = self.client.http.post(f"{API}/sagas/{saga_id}/execute",
                                         body=json.dumps(body), headers=JSON)
        after = self.sessions.totals()
        spent = {name: after[name] - before[name] for name in after}
        return response, Spent(
            statements=spent["Questions"],
            transactions=spent["Com_commit"] + spent["Com_rollback"],
            writes=spent["Com_insert"] + spent["Com_update"] + spent["Com_delete"])

    def outbox(self, key: str) -> list[str]:
        with self.connector.transaction() as cur:
            cur.execute("SELECT type FROM outbox WHERE partition_key = %s ORDER BY sequence",
                        (key,))
            return [row["type"] for row in cur.fetchall()]

    def rows(self) -> tuple[int, ...]:
        with self.connector.transaction() as cur:
            counts = []
            for table in ("executions", "step_runs", "outbox"):
                cur.execute(f"SELECT COUNT(*) AS n FROM {table}")
                counts.append(int(cur.fetchone()["n"]))
            return tuple(counts)


class _NoLimit:
    def check(self, caller: str) -> None:
        return None


@pytest.fixture(scope="module")
def world(settings: Settings) -> Iterator[World]:
    name = f"{settings.database.mysql.database}_execute_tx"
    mysql.recreate_database(settings.database.mysql, name)
    sessions = Sessions()
    connector = mysql.MySQLConnector(settings.database.mysql, database=name,
                                     connect_fn=sessions.recording(lambda: mysql.connect(
                                         settings.database.mysql, database=name)))
    migrate(connector.connection())
    engine = ScriptedEngine()
    # No per-caller limit: when on, it counts each request in a transaction of its own.
    container = Container(settings).provide(connector=connector, engine=engine,
                                            rate_limiter=_NoLimit())
    runtime.use(container)
    try:
        with Client(app) as client:
            created = client.http.post(f"{API}/sagas", body=json.dumps(SEED), headers=JSON)
            assert created.status_code == 201, created.body
            yield World(client, engine, sessions, connector)
    finally:
        runtime.use(None)
        container.close()
        mysql.drop_database(settings.database.mysql, name)


def _id() -> str:
    return f"tx-{uuid.uuid4().hex[:12]}"


def test_an_execute_costs_at_most_three_transactions_and_answers_the_run(world: World) -> None:
    execution_id = _id()
    response, spent = world.execute(SEED["id"], {"input": {"n": 1},
                                                 "execution_id": execution_id})
    assert response.status_code == 202, response.body
    assert spent.transactions <= BUDGET, spent
    body = json.loads(response.body)
    run = world.engine.starts[-1]
    # Started after the commit, under the execution's own id (a repeated start is one run).
    assert (run.execution_id, run.run_name) == (execution_id, execution_id)
    assert body["sfn_execution_arn"] == run.ref.run
    assert body["consistency"] == {"source": "write_model", "sequence": 2}
    assert [(s["step_id"], s["status"]) for s in body["steps"]] == [
        (step["id"], "PENDING") for step in SEED["steps"]]
    assert world.outbox(execution_id) == [event_types.EXECUTION_STARTED,
                                          event_types.RUN_STARTED]
    # The same execution as a later read of the write model gives it.
    again = json.loads(world.client.http.get(f"{API}/executions/{execution_id}").body)
    assert body == {**again, "consistency": body["consistency"]}


def test_a_repeated_execute_answers_the_first_and_writes_nothing(world: World) -> None:
    execution_id = _id()
    first, _ = world.execute(SEED["id"], {"execution_id": execution_id})
    assert first.status_code == 202, first.body
    rows, starts = world.rows(), len(world.engine.starts)
    again, spent = world.execute(SEED["id"], {"execution_id": execution_id})
    assert again.status_code == 200, again.body
    assert spent.transactions <= BUDGET, spent
    assert json.loads(again.body) == json.loads(first.body)
    assert (world.rows(), len(world.engine.starts)) == (rows, starts)


@pytest.mark.parametrize("body", [
    {"execution_id": "not an id!"},  # refused before anything is read
    {"faults": [{"step_id": "no-such-step", "error": "Boom"}]},  # after the saga is read
])
def test_a_refused_execute_writes_nothing(world: World, body: dict[str, Any]) -> None:
    rows, starts = world.rows(), len(world.engine.starts)
    response, spent = world.execute(SEED["id"], body)
    assert response.status_code == 400, response.body
    assert spent.writes == 0 and spent.transactions <= 1, spent
    assert (world.rows(), len(world.engine.starts)) == (rows, starts)


def test_an_execute_the_engine_refuses_fails_within_the_budget(world: World) -> None:
    world.engine.fail_start = 1
    execution_id = _id()
    response, spent = world.execute(SEED["id"], {"execution_id": execution_id})
    assert response.status_code == 503, response.body
    assert spent.transactions <= BUDGET, spent
    assert world.outbox(execution_id) == [event_types.EXECUTION_STARTED,
                                          event_types.SAGA_FAILED]


def test_a_create_that_lost_the_race_for_its_id_answers_the_winners_execution(
        world: World) -> None:
    """The loser's INSERT waits for the winner's commit, then meets its row: read in the
    same transaction, it is the winner's execution, committed."""
    store = MySQLExecutionStore(world.connector)
    saga = MySQLDefinitionStore(world.connector).get(SEED["id"])
    assert saga is not None
    shapes = [StepShape.of(step) for step in saga.active_steps()]
    now = datetime.now(UTC)
    execution = Execution(id=_id(), saga_id=saga.id, revision=saga.revision,
                          version=saga.version, status=ExecutionStatus.RUNNING, input={},
                          started_at=now, updated_at=now)
    inserted, release = threading.Event(), threading.Event()

    def winner() -> None:
        with world.connector.transaction() as cur:
            insert_execution(cur, execution.model_copy(update={"input": {"won": True}}),
                             shapes)
            inserted.set()
            release.wait(10)

    holder = threading.Thread(target=winner)
    holder.start()
    try:
        assert inserted.wait(10)
        with ThreadPoolExecutor(1) as pool:
            loser = pool.submit(store.create, execution, shapes)
            time.sleep(0.3)
            assert not loser.done()  # waits on the winner's uncommitted row
            release.set()
            found, created = loser.result(timeout=10)
    finally:
        release.set()
        holder.join(10)
    assert not created and found.input == {"won": True}
    assert found == store.get(execution.id)
