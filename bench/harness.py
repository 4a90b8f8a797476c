"""Shared set-up for the benchmarks: their own stage (`bench`) and database on the local stack.

Importing this module sets the stage, so import it before anything reads the settings.
"""

from __future__ import annotations

import copy
import json
import os
import statistics
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ["SAGA_STAGE"] = "bench"
os.environ["SAGA__DATABASE__MYSQL__DATABASE"] = "saga_db_bench"
# A topic and consumer group of its own: a projector of `make run` in the same group would take
# some of the partitions, and its events would never be counted here.
os.environ["SAGA__KAFKA__TOPIC"] = "saga-events-bench"
os.environ["SAGA__KAFKA__GROUP_ID"] = "saga-group-bench"
# One benchmark process is one caller: the per-caller limit would throttle it.
os.environ.setdefault("SAGA__LIMITS__RATE_LIMIT_REQUESTS", "0")

from chalice.test import Client

from chalicelib.adapters import aws
from chalicelib.adapters.mysql import connector as mysql
from chalicelib.adapters.mysql.migrate import migrate
from chalicelib.adapters.stepfunctions.engine import run_history
from chalicelib.config import get_settings
from chalicelib.demo import demo_data
from chalicelib.domain import lifecycle
from chalicelib.roots import runtime
from infra.deploy.local import deploy_local, load_app
from infra.stack.supervisor import Supervisor

API = "/api/v1/saga"
FINAL = {status.value for status in lifecycle.FINAL}


def prepare() -> Client:
    """Stack up, fresh bench database, Lambdas deployed for stage `bench`; the API client."""
    prepare_database()
    deploy_local(get_settings(), say=lambda line: None)
    return Client(load_app(), stage_name="bench")


def prepare_database() -> None:
    """Stack up and a fresh bench database, nothing deployed."""
    settings = get_settings()
    Supervisor(settings, say=lambda line: None).up()
    mysql.recreate_database(settings.database.mysql, settings.database.mysql.database)
    runtime.use(None)
    migrate(runtime.container().connector.connection())


SEED = json.loads((Path(__file__).parents[1] / "tests" / "fixtures" /
                   "payment-saga.json").read_text())


def seed_saga() -> dict[str, Any]:
    """The documented example under a fresh id."""
    definition = copy.deepcopy(SEED)
    definition["id"] = f"bench-seed-{uuid.uuid4().hex[:6]}"
    return definition


def seed_account(account: str, balance: str) -> None:
    with runtime.container().connector.transaction() as cur:
        demo_data.seed_account(cur, account, balance)


def seed_stock(sku: str, available: int) -> None:
    with runtime.container().connector.transaction() as cur:
        demo_data.seed_stock(cur, sku, available)


def call(client: Client, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    raw = b"" if body is None else json.dumps(body).encode()
    response = client.http.request(method, f"{API}{path}", body=raw,
                                   headers={"Content-Type": "application/json"})
    return response.status_code, json.loads(response.body) if response.body else None


def wait(client: Client, execution_id: str, timeout_s: float = 120,
         poll_s: float = 0.02,
         until: Callable[[dict[str, Any]], bool] | None = None) -> dict[str, Any]:
    """Poll until the execution is final (or `until` says so), at most timeout_s."""
    done = until or (lambda e: e["status"] in FINAL)
    deadline = time.monotonic() + timeout_s
    while True:
        _, execution = call(client, "GET", f"/executions/{execution_id}")
        if done(execution) or time.monotonic() > deadline:
            return execution
        time.sleep(poll_s)


def history(run_arn: str) -> list[dict[str, Any]]:
    return run_history(aws.client("stepfunctions", get_settings().aws), run_arn)


def transitions(run_arn: str, timeout_s: float = 30) -> int:
    """State transitions as Step Functions bills them: one per state entered, counted once
    the run has stopped (the write model may record the end before its last state is
    entered: a last undo records COMPENSATED itself)."""
    sfn = aws.client("stepfunctions", get_settings().aws)
    deadline = time.monotonic() + timeout_s
    while sfn.describe_execution(executionArn=run_arn)["status"] == lifecycle.RunStatus.RUNNING \
            and time.monotonic() < deadline:
        time.sleep(0.1)
    return sum(1 for event in history(run_arn) if event["type"].endswith("StateEntered"))


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]


def summary(values: list[float]) -> dict[str, float]:
    return {"n": len(values), "p50": percentile(values, 50), "p95": percentile(values, 95),
            "p99": percentile(values, 99), "mean": statistics.fmean(values),
            "min": min(values), "max": max(values)}




def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - started
