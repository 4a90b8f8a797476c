"""The reconciler with many executions waiting: what a pass costs in DescribeExecution calls
and time, on the real MariaDB, against the rule it replaced.

    .venv/bin/python -m bench.reconcile [--waiting 10000] [--lost 10] [--passes 20]

Seeds its own database with RUNNING executions unchanged for an hour that wait a day more (a
callback's partner, a timer: their expected_by ahead) and a few lost ones (expected_by past),
then runs passes of the reconciler over a counting engine: the first finds the lost ones, the
next find nothing. The previous rule (every active execution unchanged for the grace) is
counted with its own query. Prints a table and writes bench/results/reconcile.json. Needs the
local stack's MariaDB up (`make up`); touches nothing else.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

os.environ["SAGA_STAGE"] = "bench"

from bench.results_io import save, table
from chalicelib.adapters.mysql import connector as mysql
from chalicelib.adapters.mysql.executions import MySQLExecutionStore, unsettled_query
from chalicelib.adapters.mysql.migrate import migrate
from chalicelib.config import get_settings
from chalicelib.domain.lifecycle import ACTIVE, ExecutionStatus, RunStatus
from chalicelib.usecases.ports import RunRef, RunState
from chalicelib.usecases.reconciler import Reconciler

GRACE_S = 60
MACHINE = "arn:aws:states:us-east-1:000000000000:stateMachine:bench-reconcile"
INSERT = ("INSERT INTO executions (id, saga_id, revision, version, status, input, "
          "state_machine_arn, sfn_execution_arn, started_at, updated_at, expected_by) "
          "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)")


@dataclass
class CountingEngine:
    keeps_history: bool = True
    described: list[RunRef] = field(default_factory=list)

    def describe(self, run: RunRef) -> RunState:
        self.described.append(run)
        return RunState(RunStatus.FAILED, "Saga.Compensated")


def _row(execution_id: str, updated: datetime, expected: datetime) -> tuple[Any, ...]:
    run = MACHINE.replace(":stateMachine:", ":execution:") + f":{execution_id}"
    return (execution_id, "bench", 1, "1.0.0", ExecutionStatus.RUNNING.value, "{}", MACHINE,
            run, updated, updated, expected)


def seed(connector: mysql.MySQLConnector, waiting: int, lost: int) -> float:
    now = datetime.now(UTC).replace(tzinfo=None)
    rows = [_row(f"wait-{n:06d}", now - timedelta(hours=1), now + timedelta(days=1, seconds=n))
            for n in range(waiting)]
    rows += [_row(f"lost-{n:03d}", now - timedelta(hours=1), now - timedelta(minutes=10 + n))
             for n in range(lost)]
    started = time.perf_counter()
    with connector.transaction() as cur:
        cur.executemany(INSERT, rows)
    return time.perf_counter() - started


def previous_rule(connector: mysql.MySQLConnector, limit: int) -> dict[str, Any]:
    """What the rule before expected_by listed: active and unchanged for the grace."""
    active = sorted(status.value for status in ACTIVE)
    marks = ", ".join(["%s"] * len(active))
    sql = (f"SELECT id FROM executions WHERE status IN ({marks}) AND updated_at < "
           "UTC_TIMESTAMP(6) - INTERVAL %s MICROSECOND ORDER BY updated_at LIMIT %s")
    args = (*active, GRACE_S * 1_000_000, limit)
    with connector.transaction() as cur:
        started = time.perf_counter()
        cur.execute(sql, args)
        listed = len(cur.fetchall())
        seconds = time.perf_counter() - started
        cur.execute(f"SELECT COUNT(*) AS n FROM executions WHERE status IN ({marks}) AND "
                    "updated_at < UTC_TIMESTAMP(6) - INTERVAL %s MICROSECOND",
                    (*active, GRACE_S * 1_000_000))
        due = int(cur.fetchone()["n"])
    return {"listed_per_pass": listed, "due": due, "query_ms": round(seconds * 1000, 2)}


def plan(connector: mysql.MySQLConnector, limit: int) -> dict[str, Any]:
    sql, args = unsettled_query(GRACE_S, limit)
    with connector.transaction() as cur:
        cur.execute(f"EXPLAIN {sql}", args)
        explained = cur.fetchall()[0]
        cur.execute(f"ANALYZE FORMAT=JSON {sql}", args)
        analyzed = json.loads(next(iter(cur.fetchone().values())))
    return {"key": explained["key"], "type": explained["type"],
            "rows_planned": int(explained["rows"]), "rows_read": _rows_read(analyzed)}


def _rows_read(node: Any) -> Any:
    if isinstance(node, dict):
        if "table" in node:
            return node["table"].get("r_rows")
        node = list(node.values())
    for child in node if isinstance(node, list) else []:
        found = _rows_read(child)
        if found is not None:
            return found
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--waiting", type=int, default=10_000)
    parser.add_argument("--lost", type=int, default=10)
    parser.add_argument("--passes", type=int, default=20, help="idle passes timed")
    args = parser.parse_args()
    settings = get_settings()
    name = f"{settings.database.mysql.database}_reconcile"
    mysql.recreate_database(settings.database.mysql, name)
    connector = mysql.MySQLConnector(settings.database.mysql, database=name)
    try:
        migrate(connector.connection())
        inserted = seed(connector, args.waiting, args.lost)
        limit, budget = 500, settings.saga.reconcile_describe_budget
        before = previous_rule(connector, limit)
        explained = plan(connector, limit)
        engine = CountingEngine()
        reconciler = Reconciler(MySQLExecutionStore(connector), engine,  # type: ignore[arg-type]
                                grace_seconds=GRACE_S, describe_budget=budget)
        started = time.perf_counter()
        repaired = len(reconciler.run(limit))
        first_ms = (time.perf_counter() - started) * 1000
        first_calls = len(engine.described)
        idle = []
        for _ in range(args.passes):
            started = time.perf_counter()
            reconciler.run(limit)
            idle.append((time.perf_counter() - started) * 1000)
        idle_calls = len(engine.described) - first_calls
    finally:
        connector.close()
        mysql.drop_database(settings.database.mysql, name)
    results = {
        "waiting": args.waiting, "lost": args.lost, "seed_ms": round(inserted * 1000),
        "first_pass": {"ms": round(first_ms, 2), "describe_calls": first_calls,
                       "repaired": repaired},
        "idle_passes": {"passes": args.passes, "p50_ms": round(statistics.median(idle), 2),
                        "max_ms": round(max(idle), 2), "describe_calls": idle_calls},
        "query_plan": explained,
        "previous_rule": {**before, "describe_calls_per_pass": min(before["listed_per_pass"],
                                                                   budget)},
    }
    print(table([
        ["first pass (lost ones due)", f"{first_ms:.1f}", first_calls, repaired],
        [f"idle pass, p50 of {args.passes}", f"{statistics.median(idle):.2f}", idle_calls, 0],
        ["previous rule, per pass", f"{before['query_ms']:.1f} (query)",
         results["previous_rule"]["describe_calls_per_pass"], "-"],
    ], [f"{args.waiting} waiting + {args.lost} lost", "ms", "DescribeExecution", "repaired"]))
    print(f"query plan: key {explained['key']} ({explained['type']}), rows planned "
          f"{explained['rows_planned']}, read {explained['rows_read']}; previous rule: "
          f"{before['due']} executions due, {before['listed_per_pass']} listed a pass")
    print(f"wrote {save('reconcile', results)}")


if __name__ == "__main__":
    main()
