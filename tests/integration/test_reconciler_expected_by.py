"""The reconciler on MariaDB with 10,000 executions waiting (a callback's partner, a timer):
a pass describes only the executions whose expected moment passed, through a counting engine
and through the Step Functions engine on LocalStack, and its query reads the key
(status, expected_by), not the waiting rows."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chalicelib.adapters import aws
from chalicelib.adapters.mysql.connector import MySQLConnector
from chalicelib.adapters.mysql.executions import MySQLExecutionStore, unsettled_query
from chalicelib.adapters.stepfunctions.engine import StepFunctionsEngine
from chalicelib.config import Settings
from chalicelib.domain.lifecycle import ExecutionStatus, RunStatus
from chalicelib.usecases.ports import RunRef, RunState
from chalicelib.usecases.reconciler import Reconciler
from tests.support.databases import migrated_connector

WAITING = 10_000
ACCOUNT = "000000000000"
MACHINE = f"arn:aws:states:us-east-1:{ACCOUNT}:stateMachine:reconcile-expected"
# Placeholders only, so that executemany sends multi-row INSERTs.
_INSERT = ("INSERT INTO executions (id, saga_id, revision, version, status, input, "
           "state_machine_arn, sfn_execution_arn, started_at, updated_at, expected_by) "
           "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)")


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _row(execution_id: str, status: ExecutionStatus, updated: datetime,
         expected: datetime | None) -> tuple[Any, ...]:
    run = MACHINE.replace(":stateMachine:", ":execution:") + f":{execution_id}"
    return (execution_id, "waits", 1, "1.0.0", status.value, "{}", MACHINE, run, updated,
            updated, expected)


@pytest.fixture(scope="module")
def connector(settings: Settings) -> Iterator[MySQLConnector]:
    name = f"{settings.database.mysql.database}_reconcile_expected"
    with migrated_connector(settings, name) as connector:
        yield connector


@pytest.fixture(scope="module")
def waiting(connector: MySQLConnector) -> list[str]:
    """10,000 RUNNING executions unchanged for an hour (the rule before expected_by described
    every one of them), each waiting a day more; in a few multi-row INSERTs."""
    now = _now()
    rows = [_row(f"wait-{n:05d}", ExecutionStatus.RUNNING, now - timedelta(hours=1),
                 now + timedelta(days=1, seconds=n)) for n in range(WAITING)]
    started = time.perf_counter()
    with connector.transaction() as cur:
        cur.executemany(_INSERT, rows)
    print(f"\n{WAITING} waiting executions inserted in "
          f"{(time.perf_counter() - started) * 1000:.0f} ms")
    return [row[0] for row in rows]


def _lost(connector: MySQLConnector, count: int, *, legacy: bool = False) -> list[str]:
    """Executions whose expected moment passed (the longest overdue first in the list), one
    of them COMPENSATING; with `legacy`, one more kept before executions had the moment (NULL:
    due by its last change)."""
    now, prefix = _now(), f"lost-{uuid.uuid4().hex[:6]}"
    rows = [_row(f"{prefix}-{n}", ExecutionStatus.COMPENSATING if n == 1
                 else ExecutionStatus.RUNNING, now - timedelta(hours=2),
                 now - timedelta(minutes=30 - n)) for n in range(count)]
    if legacy:
        rows.append(_row(f"{prefix}-legacy", ExecutionStatus.RUNNING,
                         now - timedelta(minutes=5), None))
    # Ended long ago: never listed, whatever they kept.
    rows.append(_row(f"{prefix}-ended", ExecutionStatus.COMPLETED, now - timedelta(days=3),
                     None))
    with connector.transaction() as cur:
        cur.executemany(_INSERT, rows)
    return [row[0] for row in rows[:-1]]


@dataclass
class CountingEngine:
    """Counts what it is asked to describe; every run ended compensated."""

    keeps_history: bool = True
    described: list[RunRef] = field(default_factory=list)

    def describe(self, run: RunRef) -> RunState:
        self.described.append(run)
        return RunState(RunStatus.FAILED, "Saga.Compensated")


def _pass(reconciler: Reconciler) -> tuple[list[str], float]:
    started = time.perf_counter()
    repairs = reconciler.run()
    return [r.execution_id for r in repairs], time.perf_counter() - started


def test_a_pass_describes_only_the_lost_executions(connector: MySQLConnector,
                                                   waiting: list[str]) -> None:
    lost = _lost(connector, 5, legacy=True)
    engine = CountingEngine()
    reconciler = Reconciler(MySQLExecutionStore(connector), engine,  # type: ignore[arg-type]
                            grace_seconds=60)
    repaired, first = _pass(reconciler)
    assert [run.execution_id for run in engine.described] == lost  # the longest overdue first
    assert repaired == lost
    idle = [_pass(reconciler) for _ in range(5)]
    assert all(repairs == [] for repairs, _ in idle)
    assert len(engine.described) == len(lost)  # none more: 10,000 wait, none is due
    print(f"reconcile pass over {WAITING} waiting executions: {first * 1000:.1f} ms with "
          f"{len(lost)} lost ({len(engine.described)} DescribeExecution), idle passes "
          f"{', '.join(f'{seconds * 1000:.1f}' for _, seconds in idle)} ms (0 calls)")
    store = MySQLExecutionStore(connector)
    assert {store.get(x).status for x in lost} == {  # type: ignore[union-attr]
        ExecutionStatus.COMPENSATED}
    assert store.get(waiting[0]).status is ExecutionStatus.RUNNING  # type: ignore[union-attr]


def test_the_step_functions_engine_makes_one_describe_per_lost_execution(
        connector: MySQLConnector, waiting: list[str], settings: Settings) -> None:
    """The production engine on LocalStack, its DescribeExecution calls counted as boto3
    sends them. The lost runs do not exist there: each is recorded FAILED (never started)."""
    client = aws.client("stepfunctions", settings.aws)
    calls: list[str] = []
    client.meta.events.register("provide-client-params.states.DescribeExecution",
                                lambda params, **_: calls.append(params["executionArn"]))
    engine = StepFunctionsEngine(client, stage=settings.stage,
                                 role_arn=f"arn:aws:iam::{ACCOUNT}:role/unused",
                                 region="us-east-1", account=ACCOUNT,
                                 function_for=lambda step, phase: "unused",
                                 recorder_arn="unused")
    lost = _lost(connector, 3)
    reconciler = Reconciler(MySQLExecutionStore(connector), engine, grace_seconds=60)
    repaired, _ = _pass(reconciler)
    assert repaired == lost
    assert [arn.rsplit(":", 1)[-1] for arn in calls] == lost
    assert _pass(reconciler)[0] == [] and len(calls) == len(lost)
    store = MySQLExecutionStore(connector)
    assert {store.get(x).status for x in lost} == {  # type: ignore[union-attr]
        ExecutionStatus.FAILED}


def test_the_work_list_reads_the_key_not_the_waiting_rows(connector: MySQLConnector,
                                                          waiting: list[str]) -> None:
    lost = _lost(connector, 4, legacy=True)
    sql, args = unsettled_query(60, 500)
    with connector.transaction() as cur:
        cur.execute(f"EXPLAIN {sql}", args)
        plan = cur.fetchall()
        cur.execute(f"ANALYZE FORMAT=JSON {sql}", args)
        analyzed = json.loads(next(iter(cur.fetchone().values())))
    print(f"EXPLAIN: {plan}")
    assert len(plan) == 1
    assert (plan[0]["key"], plan[0]["type"]) == ("executions_expected", "range")
    table = _table_of(analyzed)
    assert table["r_rows"] == len(lost), table  # read: the overdue ones, none that wait
    assert table["rows"] < 100, table  # and planned so
    assert len(waiting) == WAITING
    Reconciler(MySQLExecutionStore(connector), CountingEngine(),  # type: ignore[arg-type]
               grace_seconds=60).run()


def _table_of(analyzed: Any) -> dict[str, Any]:
    """The executions table's node of MariaDB's ANALYZE FORMAT=JSON (under a filesort)."""
    if isinstance(analyzed, dict):
        if "table" in analyzed:
            return analyzed["table"]
        nodes = list(analyzed.values())
    else:
        nodes = list(analyzed) if isinstance(analyzed, list) else []
    for node in nodes:
        if isinstance(node, dict | list):
            try:
                return _table_of(node)
            except LookupError:
                continue
    raise LookupError("no table in the plan")
