"""The modelled ceiling: how many executes per second the whole path sustains on AWS's default
quotas, and which limit binds, for Standard and Express. Pure arithmetic over measured inputs
(no stack):

- per execute, the calls and state transitions of the documented 3-step saga's happy path,
  counted by walking its compiled machines (tests/support/asl_walk.py, as Step Functions bills
  them), and its Lambda invocations (the Tasks entered);
- the MySQL transactions of an execute (BENCHMARKS section 8: 3) and of a step (section 3: 1
  per attempt), and how long each holds its connection;
- AWS's default quotas (chalicelib.testing.throttling, ../shared/notes/AWS-QUOTAS.md).

    .venv/bin/python -m bench.ceiling [--lambda-ms 60] [--api-ms 40] [--max-connections 1000]

Lambda durations are inputs, not measurements here: on AWS a step Lambda's time is its SQL
round trips (11 statements, section 3) at the network's latency plus the invoke; the defaults
are conservative figures for a built-in step and the execute route, and the bench prints how
the ceiling moves with them.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.results_io import table
from chalicelib.adapters.stepfunctions.compiler import (
    MachineTargets,
    compile_forward,
)
from chalicelib.domain.models import Step, StepDefinition
from chalicelib.testing.throttling import (
    DEFAULT_LAMBDA_CONCURRENCY,
    DEFAULT_QUOTAS,
    STATE_TRANSITIONS,
)
from tests.support import asl_walk

ROOT = Path(__file__).parents[1]
SEED = json.loads((ROOT / "tests" / "fixtures" / "payment-saga.json").read_text())
TARGET = 250.0  # executes per second, sustained
_TARGETS = MachineTargets(function_for=lambda step, phase: "arn:aws:lambda:r:1:function:s",
                          recorder="arn:aws:lambda:r:1:function:recorder")
# API Gateway REST: 10,000 requests per second per Region (the burst aside).
API_GATEWAY_RPS = 10_000
# Express: StartExecution (StartSyncExecution and the asynchronous start alike) 6,000/s.
EXPRESS_STARTS = 6000
# MySQL transactions: an execute's (section 8) and each step attempt's (section 3).
EXECUTE_TRANSACTIONS = 3
STEP_TRANSACTIONS = 1


@dataclass(frozen=True)
class Demand:
    """One execute's demand on each limit."""

    transitions: int
    invocations: int
    steps: int


def happy_path() -> Demand:
    steps = [Step.of(StepDefinition.model_validate(s)) for s in SEED["steps"]]
    run = asl_walk.walk(compile_forward(steps, _TARGETS), {})
    assert run.end == "Completed"
    return Demand(transitions=run.transitions, invocations=len(run.tasks), steps=len(steps))


def limits(path: Demand, *, workflow: str, lambda_ms: float, api_ms: float,
           txn_ms: float, max_connections: int, proxy: bool) -> dict[str, float]:
    """Executes per second each limit allows, sustained (refill rates, not bursts)."""
    per_execute_s = path.invocations * lambda_ms / 1000 + api_ms / 1000
    found = {
        "API Gateway requests": float(API_GATEWAY_RPS),
        "Lambda concurrency (API + step Lambdas)": DEFAULT_LAMBDA_CONCURRENCY / per_execute_s,
    }
    if workflow == "standard":
        found["StartExecution"] = DEFAULT_QUOTAS[("sfn", "StartExecution")][1]
        found["StateTransition"] = STATE_TRANSITIONS["default"][1] / path.transitions
    else:
        found["StartExecution (Express)"] = float(EXPRESS_STARTS)
    if proxy:
        # RDS Proxy lends a connection per transaction: connections busy = transactions/s x
        # how long each lasts.
        per_execute_txn_s = (EXECUTE_TRANSACTIONS + path.steps * STEP_TRANSACTIONS) * \
            txn_ms / 1000
        found["MySQL connections (RDS Proxy)"] = max_connections / per_execute_txn_s
    else:
        # Without a proxy every warm Lambda keeps its own connection: connections = the
        # Lambdas running at once, so the database's max_connections caps the concurrency.
        found["MySQL connections (one per warm Lambda)"] = max_connections / per_execute_s
    return found


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lambda-ms", type=float, default=60.0,
                        help="a step Lambda's (or the recorder's) duration on AWS")
    parser.add_argument("--api-ms", type=float, default=40.0,
                        help="the execute route's Lambda duration on AWS")
    parser.add_argument("--txn-ms", type=float, default=5.0,
                        help="how long one MySQL transaction holds its connection")
    parser.add_argument("--max-connections", type=int, default=1000,
                        help="the database's max_connections (db.r6g.large: about 1,000)")
    args = parser.parse_args(argv)
    path = happy_path()
    print(f"inputs: the documented saga's happy path: {path.transitions} state transitions, "
          f"{path.invocations} Lambda invocations ({path.steps} steps + the recorder), "
          f"{EXECUTE_TRANSACTIONS} MySQL transactions per execute + {STEP_TRANSACTIONS} per "
          f"step; step Lambda {args.lambda_ms:g} ms, execute route {args.api_ms:g} ms, "
          f"transaction {args.txn_ms:g} ms, max_connections {args.max_connections}")
    results, rows = [], []
    for workflow in ("standard", "express"):
        for proxy in (False, True):
            found = limits(path, workflow=workflow, lambda_ms=args.lambda_ms,
                           api_ms=args.api_ms, txn_ms=args.txn_ms,
                           max_connections=args.max_connections, proxy=proxy)
            binding = min(found, key=lambda name: found[name])
            ceiling = found[binding]
            rows.append([workflow, "RDS Proxy" if proxy else "direct",
                         f"{ceiling:,.0f}", binding,
                         "yes" if ceiling >= TARGET else "no",
                         "; ".join(f"{k} {v:,.0f}" for k, v in sorted(found.items(),
                                                                      key=lambda kv: kv[1]))])
            results.append({"workflow": workflow, "proxy": proxy, "ceiling": round(ceiling, 1),
                            "binding": binding, "limits": {k: round(v, 1)
                                                           for k, v in found.items()}})
    print(table(rows, ["workflow", "MySQL", "executes/s", "binding limit", f">= {TARGET:g}",
                       "every limit (executes/s)"]))
    refill = STATE_TRANSITIONS["default"][1]
    most = int(refill // TARGET)
    print(f"\nStandard: StartExecution refills {DEFAULT_QUOTAS[('sfn', 'StartExecution')][1]}/s "
          f"and StateTransition {refill:,}/s, so {TARGET:g} executes/s hold while a saga's "
          f"happy path takes at most {most} state transitions (this one {path.transitions}). "
          f"A longer saga (n transitions) needs {TARGET:g} x n per second: run it on Express "
          "(workflow auto picks it for a forward path that surely fits in 4 minutes; "
          "compensations still run on Standard), or ask AWS to raise StateTransition to "
          f"{TARGET:g} x n/s (and StartExecution above {TARGET:g}/s for headroom).")
    return results


if __name__ == "__main__":
    main()
