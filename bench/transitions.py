"""State transitions per saga (read from real Step Functions histories on LocalStack) and the
end-to-end latency of the documented 3-step saga; then sagas with parallel groups (groups of
1, 2 and 3 steps) and the order-fulfilment example (a group, a pivot, retriable steps); then
conditional steps and fan-outs, counted from their compiled machines (walked in memory by
tests/support/asl_walk.py: one transition per state entered, a Map's iterations' states
included, as Step Functions Standard bills them).

    .venv/bin/python -m bench.transitions [--runs 30] [--sizes 3 10 50]
    .venv/bin/python -m bench.transitions --compiled     # the compiled rows alone, no stack

Prints tables and writes bench/results/transitions.json (transitions-compiled.json with
--compiled).
"""

from __future__ import annotations

import argparse
import copy
import json
import time
import uuid
from pathlib import Path
from typing import Any

from bench import harness
from bench.compiled_transitions import PRICE_PER_TRANSITION, SEED, floor_of, print_compiled
from bench.results_io import save, table

ROOT = Path(__file__).parents[1]
FULFILMENT = json.loads((ROOT / "examples" / "order-fulfilment" / "saga.json").read_text())


def saga_of(size: int) -> dict[str, Any]:
    """The documented saga for 3 steps; for more, notification steps appended after it."""
    definition = copy.deepcopy(SEED)
    definition["id"] = f"bench-{size}-{uuid.uuid4().hex[:6]}"
    for n in range(len(definition["steps"]), size):
        definition["steps"].append({
            "id": f"notify-{n}", "name": f"Notify {n}", "description": "one more notification",
            "order": n + 1, "action": "send_notification", "compensation": "cancel_notification",
            "max_retries": 0, "timeout": "10s"})
    return definition


def failure_positions(size: int) -> list[int]:
    """Every position up to 10 steps; for longer sagas the first, every tenth and the last."""
    if size <= 10:
        return list(range(size))
    return sorted({0, *range(9, size, 10), size - 1})


def run(client: Any, saga_id: str, customer: str, faults: list[dict[str, Any]],
        extra: dict[str, Any] | None = None) -> dict[str, Any]:
    _, started = harness.call(client, "POST", f"/sagas/{saga_id}/execute", {
        "input": {"customer_id": customer, "amount": "1.00", "currency": "EUR", **(extra or {})},
        "faults": faults})
    return harness.wait(client, started["id"])


def grouped_saga() -> dict[str, Any]:
    """Groups of 1, 2 and 3 notification steps: orders 1, 2, 2, 3, 3, 3."""
    definition = copy.deepcopy(SEED)
    definition["id"] = f"bench-groups-{uuid.uuid4().hex[:6]}"
    definition["steps"] = [{
        "id": f"g{order}-{n}", "name": f"Notify {order}.{n}", "description": "one notification",
        "order": order, "action": "send_notification", "compensation": "cancel_notification",
        "max_retries": 0, "timeout": "10s"}
        for order, size in ((1, 1), (2, 2), (3, 3)) for n in range(1, size + 1)]
    return definition


def shaped_rows(client: Any, customer: str) -> tuple[list[list[Any]], list[dict[str, Any]]]:
    """Every case of the grouped saga (each step failing in turn) and of the order-fulfilment
    saga (each branch of its group, the pivot, a retriable step that parks, and the parked
    run retried forward)."""
    rows: list[list[Any]] = []
    results: list[dict[str, Any]] = []

    def record(saga: str, label: str, execution: dict[str, Any], floor: int,
               run_arn: str | None = None) -> None:
        count = harness.transitions(run_arn or execution["sfn_execution_arn"])
        usd = count * PRICE_PER_TRANSITION * 1e6
        rows.append([saga, label, execution["status"], count, floor, f"{usd:,.0f}"])
        results.append({"saga": saga, "case": label, "status": execution["status"],
                        "transitions": count, "floor": floor,
                        "usd_per_million_sagas": round(usd, 2)})

    groups = grouped_saga()
    harness.call(client, "POST", "/sagas", groups)
    floor = floor_of(groups)
    record("groups 1+2+3", "happy path", run(client, groups["id"], customer, []), floor)
    for step in groups["steps"]:
        failed = run(client, groups["id"], customer, [{"step_id": step["id"],
                                                       "permanent": True}])
        record("groups 1+2+3", f"fails at {step['id']}", failed, floor)
    done = run(client, groups["id"], customer, [])
    harness.call(client, "POST", f"/sagas/{groups['id']}/compensate",
                 {"execution_id": done["id"]})
    record("groups 1+2+3", "compensate after complete", harness.wait(client, done["id"]),
           floor)

    fulfil = copy.deepcopy(FULFILMENT)
    fulfil["id"] = f"bench-fulfil-{uuid.uuid4().hex[:6]}"
    harness.call(client, "POST", "/sagas", fulfil)
    floor = floor_of(fulfil)
    attempts = harness.get_settings().saga.retriable_max_attempts
    cases: list[tuple[str, list[dict[str, Any]]]] = [
        ("happy path", []),
        ("reserve-stock fails (branch 1)", [{"step_id": "reserve-stock", "permanent": True}]),
        ("authorize-payment fails (branch 2)", [{"step_id": "authorize-payment",
                                                "permanent": True}]),
        ("capture-payment (pivot) fails", [{"step_id": "capture-payment", "permanent": True}]),
        (f"ship fails {attempts - 1}x, then succeeds", [{"step_id": "ship",
                                                         "times": attempts - 1}]),
        (f"ship fails {attempts}x: parks", [{"step_id": "ship", "times": attempts}]),
    ]
    parked: dict[str, Any] | None = None
    for label, faults in cases:
        sku = f"BENCH-{uuid.uuid4().hex[:6]}"
        harness.seed_stock(sku, 10)
        execution = run(client, fulfil["id"], customer, faults, {
            "sku": sku, "quantity": 1, "address": "1 Bench St"})
        record("order fulfilment", label, execution, floor)
        if execution["status"] == "PARKED":
            parked = execution
    if parked is not None:
        first_run = parked["sfn_execution_arn"]
        harness.call(client, "POST", f"/executions/{parked['id']}/retry-forward")
        resumed = harness.wait(client, parked["id"], until=lambda e: e["status"] in harness.FINAL
                               and e["sfn_execution_arn"] != first_run)
        record("order fulfilment", "the parked run, retried forward (its second run)", resumed,
               floor)
    return rows, results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=30, help="latency samples (sequential)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[3, 10, 50])
    parser.add_argument("--compiled", action="store_true",
                        help="only the conditional and fan-out rows, counted from their "
                             "compiled machines (no stack)")
    args = parser.parse_args()
    if args.compiled:
        path = save("transitions-compiled", {"transitions": print_compiled()})
        print(f"written to {path}")
        return
    client = harness.prepare()
    customer = "bench-customer"
    harness.seed_account(customer, "100000.00")
    harness.seed_account("merchant", "0.00")

    rows, results = [], []
    for size in args.sizes:
        definition = saga_of(size)
        status, _ = harness.call(client, "POST", "/sagas", definition)
        assert status == 201
        ids = [step["id"] for step in definition["steps"]]
        cases = [("happy path", [])] + [
            (f"fails at step {i + 1}", [{"step_id": ids[i], "permanent": True}])
            for i in failure_positions(size)]
        for label, faults in cases:
            execution = run(client, definition["id"], customer, faults)
            count = harness.transitions(execution["sfn_execution_arn"])
            rows.append([size, label, execution["status"], count, size,
                         f"{count * PRICE_PER_TRANSITION * 1e6:,.0f}"])
            results.append({"steps": size, "case": label, "status": execution["status"],
                            "transitions": count, "floor": size,
                            "usd_per_million_sagas": round(count * PRICE_PER_TRANSITION * 1e6,
                                                           2)})
        done = run(client, definition["id"], customer, [])
        harness.call(client, "POST", f"/sagas/{definition['id']}/compensate",
                     {"execution_id": done["id"]})
        undone = harness.wait(client, done["id"])
        count = harness.transitions(undone["sfn_execution_arn"])
        rows.append([size, "compensate after complete", undone["status"], count, size,
                     f"{count * PRICE_PER_TRANSITION * 1e6:,.0f}"])
        results.append({"steps": size, "case": "compensate after complete",
                        "status": undone["status"], "transitions": count, "floor": size})
    print(table(rows, ["steps", "case", "status", "transitions", "floor (1/step)",
                       "USD per million sagas"]))
    print()
    shaped, shaped_results = shaped_rows(client, customer)
    print(table(shaped, ["saga", "case", "status", "transitions",
                         "floor (1/Task + 1/Parallel)", "USD per million sagas"]))
    results += shaped_results
    print()
    results += print_compiled()

    seed = saga_of(3)
    harness.call(client, "POST", "/sagas", seed)
    run(client, seed["id"], customer, [])  # warm the Lambdas
    latencies, sfn_durations = [], []
    for _ in range(args.runs):
        started = time.perf_counter()
        execution = run(client, seed["id"], customer, [])
        latencies.append((time.perf_counter() - started) * 1000)
        assert execution["status"] == "COMPLETED", execution
        described = harness.aws.client("stepfunctions", harness.get_settings().aws) \
            .describe_execution(executionArn=execution["sfn_execution_arn"])
        sfn_durations.append(
            (described["stopDate"] - described["startDate"]).total_seconds() * 1000)
    latency = harness.summary(latencies)
    sfn = harness.summary(sfn_durations)
    print()
    print(table(
        [["execute -> COMPLETED seen by the API (ms)", *(f"{latency[k]:.0f}" for k in
                                                        ("p50", "p95", "p99", "max"))],
         ["Step Functions run, start to stop (ms)", *(f"{sfn[k]:.0f}" for k in
                                                     ("p50", "p95", "p99", "max"))]],
        ["documented 3-step saga, sequential runs", "p50", "p95", "p99", "max"]))
    happy3 = next(r["transitions"] for r in results if r["steps"] == 3
                  and r["case"] == "happy path")
    per_million = happy3 * PRICE_PER_TRANSITION * 1_000_000
    print(f"\nStep Functions cost of the 3-step happy path: {happy3} transitions -> "
          f"USD {per_million:.2f} per million sagas (Standard, list price)")
    path = save("transitions", {"transitions": results, "latency_ms": latency,
                                        "sfn_duration_ms": sfn, "runs": args.runs})
    print(f"written to {path}")


if __name__ == "__main__":
    main()
