"""What POST /sagas/{id}/execute costs the write model: MySQL transactions and SQL statements
per request, against the floor of the execution, its steps and its first event inserted bare.

    .venv/bin/python -m bench.execute_cost [--requests 50]

The real routes, services and MySQL stores in this process, the engine a scripted fake: a
start costs the write model nothing (what it costs in Step Functions is bench.transitions').
Counted from MariaDB's session counters of this process's own connections (bench.sessions): a
transaction is a commit or a rollback, statements include them. Cases: a new execution (202),
the same execution_id again (200), a request refused once the saga is read (400: a fault aimed
at a step the saga lacks), and a start the engine refuses (503). Per-caller rate limits are
off: when on, each request counts in one more transaction of its own. Prints a table and
writes bench/results/execute_cost.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

os.environ["SAGA_STAGE"] = "bench"
os.environ["SAGA__DATABASE__MYSQL__DATABASE"] = "saga_db_bench"
os.environ["SAGA__LIMITS__RATE_LIMIT_REQUESTS"] = "0"
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")

from chalice.test import Client

from app import app
from bench.results_io import save, table
from bench.sessions import Sessions
from chalicelib.adapters.mysql import connector as mysql
from chalicelib.adapters.mysql.definitions import MySQLDefinitionStore
from chalicelib.adapters.mysql.executions import insert_execution, insert_execution_event
from chalicelib.config import get_settings
from chalicelib.domain import events
from chalicelib.domain.executions import Execution, ExecutionStatus, StepShape
from chalicelib.roots import runtime
from chalicelib.roots.container import Container
from chalicelib.testing import ScriptedEngine
from infra.stack.supervisor import Supervisor

API = "/api/v1/saga"
SEED = json.loads((Path(__file__).parents[1] / "tests" / "fixtures" /
                   "payment-saga.json").read_text())
JSON = {"Content-Type": "application/json"}
SESSIONS = Sessions()
mysql.connect = SESSIONS.recording(mysql.connect)  # the pool opens its connections through it


def measure(run_one: Callable[[int], None], count: int) -> dict[str, Any]:
    latencies = []
    before = SESSIONS.totals()
    for index in range(count):
        started = time.perf_counter()
        run_one(index)
        latencies.append((time.perf_counter() - started) * 1000)
    after = SESSIONS.totals()
    spent = {name: (after[name] - before[name]) / count for name in after}
    return {"requests": count,
            "transactions": round(spent["Com_commit"] + spent["Com_rollback"], 2),
            "statements": round(spent["Questions"], 2),
            "writes": round(spent["Com_insert"] + spent["Com_update"] + spent["Com_delete"], 2),
            "p50_ms": round(statistics.median(latencies), 2)}


def request(client: Client, body: dict[str, Any], status: int) -> None:
    response = client.http.post(f"{API}/sagas/{SEED['id']}/execute", body=json.dumps(body),
                                headers=JSON)
    assert response.status_code == status, (response.status_code, response.body)


def bare_insert(container: Container) -> Callable[[int], None]:
    """The floor: the rows an execute must write, in one transaction, with nothing read."""
    saga = MySQLDefinitionStore(container.connector).get(SEED["id"])
    assert saga is not None
    shapes = [StepShape.of(step) for step in saga.active_steps()]

    def run(index: int) -> None:
        now = datetime.now(UTC)
        execution = Execution(id=str(uuid.uuid4()), saga_id=saga.id, revision=saga.revision,
                              version=saga.version, status=ExecutionStatus.RUNNING, input={},
                              started_at=now, updated_at=now)
        with container.connector.transaction() as cur:
            insert_execution(cur, execution, shapes, last_sequence=1)
            insert_execution_event(cur, events.execution_started(execution, shapes),
                                   execution_id=execution.id, sequence=1,
                                   at=now.replace(tzinfo=None))

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=50, help="requests per case")
    count = parser.parse_args().requests
    settings = get_settings()
    Supervisor(settings, say=lambda line: None).up(["mariadb"])
    mysql.recreate_database(settings.database.mysql, settings.database.mysql.database)
    engine = ScriptedEngine()
    container = Container(settings).provide(engine=engine)
    runtime.use(container)
    try:
        with Client(app) as client:
            created = client.http.post(f"{API}/sagas", body=json.dumps(SEED), headers=JSON)
            assert created.status_code == 201, created.body
            repeated = [str(uuid.uuid4()) for _ in range(count)]
            for execution_id in repeated:
                request(client, {"execution_id": execution_id}, 202)

            def refused_start(index: int) -> None:
                engine.fail_start = 1
                request(client, {}, 503)

            cases = {
                "floor: the rows inserted bare": measure(bare_insert(container), count),
                "execute (202)": measure(lambda index: request(client, {}, 202), count),
                "same execution_id again (200)": measure(
                    lambda index: request(client, {"execution_id": repeated[index]}, 200),
                    count),
                "refused once the saga is read (400)": measure(
                    lambda index: request(client, {"faults": [
                        {"step_id": "no-such-step", "error": "Boom"}]}, 400), count),
                "the engine refuses the start (503)": measure(refused_start, count),
            }
    finally:
        runtime.use(None)
        container.close()
    print(table([[name, r["transactions"], r["statements"], r["writes"], r["p50_ms"]]
                 for name, r in cases.items()],
                ["case", "transactions", "statements", "writes", "p50 ms"]))
    print(f"\nwrote {save('execute_cost', cases)}")


if __name__ == "__main__":
    main()
