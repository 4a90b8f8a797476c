"""End to end on the local stack: N sagas of the documented example at concurrency C, from
execute to COMPLETED, against the floor: the same state machine run by LocalStack with
Lambdas that do nothing.

    .venv/bin/python -m bench.throughput [--sagas 500] [--concurrency 16]

The service's sagas are started through the API (in this process) and followed in MySQL;
the floor's executions are started with boto3 and followed with DescribeExecution. Prints a
table and writes bench/results/throughput.json.
"""

from __future__ import annotations

import argparse
import io
import json
import re
import time
import uuid
import zipfile
from collections.abc import Callable
from typing import Any

from bench import harness
from bench.results_io import save, table
from chalicelib.adapters import aws
from chalicelib.adapters.stepfunctions.machine_input import execution_input
from chalicelib.config import get_settings
from chalicelib.roots import runtime

NOOP = "saga-orchestrator-bench-noop"
NOOP_CODE = "def handler(event, context):\n    return {\"status\": \"ok\"}\n"


def _zip(source: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("noop.py", source)
    return buffer.getvalue()


def noop_function() -> str:
    settings = get_settings()
    lam = aws.client("lambda", settings.aws)
    try:
        arn = lam.get_function(FunctionName=NOOP)["Configuration"]["FunctionArn"]
    except lam.exceptions.ResourceNotFoundException:
        arn = lam.create_function(
            FunctionName=NOOP, Runtime="python3.11", Handler="noop.handler",
            Role=f"arn:aws:iam::{settings.aws.account_id}:role/noop",
            Code={"ZipFile": _zip(NOOP_CODE)}, Timeout=30)["FunctionArn"]
    lam.get_waiter("function_active_v2").wait(FunctionName=NOOP)
    return str(arn)


def floor_machine(forward_arn: str, noop_arn: str) -> str:
    """The saga's own forward machine with every Lambda it calls replaced by the no-op."""
    sfn = aws.client("stepfunctions", get_settings().aws)
    definition = sfn.describe_state_machine(stateMachineArn=forward_arn)["definition"]
    floor = re.sub(r"arn:aws:lambda:[^\"]+:function:saga-orchestrator-bench-[a-z_]+",
                   noop_arn, definition)
    name = "bench-floor-" + uuid.uuid4().hex[:8]
    role = f"arn:aws:iam::{get_settings().aws.account_id}:role/noop"
    return str(sfn.create_state_machine(name=name, definition=floor, roleArn=role)[
        "stateMachineArn"])


def drive(count: int, concurrency: int, start: Callable[[int], Any],
          finished: Callable[[list[Any]], dict[Any, float]]) -> dict[str, Any]:
    """Keep `concurrency` runs in flight until `count` have finished; latencies in ms."""
    pending: dict[Any, float] = {}
    latencies: list[float] = []
    started_count = 0
    began = time.perf_counter()
    deadline = time.monotonic() + 1800
    while (started_count < count or pending) and time.monotonic() < deadline:
        while started_count < count and len(pending) < concurrency:
            pending[start(started_count)] = time.perf_counter()
            started_count += 1
        for key, ended_at in finished(list(pending)).items():
            latencies.append((ended_at - pending.pop(key)) * 1000)
        time.sleep(0.02)
    wall = time.perf_counter() - began
    assert not pending, f"{len(pending)} runs did not finish"
    return {"sagas": count, "concurrency": concurrency, "wall_s": round(wall, 1),
            "sagas_per_s": round(count / wall, 2),
            **{k: round(v, 1) for k, v in harness.summary(latencies).items() if k != "n"}}


def service_run(client: Any, saga_id: str, customers: list[str]) -> dict[str, Any]:
    def start(index: int) -> str:
        status, execution = harness.call(client, "POST", f"/sagas/{saga_id}/execute", {
            "input": {"customer_id": customers[index], "amount": "1.00", "currency": "EUR",
                      "email": "bench@example.com"}})
        assert status == 202, (status, execution)
        return str(execution["id"])

    def finished(ids: list[str]) -> dict[str, float]:
        now = time.perf_counter()
        with runtime.container().connector.transaction() as cur:
            cur.execute("SELECT id, status FROM executions WHERE id IN ("
                        + ",".join(["%s"] * len(ids)) + ")", ids)
            rows = cur.fetchall()
        done = {row["id"]: now for row in rows if row["status"] in harness.FINAL}
        failed = [row for row in rows if row["status"] in harness.FINAL - {"COMPLETED"}]
        assert not failed, f"sagas did not complete: {failed[:3]}"
        return done

    return {"start": start, "finished": finished}


def floor_run(machine_arn: str) -> dict[str, Any]:
    sfn = aws.client("stepfunctions", get_settings().aws)

    def start(index: int) -> str:
        return str(sfn.start_execution(
            stateMachineArn=machine_arn,
            input=json.dumps(execution_input(f"floor-{index}")))["executionArn"])

    def finished(arns: list[str]) -> dict[str, float]:
        done = {}
        for arn in arns:
            status = sfn.describe_execution(executionArn=arn)["status"]
            if status != "RUNNING":
                assert status == "SUCCEEDED", status
                done[arn] = time.perf_counter()
        return done

    return {"start": start, "finished": finished}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sagas", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    client = harness.prepare()
    harness.seed_account("merchant", "0.00")
    customers = [f"tp-{uuid.uuid4().hex[:10]}" for _ in range(args.sagas)]
    with runtime.container().connector.transaction() as cur:
        for customer in customers:
            cur.execute("INSERT INTO demo_accounts (account_id, balance, currency) "
                        "VALUES (%s, 100.00, 'EUR')", (customer,))
    definition = harness.seed_saga()
    status, saga = harness.call(client, "POST", "/sagas", definition)
    assert status == 201, saga
    engine = runtime.container().engine
    saga = runtime.container().definition_service.get(definition["id"])
    engine.prepare(saga)
    forward_arn = engine.plan(saga, "floor").where  # on Step Functions: the forward machine
    floor_arn = floor_machine(forward_arn, noop_function())

    floor = drive(args.sagas, args.concurrency, **floor_run(floor_arn))
    service = drive(args.sagas, args.concurrency, **service_run(client, definition["id"],
                                                                customers))
    keys = ["sagas_per_s", "p50", "p95", "p99", "wall_s"]
    rows = [["LocalStack floor (no-op Lambdas)", *[floor[k] for k in keys]],
            ["the service", *[service[k] for k in keys]],
            ["ratio (service / floor)",
             round(floor["sagas_per_s"] / service["sagas_per_s"], 2),
             *[round(service[k] / floor[k], 2) for k in keys[1:]]]]
    print(table(rows, ["run", "sagas/s", "p50 ms", "p95 ms", "p99 ms", "wall s"]))
    print("(the ratio's sagas/s column is floor / service: how many times slower)")
    path = save("throughput", {"floor": floor, "service": service})
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
