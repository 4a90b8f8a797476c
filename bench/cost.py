"""Cost per million runs, measured: the documented 3-step saga, a 10-step saga, a saga of
parallel groups (1 + 2 + 3 steps) and the order-fulfilment example, each on Step Functions
Standard and on Step Functions Express, all in (the engine and the step Lambdas), beside the
floor (the Lambdas alone: what the engine adds is on top) and Temporal Cloud's list price for
the same number of actions.

    .venv/bin/python -m bench.cost [--runs 20]
    .venv/bin/python -m bench.cost --compiled [--run-ms 1000] [--lambda-ms 20]   # no stack

What is counted comes from each saga's compiled forward machine, walked in memory along its
happy path (tests/support/asl_walk.py): Standard's state transitions (one per state entered),
and the Lambda invocations (one per Task state entered, the recorder's included). A Temporal
workflow doing the same work counts one action for its start and one per activity started,
each of those invocations being an activity (the recorder's records the completion); the
workflow's completing is not an action on Temporal's list.

What is timed comes from the write model (MySQL), so it is the same whatever engine runs the
machine: a run lasts from its execution's started_at to its ended_at (when the recorder wrote
COMPLETED); a step's Lambda, its action attempt's started_at to ended_at; the recorder's, the
last attempt's end to the execution's end (an upper bound: it includes the engine's hand-off,
which Lambda does not bill). Each is the median over --runs sequential runs through the API
and the deployed Lambdas of the `bench` stage, after one run to warm them. No Step Functions
history is read: an Express machine keeps none. The runs are on Express machines (the sagas are
stored with `workflow: express`; `--workflow standard` times them on Standard), so the duration
Express bills is its own run's (priced at 64 MB, the least Express bills); Standard's bill is
by transitions, which the duration does not change. Every price is in bench/pricing.py, with
its source; the Lambdas' memory is read from .chalice/config.json for the stage, per function.
A cross-check follows the table: the same runs priced with each Lambda's duration as Lambda
itself reported it (the REPORT line it logs per invocation, p50 per function), which shows how
far the write model's spans are from what Lambda bills (an attempt's span leaves out the
handler's work around it; the recorder's bound includes the hand-off).

With --compiled, the counts are the same and the durations are the ones given: --run-ms for
every saga (or one per saga, in the order above), --lambda-ms for every invocation.

Prints the inputs and a table at the measured durations and at 2x and 5x them, and writes
bench/results/cost.json (cost-compiled.json with --compiled).
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from chalice.config import Config

from bench import harness, pricing
from bench import transitions as shapes
from bench.pricing import Invocation
from bench.results_io import save, table
from chalicelib.adapters.mysql.executions import load_execution
from chalicelib.adapters.stepfunctions.compiler import compile_forward
from chalicelib.demo import FAMILY_OF
from chalicelib.domain.executions import Execution
from chalicelib.roots import runtime
from chalicelib.roots.step_names import RECORDER_FUNCTION, family_of, function_name
from tests.support import asl_walk

ROOT = Path(__file__).parents[1]
CHALICE_CONFIG = json.loads((ROOT / ".chalice" / "config.json").read_text())
RECORDER = "(recorder)"  # the recorder's Tasks, beside the steps' ids
SCALES = (1, 2, 5)
TARGET_USD = 5.0  # the 3-step saga on Express, all in, per million runs
CUSTOMER = "bench-customer"
Window = tuple[int, int]  # epoch ms: from the first timed run's start to the last one's end
_REPORT = re.compile(r"REPORT RequestId: \S+\s+Duration: ([0-9.]+) ms")
LOG_GRACE_MS = 2000  # a log event may be stamped a little after its run was seen to end


@dataclass(frozen=True)
class Saga:
    name: str
    definition: dict[str, Any]
    extra_input: Callable[[], dict[str, Any]] = dict  # what each run adds to its input


@dataclass(frozen=True)
class Shape:
    """A saga's happy path as its compiled forward machine runs it."""

    transitions: int
    tasks: tuple[str, ...]  # the Lambda each Task entered calls: a step's id or RECORDER

    @property
    def temporal_actions(self) -> int:
        return 1 + len(self.tasks)  # the workflow's start, then one per activity


@dataclass(frozen=True)
class Durations:
    """Medians, in ms: the run, and each Lambda (by step id, and RECORDER)."""

    run_ms: float
    lambda_ms: dict[str, float]

    def scaled(self, factor: float) -> Durations:
        return replace(self, run_ms=self.run_ms * factor,
                       lambda_ms={k: v * factor for k, v in self.lambda_ms.items()})


def fulfilment_input() -> dict[str, Any]:
    """Each run its own SKU, stocked, so no run waits on another's reservation."""
    sku = f"BENCH-{uuid.uuid4().hex[:6]}"
    harness.seed_stock(sku, 10)
    return {"sku": sku, "quantity": 1, "address": "1 Bench St"}


def sagas() -> list[Saga]:
    fulfil = copy.deepcopy(shapes.FULFILMENT)
    fulfil["id"] = f"bench-fulfil-{uuid.uuid4().hex[:6]}"
    return [Saga("3 steps", shapes.saga_of(3)), Saga("10 steps", shapes.saga_of(10)),
            Saga("groups 1+2+3", shapes.grouped_saga()),
            Saga("order fulfilment", fulfil, fulfilment_input)]


def shape_of(definition: dict[str, Any]) -> Shape:
    run = asl_walk.walk(compile_forward(shapes._steps(definition), shapes._TARGETS), {})
    assert run.end == "Completed", run.end
    # The recorder's Tasks carry an outcome; a step's, its step_id.
    return Shape(run.transitions, tuple(RECORDER if "outcome" in params else params["step_id"]
                                        for _, params, _ in run.tasks))


def memory_mb(function: str, stage: str) -> int:
    """The function's lambda_memory_size as Chalice resolves it (stage and function
    overrides first); Lambda's default, 128 MB, when none is set."""
    config = Config(chalice_stage=stage, function_name=function, config_from_disk=CHALICE_CONFIG)
    return int(config.lambda_memory_size or 128)


def functions_of(definition: dict[str, Any]) -> dict[str, str]:
    """The function each Task calls: a step's is its action's family's, then the recorder."""
    return {**{step["id"]: function_name(family_of(step["action"], FAMILY_OF))
               for step in definition["steps"]}, RECORDER: RECORDER_FUNCTION}


def memory_of(definition: dict[str, Any], stage: str) -> dict[str, int]:
    return {task: memory_mb(function, stage)
            for task, function in functions_of(definition).items()}


def costs(shape: Shape, durations: Durations, memory: dict[str, int]) -> dict[str, float]:
    """USD per million runs: each engine all in, the Lambdas alone, Temporal's actions."""
    lambdas = pricing.lambda_usd(Invocation(durations.lambda_ms[task], memory[task])
                                 for task in shape.tasks)
    usd = {"standard": pricing.standard_usd(shape.transitions) + lambdas,
           "express": pricing.express_usd(durations.run_ms) + lambdas,
           "floor": lambdas,
           **{f"temporal {tier}": pricing.temporal_usd(shape.temporal_actions, tier)
              for tier in pricing.TEMPORAL_PER_ACTION}}
    return {key: round(pricing.per_million(value), 4) for key, value in usd.items()}


# -- measuring on the stack ------------------------------------------------------------------

def written(execution_id: str) -> Execution:
    """The execution as the write model holds it, its steps' attempts included."""
    with runtime.container().connector.transaction() as cur:
        execution = load_execution(cur, execution_id)
    assert execution is not None, execution_id
    return execution


def _ms(start: datetime, end: datetime) -> float:
    return (end - start).total_seconds() * 1000


def sample(execution: Execution) -> tuple[float, dict[str, float]]:
    """(the run's ms, each Lambda's ms) of one COMPLETED happy-path run."""
    assert execution.ended_at is not None
    lambdas: dict[str, float] = {}
    last_end = execution.started_at
    for step in execution.steps:
        attempts = [a for a in step.attempts if a.phase == "action"]
        # One attempt each: a retry would be an invocation the compiled count leaves out.
        assert len(attempts) == 1, (step.step_id, attempts)
        lambdas[step.step_id] = _ms(attempts[0].started_at, attempts[0].ended_at)
        last_end = max(last_end, attempts[0].ended_at)
    lambdas[RECORDER] = _ms(last_end, execution.ended_at)
    return _ms(execution.started_at, execution.ended_at), lambdas


def measure(client: Any, saga: Saga, runs: int) -> tuple[Durations, Window]:
    """The medians of `runs` timed runs, and when they ran (epoch ms)."""
    status, _ = harness.call(client, "POST", "/sagas", saga.definition)
    assert status == 201, status
    saga_id = saga.definition["id"]
    shapes.run(client, saga_id, CUSTOMER, [], saga.extra_input())  # warm its Lambdas
    samples = []
    started = _now_ms()
    for _ in range(runs):
        done = shapes.run(client, saga_id, CUSTOMER, [], saga.extra_input())
        assert done["status"] == "COMPLETED", done
        samples.append(sample(written(done["id"])))
    window = (started, _now_ms())
    return Durations(harness.percentile([run for run, _ in samples], 50),
                     {key: harness.percentile([lambdas[key] for _, lambdas in samples], 50)
                      for key in samples[0][1]}), window


def _now_ms() -> int:
    return int(time.time() * 1000)


def reported_ms(function: str, window: Window) -> list[float]:
    """The durations Lambda itself reported for the function's invocations in the window
    (the REPORT lines of its log)."""
    settings = harness.get_settings()
    logs = harness.aws.client("logs", settings.aws)
    pages = logs.get_paginator("filter_log_events").paginate(
        logGroupName=f"/aws/lambda/{settings.aws.app_name}-{settings.stage}-{function}",
        startTime=window[0], endTime=window[1] + LOG_GRACE_MS, filterPattern="REPORT")
    return [float(match[1]) for page in pages for event in page["events"]
            if (match := _REPORT.match(event["message"]))]


def reported(definition: dict[str, Any], durations: Durations,
             window: Window) -> tuple[Durations, dict[str, int]]:
    """The durations again, each Lambda's as Lambda reported it (p50 per function over the
    timed runs); and how many invocations each function reported."""
    # The last Lambda may log its REPORT line after its outcome was seen.
    time.sleep(max(0, window[1] + LOG_GRACE_MS - _now_ms()) / 1000)
    functions = functions_of(definition)
    by_function = {function: reported_ms(function, window)
                   for function in set(functions.values())}
    return (replace(durations, lambda_ms={task: harness.percentile(by_function[function], 50)
                                          for task, function in functions.items()}),
            {function: len(values) for function, values in by_function.items()})


# -- printing --------------------------------------------------------------------------------

def _usd(value: float) -> str:
    return f"{value:,.2f}"


def input_rows(name: str, shape: Shape, durations: Durations,
               memory: dict[str, int]) -> list[list[Any]]:
    steps = [task for task in shape.tasks if task != RECORDER]
    per_step = " / ".join(f"{durations.lambda_ms[s]:.1f}" for s in steps)
    memories = sorted({memory[task] for task in shape.tasks})
    return [[name, len(steps), shape.transitions, len(shape.tasks), shape.temporal_actions,
             f"{durations.run_ms:,.0f}", per_step, f"{durations.lambda_ms[RECORDER]:.1f}",
             " / ".join(str(m) for m in memories)]]


INPUT_HEADER = ["saga", "steps", "transitions (Standard)", "Lambda invocations",
                "Temporal actions", "run p50 (ms)", "step Lambdas p50 (ms, in Task order)",
                "recorder p50 (ms)", "Lambda memory (MB)"]
COST_HEADER = ["saga", "durations", "Standard all in", "Express all in",
               "floor: Lambdas alone", "Standard on top", "Express on top",
               "Temporal actions at USD 50/M", "at USD 25/M"]


def cost_row(name: str, scale: int, usd: dict[str, float], timed: str) -> list[Any]:
    return [name, timed if scale == 1 else f"{scale}x", _usd(usd["standard"]),
            _usd(usd["express"]), _usd(usd["floor"]), _usd(usd["standard"] - usd["floor"]),
            _usd(usd["express"] - usd["floor"]), _usd(usd["temporal entry"]),
            _usd(usd["temporal lowest published"])]


def report(cases: list[tuple[Saga, Shape, Durations]], stage: str,
           timed: str) -> list[dict[str, Any]]:
    """Prints the inputs, the formulas and the costs; the figures, for saving. timed: how
    the durations were had ("measured", "given")."""
    inputs, rows, results = [], [], []
    for saga, shape, durations in cases:
        memory = memory_of(saga.definition, stage)
        inputs += input_rows(saga.name, shape, durations, memory)
        scaled = {scale: costs(shape, durations.scaled(scale), memory) for scale in SCALES}
        rows += [cost_row(saga.name, scale, usd, timed) for scale, usd in scaled.items()]
        results.append({"saga": saga.name, "transitions": shape.transitions,
                        "tasks": list(shape.tasks), "temporal_actions": shape.temporal_actions,
                        "run_ms_p50": durations.run_ms, "lambda_ms_p50": durations.lambda_ms,
                        "memory_mb": memory, "express_memory_mb": pricing.EXPRESS_MEMORY_CHUNK_MB,
                        "usd_per_million_runs": {f"{s}x": usd for s, usd in scaled.items()}})
    print(table(inputs, INPUT_HEADER))
    print()
    for label, formula in (("Standard", pricing.STANDARD_FORMULA),
                           ("Express", pricing.EXPRESS_FORMULA),
                           ("Lambda", pricing.LAMBDA_FORMULA),
                           ("Temporal Cloud", pricing.TEMPORAL_FORMULA)):
        print(f"{label}: {formula}")
    print(f"Express memory: {pricing.EXPRESS_MEMORY_CHUNK_MB} MB (one chunk, the base tier); "
          f"Lambda memory: .chalice/config.json, stage {stage}")
    print()
    print(table(rows, COST_HEADER))
    print("USD per million runs, happy path; 2x / 5x: every duration (run and Lambdas) "
          "multiplied")
    return results


def verdict(results: list[dict[str, Any]], timed: str) -> str:
    three = next(r for r in results if r["saga"] == "3 steps")
    usd = three["usd_per_million_runs"]["1x"]["express"]
    met = "met" if usd <= TARGET_USD else "NOT met"
    return (f"3-step saga on Express, all in, at the {timed} duration: USD {usd:.2f} per "
            f"million runs (target: at most USD {TARGET_USD:.2f}: {met})")


CHECK_HEADER = ["saga", "each function's p50 as Lambda reported it (ms, invocations)",
                "Standard all in", "Express all in", "floor: Lambdas alone"]


def cross_check(checks: list[tuple[Saga, Shape, Durations, dict[str, int]]],
                stage: str) -> list[dict[str, Any]]:
    """The measured table's first rows again, each Lambda timed by Lambda itself: how far
    the write model's spans are from what Lambda bills."""
    rows, results = [], []
    for saga, shape, durations, counts in checks:
        usd = costs(shape, durations, memory_of(saga.definition, stage))
        functions = functions_of(saga.definition)
        per_function = {function: durations.lambda_ms[task]
                        for task, function in functions.items() if task in shape.tasks}
        rows.append([saga.name, ", ".join(f"{f} {ms:.1f} ({counts[f]})"
                                          for f, ms in sorted(per_function.items())),
                     _usd(usd["standard"]), _usd(usd["express"]), _usd(usd["floor"])])
        results.append({"saga": saga.name, "lambda_ms_p50": per_function,
                        "invocations": counts, "usd_per_million_runs": usd})
    print(table(rows, CHECK_HEADER))
    print("Cross-check, at the measured run durations: each Lambda's duration from the REPORT "
          "line Lambda logs for every invocation, not from the write model")
    return results


def compiled_durations(shape: Shape, run_ms: float, lambda_ms: float) -> Durations:
    return Durations(run_ms, {task: lambda_ms for task in shape.tasks})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20, help="timed runs per saga (sequential)")
    parser.add_argument("--workflow", choices=["express", "standard"], default="express",
                        help="what the timed runs run on (default: express)")
    parser.add_argument("--compiled", action="store_true",
                        help="no stack: the compiled counts with the durations given below")
    parser.add_argument("--run-ms", type=float, nargs="+", default=[1000.0],
                        help="with --compiled: a run's duration, one for every saga or one "
                             "per saga")
    parser.add_argument("--lambda-ms", type=float, default=20.0,
                        help="with --compiled: every Lambda invocation's duration")
    args = parser.parse_args()
    stage = harness.get_settings().stage
    chosen = sagas()
    if args.compiled:
        run_ms = args.run_ms * len(chosen) if len(args.run_ms) == 1 else args.run_ms
        if len(run_ms) != len(chosen):
            parser.error(f"--run-ms takes one figure or {len(chosen)}")
        cases = [(saga, shape, compiled_durations(shape, ms, args.lambda_ms))
                 for saga, ms in zip(chosen, run_ms, strict=True)
                 for shape in [shape_of(saga.definition)]]
        results = report(cases, stage, "given")
        print(verdict(results, "given"))
        print(f"written to {save('cost-compiled', {'sagas': results})}")
        return
    client = harness.prepare()
    harness.seed_account(CUSTOMER, "100000.00")
    harness.seed_account("merchant", "0.00")
    cases, checks = [], []
    for saga in chosen:
        shape = shape_of(saga.definition)
        saga.definition["workflow"] = args.workflow
        durations, window = measure(client, saga, args.runs)
        cases.append((saga, shape, durations))
        checks.append((saga, shape, *reported(saga.definition, durations, window)))
    results = report(cases, stage, "measured")
    print(verdict(results, "measured"))
    print()
    checked = cross_check(checks, stage)
    path = save("cost", {"sagas": results, "lambda_reported": checked, "runs": args.runs,
                         "workflow": args.workflow})
    print(f"written to {path}")

if __name__ == "__main__":
    main()
