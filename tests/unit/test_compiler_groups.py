"""Parallel groups, pivot and retriable steps in the compiled machines.

Random sagas (groups of 1 to 5 steps, a pivot or none, failures anywhere) are walked by the
ASL simulator with the step runtime's one rule that matters here (an undo of a step whose
action failed for good does nothing): every step that succeeded or timed out is compensated
exactly once, none twice, nothing after the pivot ever (asl-validator: tests/tools). How many
sagas each property draws is the hypothesis profile's (tests/conftest.py).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.adapters.stepfunctions.compiler import (
    CompileOptions,
    MachineTargets,
    compile_compensation,
    compile_forward,
)
from chalicelib.adapters.stepfunctions.machine_input import execution_input, resume_state
from chalicelib.domain.lifecycle import StepKind
from chalicelib.domain.models import Step
from tests.support import asl_walk

ARN = "arn:aws:lambda:us-east-1:000000000000:function:saga-{}"
TARGETS = MachineTargets(function_for=lambda step, phase: ARN.format(step.target(phase)),
                         recorder=ARN.format("recorder"))


def step(step_id: str, order: int, kind: StepKind = StepKind.COMPENSATABLE) -> Step:
    return Step(id=step_id, order=order, action=f"do-{step_id}",
                compensation=None if kind is StepKind.RETRIABLE else f"undo-{step_id}",
                max_retries=1, timeout="10s", active=True, kind=kind)


@dataclass
class Shape:
    groups: list[list[Step]]
    pivot: int | None  # the pivot's group index

    @property
    def steps(self) -> list[Step]:
        return [s for group in self.groups for s in group]


@st.composite
def shapes(draw: st.DrawFn) -> Shape:
    sizes = draw(st.lists(st.integers(1, 5), min_size=1, max_size=6))
    pivot = draw(st.none() | st.integers(0, len(sizes) - 1))
    if pivot is not None:
        sizes[pivot] = 1  # a pivot runs alone
    groups, n = [], 0
    for index, size in enumerate(sizes):
        kind = (StepKind.COMPENSATABLE if pivot is None or index < pivot
                else StepKind.PIVOT if index == pivot else StepKind.RETRIABLE)
        groups.append([step(f"s{n + i}", (index + 1) * 10, kind) for i in range(size)])
        n += size
    return Shape(groups, pivot)


@dataclass
class Effects:
    """What the steps did, as the step runtime would record it."""

    run: asl_walk.Run
    status: dict[str, str]  # succeeded | failed | unknown (timed out)
    compensated: Counter[str]

    @classmethod
    def of(cls, run: asl_walk.Run, status: dict[str, str] | None = None) -> Effects:
        status = dict(status or {})
        tasks = [(params, outcome) for _, params, outcome in run.tasks if "step_id" in params]
        # Every action of a run ends before its first undo starts.
        for params, outcome in tasks:
            if params["phase"] == "action":
                status[params["step_id"]] = {"ok": "succeeded", "error": "failed",
                                             "timeout": "unknown"}[outcome]
        compensated: Counter[str] = Counter(
            params["step_id"] for params, outcome in tasks
            if params["phase"] == "compensation" and outcome == "ok"
            and _undo_runs(status.get(params["step_id"]), params))
        return cls(run, status, compensated)

    def undo_order(self) -> list[str]:
        return [params["step_id"] for name, params, outcome in self.run.tasks
                if params.get("phase") == "compensation" and outcome == "ok"]


def _undo_runs(status: str | None, params: dict[str, Any]) -> bool:
    """The step runtime's rule: an undo does nothing for a step whose action failed for good,
    nor, in a compensation-only run, for one that never ran."""
    if status == "failed":
        return False
    return not (params.get("skip_undone") and status is None)


@settings(deadline=None)
@given(shapes(), st.data())
def test_a_failure_anywhere_compensates_exactly_what_took_effect(shape: Shape,
                                                                 data: st.DataObject) -> None:
    failing = data.draw(st.integers(0, len(shape.groups) - 1))
    group = shape.groups[failing]
    failed = data.draw(st.lists(st.sampled_from(group), min_size=1, unique_by=lambda s: s.id))
    outcomes = {f"step:{s.id}": data.draw(st.sampled_from(["error", "timeout"]))
                for s in failed}
    effects = Effects.of(asl_walk.walk(compile_forward(shape.steps, TARGETS), outcomes))

    # Every step of the failing group and the groups before it ran once; none after it.
    ran = Counter(p["step_id"] for _, p, _ in effects.run.tasks if p.get("phase") == "action")
    assert ran == Counter(s.id for g in shape.groups[:failing + 1] for s in g)
    assert all(count <= 1 for count in effects.compensated.values())
    if shape.pivot is not None and failing > shape.pivot:
        assert effects.run.end == "Parked"
        assert not effects.compensated and not effects.undo_order()
        return
    took_effect = {s for s, st_ in effects.status.items() if st_ != "failed"}
    assert set(effects.compensated) == took_effect
    assert all(effects.compensated[s] == 1 for s in took_effect)
    nothing_done = failing == 0 and len(group) == 1 and outcomes[f"step:{group[0].id}"] == "error"
    assert effects.run.end == ("Failed" if nothing_done else "Compensated")
    # Groups are undone in reverse order; a group's undos all end before an earlier group's.
    index_of = {s.id: i for i, g in enumerate(shape.groups) for s in g}
    undone = [index_of[s] for s in effects.undo_order()]
    assert undone == sorted(undone, reverse=True)


@settings(deadline=None)
@given(shapes(), st.data())
def test_a_failed_compensation_is_retried_for_what_is_left_only(shape: Shape,
                                                                data: st.DataObject) -> None:
    undoable = shape.groups[: (shape.pivot + 1) if shape.pivot is not None else None]
    completed = asl_walk.walk(compile_forward(shape.steps, TARGETS), {})
    assert completed.end == "Completed"
    # Undo the completed run with one compensation failing for good.
    stuck = data.draw(st.sampled_from([s for g in undoable for s in g]))
    machine = compile_compensation(shape.steps, TARGETS)
    first = Effects.of(asl_walk.walk(machine, {f"undo:{stuck.id}": "error"}),
                       status={s.id: "succeeded" for s in shape.steps})
    assert first.run.end == "CompensationFailed"
    stuck_group = next(g for g in undoable if stuck in g)
    # Its siblings' compensations ran to their end; earlier groups were not touched.
    assert {s.id for s in stuck_group} - {stuck.id} <= set(first.compensated)
    earlier = undoable[: undoable.index(stuck_group)]
    assert not {s.id for g in earlier for s in g} & set(first.compensated)
    # Retrying the compensation undoes the rest, each step exactly once in all.
    done = Counter({s: n for s, n in first.compensated.items()})
    retry_run = asl_walk.walk(machine, {})
    again = [p["step_id"] for _, p, _ in retry_run.tasks
             if p.get("phase") == "compensation" and p["step_id"] not in done]
    assert retry_run.end == "Compensated"
    assert sorted(again + list(done)) == sorted(s.id for g in undoable for s in g)
    assert all(p.get("skip_undone") for _, p, _ in retry_run.tasks if p.get("step_id"))


@settings(deadline=None)
@given(shapes().filter(lambda s: s.pivot is not None and s.pivot < len(s.groups) - 1),
       st.data())
def test_a_parked_run_resumes_at_its_group_and_never_reruns_the_pivot(
        shape: Shape, data: st.DataObject) -> None:
    assert shape.pivot is not None
    parked_group = data.draw(st.sampled_from(shape.groups[shape.pivot + 1:]))
    parked = data.draw(st.sampled_from(parked_group))
    machine = compile_forward(shape.steps, TARGETS)
    assert asl_walk.walk(machine, {f"step:{parked.id}": "error"}).end == "Parked"
    resumed = asl_walk.walk(machine, {}, execution_input(
        "e-1", resume_at=resume_state(shape.steps, parked.id)))
    assert resumed.end == "Completed"
    ran = [p["step_id"] for _, p, _ in resumed.tasks if p.get("phase") == "action"]
    position = shape.groups.index(parked_group)
    assert ran == [s.id for g in shape.groups[position:] for s in g]


def _floor(groups: list[list[Step]]) -> int:
    """Happy-path states: a Task per step, 1 Parallel per group of more than one."""
    return sum(len(g) + (1 if len(g) > 1 else 0) for g in groups)


@settings(deadline=None)
@given(shapes())
def test_the_happy_path_costs_the_floor_plus_a_choice_per_group(shape: Shape) -> None:
    run = asl_walk.walk(compile_forward(shape.steps, TARGETS), {})
    choices = sum(1 for g in shape.groups if len(g) > 1)
    resume = 1 if shape.pivot is not None and shape.pivot < len(shape.groups) - 1 else 0
    # + the recorder and the Succeed state, as for a straight line.
    assert run.transitions == _floor(shape.groups) + choices + resume + 2


def test_a_group_of_one_compiles_exactly_as_a_plain_step() -> None:
    straight = [step("a", 1), step("b", 2), step("c", 3)]
    machine = compile_forward(straight, TARGETS)
    assert not any(s["Type"] in ("Parallel", "Choice") for s in machine["States"].values())
    assert machine["StartAt"] == "step:a"


def test_a_group_is_one_parallel_state_whose_branches_catch_their_own_failure() -> None:
    steps = [step("a", 1), step("b", 2), step("c", 2), step("d", 3)]
    machine = compile_forward(steps, TARGETS)
    group = machine["States"]["group:2"]
    assert group["Type"] == "Parallel"
    assert [b["StartAt"] for b in group["Branches"]] == ["step:b", "step:c"]
    for branch in group["Branches"]:
        task = branch["States"][branch["StartAt"]]
        assert task["End"] is True
        assert task["Catch"] == [{"ErrorEquals": ["States.ALL"], "ResultPath": "$",
                                  "Next": f"failed:{branch['StartAt'][5:]}"}]
        # A branch's output is a few bytes, whatever the step's error.
        assert task["ResultSelector"] == {"done": True}
    run = asl_walk.walk(machine, {"step:c": "error"})
    # b ran to its end before anything was undone, then b and a were compensated.
    assert [n for n, _, _ in run.tasks if n.startswith(("step:", "undo:"))] == [
        "step:a", "step:b", "step:c", "undo:b", "undo:c", "undo:a"]
    undo_c = next(p for n, p, _ in run.tasks if n == "undo:c")
    assert undo_c["error"] == {"Error": "Step.Failed", "step_id": "c",
                               "Cause": "step c failed; its record says why"}


def test_retriable_steps_retry_the_configured_attempts_with_capped_backoff() -> None:
    steps = [step("a", 1), step("pay", 2, StepKind.PIVOT), step("ship", 3, StepKind.RETRIABLE)]
    machine = compile_forward(steps, TARGETS, CompileOptions(retriable_max_attempts=7))
    ship = machine["States"]["step:ship"]
    retry = next(r for r in ship["Retry"] if r["ErrorEquals"] == ["States.ALL"])
    assert retry["MaxAttempts"] == 6 and retry["MaxDelaySeconds"] == 60
    assert ship["Parameters"]["max_attempts"] == 7  # what the runtime counts a round against
    assert retry["BackoffRate"] == 2.0
    assert ship["Catch"] == [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error",
                              "Next": "RecordParked"}]
    assert machine["StartAt"] == "Resume"
    assert "undo:ship" not in machine["States"]
    assert "undo:ship" not in compile_compensation(steps, TARGETS)["States"]


def test_a_machine_without_retriable_steps_has_no_resume_choice() -> None:
    steps = [step("a", 1), step("pay", 2, StepKind.PIVOT)]
    machine = compile_forward(steps, TARGETS)
    assert machine["StartAt"] == "step:a" and "Resume" not in machine["States"]
