"""Step overhead: what the step runtime costs per invocation on the real MariaDB, against a
bare handler that runs the same action alone in one transaction.

    .venv/bin/python -m bench.step_overhead [--steps 400]

Both run in this process (one core), on executions created directly in MySQL, so only the
step's own work is measured: no Lambda, no Step Functions. A second pair measures a step whose
action is a participant's HTTP endpoint (a server in this process answering at once): the step
runtime's participant path (admitted and counted, called with no lock held and cut at its
deadline, its answer judged and recorded) against the floor of the same POST made bare. SQL
round trips and commits are the sum of MariaDB's session counters over every connection this
process opened (the step runtime's pool and the container's), so other clients of a shared
server do not count. Prints a table and writes bench/results/step_overhead.json.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import threading
import time
import urllib.request
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

os.environ["SAGA_STAGE"] = "bench"
os.environ["SAGA__DATABASE__MYSQL__DATABASE"] = "saga_db_bench"
# Faults are a test feature, never on in prod: measure the path prod takes.
os.environ["SAGA__SAGA__FAULT_INJECTION_ENABLED"] = "false"
# The step Lambdas' INFO lines and EMF records would be most of what this prints.
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
os.environ.setdefault("SAGA__SAGA__MONITORING_ENABLED", "false")

from bench.results_io import save, table
from bench.sessions import Sessions
from chalicelib.adapters.mysql import connector as mysql
from chalicelib.adapters.mysql.definitions import MySQLDefinitionStore
from chalicelib.adapters.mysql.executions import insert_execution
from chalicelib.adapters.mysql.migrate import migrate
from chalicelib.config import get_settings
from chalicelib.demo import BUILTIN_ACTIONS, demo_data
from chalicelib.domain.executions import Execution, ExecutionStatus, StepShape
from chalicelib.domain.models import SagaDefinition
from chalicelib.domain.step_context import StepContext
from chalicelib.roots import runtime
from chalicelib.roots.step_handler import handle_step
from chalicelib.usecases.ports import Actor
from infra.stack.supervisor import Supervisor

SEED = json.loads((Path(__file__).parents[1] / "tests" / "fixtures" /
                   "payment-saga.json").read_text())
STEPS = ("validate-payment", "process-payment")
# Every connection this process opens, kept for its counters (the step runtime's pool is not
# the container's).
SESSIONS = Sessions()
mysql.connect = SESSIONS.recording(mysql.connect)


def prepare(count: int) -> tuple[SagaDefinition, list[Execution]]:
    settings = get_settings()
    Supervisor(settings, say=lambda line: None).up(["mariadb"])
    mysql.recreate_database(settings.database.mysql, settings.database.mysql.database)
    connector = runtime.container().connector
    migrate(connector.connection())
    with connector.transaction() as cur:
        demo_data.seed_account(cur, "merchant", "0.00")

    def customer_input(cur: Any) -> dict[str, Any]:
        customer = f"oc-{uuid.uuid4().hex[:10]}"
        demo_data.seed_account(cur, customer, "100.00")
        return {"customer_id": customer, "amount": "1.00", "currency": "EUR"}

    return _stored_with_executions(copy.deepcopy(SEED), "overhead", count, customer_input)


def _stored_with_executions(definition: dict[str, Any], prefix: str, count: int,
                            input_for: Any) -> tuple[SagaDefinition, list[Execution]]:
    """The definition stored under a fresh id, and `count` RUNNING executions of it, each
    with input_for(cursor)."""
    definition["id"] = f"{prefix}-{uuid.uuid4().hex[:6]}"
    connector = runtime.container().connector
    stored = MySQLDefinitionStore(connector).insert_version(
        SagaDefinition.model_validate(definition), expected_revision=None,
        actor=Actor("bench"), action="create")
    executions = []
    now = datetime.now(UTC)
    with connector.transaction() as cur:
        for _ in range(count):
            execution = Execution(
                id=str(uuid.uuid4()), saga_id=stored.id, revision=stored.revision,
                version=stored.version, status=ExecutionStatus.RUNNING, input=input_for(cur),
                started_at=now, updated_at=now)
            insert_execution(cur, execution, [StepShape.of(s) for s in stored.active_steps()])
            executions.append(execution)
    return stored, executions


def counters() -> tuple[int, int]:
    """(statements, commits) this process's connections have run so far."""
    totals = SESSIONS.totals(("Questions", "Com_commit"))
    return totals["Questions"], totals["Com_commit"]


def measure(run_one: Any, executions: list[Execution]) -> dict[str, Any]:
    latencies = []
    before = counters()
    wall, cpu = time.perf_counter(), time.process_time()
    for execution in executions:
        for step_id in STEPS:
            started = time.perf_counter()
            run_one(execution, step_id)
            latencies.append((time.perf_counter() - started) * 1000)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    after = counters()
    steps = len(latencies)
    statements = after[0] - before[0]
    return {"steps": steps, "statements_per_step": round(statements / steps, 2),
            "commits_per_step": round((after[1] - before[1]) / steps, 2),
            "p50_ms": round(statistics.median(latencies), 2),
            "p99_ms": round(sorted(latencies)[int(0.99 * (steps - 1))], 2),
            "steps_per_s": round(steps / wall, 1),
            "cpu_ms_per_step": round(cpu * 1000 / steps, 2)}


def step_of(family: str) -> Any:
    """One step attempt through the step Lambda's entry point, for that family's functions."""
    def run(execution: Execution, step_id: str) -> None:
        event = {"execution_id": execution.id, "step_id": step_id, "phase": "action",
                 "last": False, "attempt": 0, "error": None}
        result = handle_step(event, None, family=family)
        assert result.get("status") == "ok", result

    return run


def bare_step(stored: Any) -> Any:
    steps = {step.id: step for step in stored.steps}

    def run(execution: Execution, step_id: str) -> None:
        step = steps[step_id]
        with runtime.container().connector.transaction() as cur:
            BUILTIN_ACTIONS[step.action](StepContext(
                execution_id=execution.id, saga_id=execution.saga_id, step_id=step_id,
                phase="action", attempt=1, saga_input=execution.input, config=step.config,
                cursor=cur, results={}, defaults={}))

    return run


class _Answering(BaseHTTPRequestHandler):
    """A participant that answers every POST at once with a small JSON object."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = b'{"ok": true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def prepare_participants(count: int, url: str) -> list[Execution]:
    """Executions of the documented saga with every step's action and compensation at url."""
    definition = copy.deepcopy(SEED)
    for step in definition["steps"]:
        step.update(action=f"{url}/{step['id']}", compensation=f"{url}/undo-{step['id']}")
    return _stored_with_executions(definition, "overhead-http", count, lambda cur: {"n": 1})[1]


def bare_post(url: str) -> Any:
    def run(execution: Execution, step_id: str) -> None:
        request = urllib.request.Request(f"{url}/{step_id}", data=b'{"n": 1}', method="POST",
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            json.loads(response.read())

    return run


def _rows(pairs: list[tuple[str, str, dict[str, Any], dict[str, Any]]]) -> list[list[Any]]:
    rows = []
    for floor_label, label, floor, full in pairs:
        for name, r in ((floor_label, floor), (label, full)):
            rows.append([name, r["statements_per_step"], r["commits_per_step"], r["p50_ms"],
                         r["p99_ms"], r["steps_per_s"], r["cpu_ms_per_step"]])
        rows.append(["ratio", *(
            round(full[key] / floor[key], 2) if floor[key] else "-"
            for key in ("statements_per_step", "commits_per_step", "p50_ms", "p99_ms",
                        "steps_per_s", "cpu_ms_per_step"))])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=400, help="step attempts per variant")
    args = parser.parse_args()
    count = max(1, args.steps // len(STEPS))
    stored, executions = prepare(2 * count)
    bare = measure(bare_step(stored), executions[:count])
    full = measure(step_of("payment"), executions[count:])
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Answering)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        participants = prepare_participants(2 * count, url)
        post = measure(bare_post(url), participants[:count])
        http = measure(step_of("http"), participants[count:])
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
    rows = _rows([("bare action (floor)", "step runtime", bare, full),
                  ("bare POST (floor)", "participant step", post, http)])
    print(table(rows, ["variant", "SQL/step", "commits/step", "p50 ms", "p99 ms", "steps/s",
                       "CPU ms/step"]))
    path = save("step_overhead", {"bare": bare, "runtime": full, "bare_post": post,
                                  "participant": http})
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
