"""State transitions counted from compiled machines, with no stack (BENCHMARKS.md,
"Conditions and fan-outs"): conditional steps and fan-outs, each case walked in memory by
tests/support/asl_walk.py (one transition per state entered, a Map's iterations' states
included, as Step Functions Standard bills them). Pure: importing it sets no stage, so the test
session may import it (bench.harness, which bench.transitions uses, sets the `bench` stage).

    .venv/bin/python -m bench.transitions --compiled
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from bench.results_io import table
from chalicelib.adapters.stepfunctions.compiler import (
    MachineTargets,
    compile_compensation,
    compile_forward,
)
from chalicelib.domain.models import Step, StepDefinition
from tests.support import asl_walk

ROOT = Path(__file__).parents[1]
SEED = json.loads((ROOT / "tests" / "fixtures" / "payment-saga.json").read_text())
# Step Functions Standard: USD 0.025 per 1,000 state transitions (us-east-1, list price).
PRICE_PER_TRANSITION = 0.025 / 1000


def floor_of(definition: dict[str, Any]) -> int:
    """The happy path's least: one Task per step, one Parallel state per group of more."""
    sizes: dict[int, int] = {}
    for step in definition["steps"]:
        sizes[step["order"]] = sizes.get(step["order"], 0) + 1
    return sum(n + (1 if n > 1 else 0) for n in sizes.values())


# A fan-out's items: one, ten, and saga.max_fanout_items' default.
FANOUT_SIZES = (1, 10, 100)
FANOUT = "reserve-lines"
_TARGETS = MachineTargets(
    function_for=lambda step, phase: f"arn:aws:lambda:us-east-1:000000000000:function:"
                                     f"saga-{step.target(phase)}",
    recorder="arn:aws:lambda:us-east-1:000000000000:function:saga-recorder")


def conditional_saga() -> dict[str, Any]:
    """The documented saga, its notification sent only when the input asks for it."""
    definition = copy.deepcopy(SEED)
    definition["id"] = "bench-conditional"
    definition["steps"][-1]["when"] = "$.input.notify == true"
    return definition


def fanout_saga() -> dict[str, Any]:
    """The documented saga with stock reserved once per order line (at most 4 at once, no
    failure tolerated) between validating and processing the payment."""
    definition = copy.deepcopy(SEED)
    definition["id"] = "bench-fanout"
    validate, process, notify = definition["steps"]
    reserve = {"id": FANOUT, "name": "Reserve each line", "description": "stock per line",
               "order": 2, "action": "reserve_inventory", "compensation": "release_inventory",
               "max_retries": 0, "timeout": "10s", "for_each": "$.input.lines",
               "max_concurrency": 4, "input": {"line": "$.item"}}
    process["order"], notify["order"] = 3, 4
    definition["steps"] = [validate, reserve, process, notify]
    return definition


def compiled_floor(definition: dict[str, Any], items: int = 0) -> int:
    """The happy path's least: one Task per step or item, one Parallel state per group of
    more, one Map state per fan-out."""
    fanouts = sum(1 for step in definition["steps"] if step.get("for_each"))
    return floor_of({"steps": [step for step in definition["steps"]
                               if not step.get("for_each")]}) + fanouts * (1 + items)


def _steps(definition: dict[str, Any]) -> list[Step]:
    return [Step.of(StepDefinition.model_validate(step)) for step in definition["steps"]]


def compiled_rows() -> tuple[list[list[Any]], list[dict[str, Any]]]:
    """Conditional steps and fan-outs, each case walked through its compiled machine: a
    Task's outcome scripted (a skip is a plain Task's success), a fan-out's recorder Tasks
    answering the item lists the step runtime would (expand: every item; undo-items: those
    that succeeded)."""
    rows: list[list[Any]] = []
    results: list[dict[str, Any]] = []

    def record(saga: str, label: str, run: asl_walk.Run, floor: int) -> None:
        usd = run.transitions * PRICE_PER_TRANSITION * 1e6
        status = run.end.upper()
        rows.append([saga, label, status, run.transitions, floor, f"{usd:,.0f}"])
        results.append({"saga": saga, "case": label, "status": status,
                        "transitions": run.transitions, "floor": floor,
                        "usd_per_million_sagas": round(usd, 2)})

    conditional = conditional_saga()
    machine = compile_forward(_steps(conditional), _TARGETS)
    for label in ("send-notification runs (its when true)",
                  "send-notification skipped (its when false)"):
        # The condition is evaluated in the step's Lambda: the same states either way.
        record("conditional 3 steps", label, asl_walk.walk(machine, {}),
               compiled_floor(conditional))
    # A failure after the condition's step: the step that ran before it is undone (a skipped
    # step's undo state is entered too, and its Lambda answers that there is nothing to undo).
    record("conditional 3 steps", "send-notification fails for good, 2 undone",
           asl_walk.walk(machine, {"step:send-notification": "error"}),
           compiled_floor(conditional))

    fanout = fanout_saga()
    steps = _steps(fanout)
    forward, undo = compile_forward(steps, _TARGETS), compile_compensation(steps, _TARGETS)
    expand, listed = f"step:{FANOUT}", f"undo:{FANOUT}"
    for size in FANOUT_SIZES:
        saga, floor = f"fan-out of {size}", compiled_floor(fanout, size)
        every = {expand: {"items": list(range(size))}}
        record(saga, "happy path", asl_walk.walk(forward, {}, answers=every), floor)
        failing = [size - 1] if size == 1 else [0, size - 1]
        for item in failing:
            # No item failure is tolerated: gather fails, and the step's own undo compensates
            # the items that succeeded (items after a failure start no attempt, but their
            # iterations still enter their Task).
            done = [i for i in range(size) if i < item]
            run = asl_walk.walk(forward, {f"item:{FANOUT}[{item}]": "error",
                                          f"gather:{FANOUT}": "fanout-failed"},
                                answers={**every, listed: {"items": done}})
            record(saga, f"item {item + 1} fails, {len(done)} items undone", run, floor)
        if size > 1:
            # Tolerated (tolerated_failures: 1): the same states, and gather completes the step.
            run = asl_walk.walk(forward, {f"item:{FANOUT}[{size - 1}]": "error"}, answers=every)
            record(saga, f"item {size} fails, 1 tolerated", run, floor)
        complete = asl_walk.walk(forward, {}, answers=every)
        assert complete.end == "Completed"
        record(saga, "compensate after complete",
               asl_walk.walk(undo, {}, answers={listed: {"items": list(range(size))}}), floor)
    return rows, results


def print_compiled() -> list[dict[str, Any]]:
    rows, results = compiled_rows()
    print(table(rows, ["saga", "case", "status", "transitions",
                       "floor (1/Task + 1/Parallel or Map)", "USD per million sagas"]))
    return results
