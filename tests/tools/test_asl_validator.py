"""Every kind of machine the compiler writes passes asl-validator (npm, run on node).

The sagas are the compiler's unit-test cases (tests/unit/test_compiler*.py), drawn the same way,
callbacks, timers, conditions and fan-outs included.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.adapters.stepfunctions.compiler import (
    CompileOptions,
    Deadline,
    compile_compensation,
    compile_forward,
)
from tests.support.asl_validator import AslValidator
from tests.unit import test_compiler as flat
from tests.unit import test_compiler_branches as branching
from tests.unit import test_compiler_groups as grouped
from tests.unit import test_compiler_waits as waiting

UNDO_MACHINE = ("arn:aws:states:us-east-1:000000000000:stateMachine:"
                "test-saga-0123456789abcdef-r1-undo")


@pytest.fixture(scope="module")
def asl() -> AslValidator:
    return AslValidator.installed()


def test_the_seed_machines_pass_asl_validator(asl: AslValidator) -> None:
    assert asl.validate([compile_forward(flat.STEPS, flat.TARGETS),
                         compile_compensation(flat.STEPS, flat.TARGETS)]) == ["", ""]


def test_asl_validator_does_reject_a_broken_machine(asl: AslValidator) -> None:
    broken = compile_forward(flat.STEPS, flat.TARGETS)
    broken["States"]["step:validate-payment"]["Next"] = "NoSuchState"
    assert asl.validate([broken])[0] != ""


def test_the_smallest_and_largest_sagas_pass_asl_validator(asl: AslValidator) -> None:
    machines = []
    for size in (1, 50):
        spec = [{"retries": 10, "timeout": "1h", "active": True}] * size
        machines += [compile_forward(flat._steps(spec), flat.TARGETS),
                     compile_compensation(flat._steps(spec), flat.TARGETS)]
    assert asl.validate(machines) == [""] * 4


# asl-validator takes ~0.1 s for a 50-step machine, so the examples are validated in batches.
@settings(max_examples=2, deadline=None)
@given(st.lists(flat._saga, min_size=12, max_size=12))
def test_generated_sagas_of_1_to_50_steps_pass_asl_validator(
    asl: AslValidator, sagas: list[list[dict[str, Any]]]
) -> None:
    machines = []
    for spec in sagas:
        machines += [compile_forward(flat._steps(spec), flat.TARGETS),
                     compile_compensation(flat._steps(spec), flat.TARGETS)]
    assert asl.validate(machines) == [""] * len(machines)


def test_option_machines_pass_asl_validator(asl: AslValidator) -> None:
    steps = [step.model_copy(update={"max_retries": 0}) for step in flat.STEPS]
    machines = [machine
                for options in (CompileOptions(retry_enabled=False),
                                CompileOptions(compensation_enabled=False))
                for machine in (compile_forward(steps, flat.TARGETS, options),
                                compile_forward(flat.STEPS, flat.TARGETS, options),
                                compile_compensation(flat.STEPS, flat.TARGETS, options))]
    assert asl.validate(machines) == [""] * len(machines)


@settings(max_examples=3, deadline=None)
@given(st.lists(grouped.shapes(), min_size=10, max_size=10))
def test_generated_group_machines_pass_asl_validator(asl: AslValidator,
                                                     generated: list[grouped.Shape]) -> None:
    machines: list[dict[str, Any]] = []
    for shape in generated:
        machines += [compile_forward(shape.steps, grouped.TARGETS),
                     compile_compensation(shape.steps, grouped.TARGETS),
                     compile_forward(shape.steps, grouped.TARGETS,
                                     CompileOptions(compensation_enabled=False)),
                     # On Express: failures handed to the Standard compensation machine.
                     compile_forward(shape.steps, grouped.TARGETS, handoff_to=UNDO_MACHINE)]
    assert asl.validate(machines) == [""] * len(machines)


@settings(max_examples=2, deadline=None)
@given(st.lists(waiting.sagas(), min_size=12, max_size=12))
def test_machines_with_callbacks_and_timers_pass_asl_validator(
        asl: AslValidator, sagas: list[waiting.Saga]) -> None:
    machines = [machine for saga in sagas for machine in waiting.machines(saga)]
    # With a saga deadline: the forward path beside the deadline's Wait, as the Standard and
    # the Express forward machines are compiled.
    deadline = Deadline(30, UNDO_MACHINE)
    machines += [compile_forward(saga.steps, waiting.TARGETS, deadline=deadline)
                 for saga in sagas]
    machines += [compile_forward(saga.steps, waiting.TARGETS, deadline=deadline,
                                 handoff_to=UNDO_MACHINE) for saga in sagas[:3]]
    assert asl.validate(machines) == [""] * len(machines)


# asl-validator takes ~0.5 s for one of these machines.
@settings(max_examples=2, deadline=None)
@given(st.lists(branching.sagas(), min_size=8, max_size=8))
def test_machines_with_conditions_and_fan_outs_pass_asl_validator(
        asl: AslValidator, sagas: list[branching.Saga]) -> None:
    machines = [machine for saga in sagas for machine in branching.machines(saga)]
    machines += [compile_forward(saga.steps, branching.TARGETS,
                                 CompileOptions(compensation_enabled=False, retry_enabled=False))
                 for saga in sagas]
    assert asl.validate(machines) == [""] * len(machines)


def test_every_fan_out_and_condition_shape_passes_asl_validator(asl: AslValidator) -> None:
    """A fan-out first, last, alone, after a conditional group and before a pivot; a
    conditional callback, approval and timer; forward and compensation machines."""
    shapes = [["fan-out"], ["group", "fan-out"], ["fan-out", "group"],
              ["fan-out", "fan-out", "pivot", "group"], ["callback", "approval", "wait"],
              ["group", "group", "fan-out", "callback", "pivot", "wait"]]
    machines = []
    for shape in shapes:
        saga = branching.saga_of(shape, conditional=True)
        machines += branching.machines(saga)
        machines.append(compile_forward(saga.steps, branching.TARGETS, handoff_to=UNDO_MACHINE))
        assert any(s["Type"] == "Map" for m in branching.machines(saga)
                   for s in m["States"].values()) == ("fan-out" in shape)
    assert asl.validate(machines) == [""] * len(machines)


def test_machines_with_child_sagas_pass_asl_validator(asl: AslValidator) -> None:
    """A child step first, between others, conditional, as the retriable step after a pivot,
    and under a saga deadline; forward and compensation machines."""
    from tests.unit import test_children as children

    shapes = [
        [children._child("pay", 1, "payment")],
        [children._step("reserve", 1), children._child("pay", 2, "payment"),
         children._step("ship", 3)],
        [children._child("pay", 1, "payment", when="$.input.total > 0"),
         children._step("ship", 2)],
        [{**children._step("reserve", 1), "kind": "pivot"},
         {**children._child("pay", 2, "payment"), "kind": "retriable"}]]
    machines = []
    for shape in shapes:
        steps = children._steps(*shape)
        machines += [compile_forward(steps, grouped.TARGETS),
                     compile_compensation(steps, grouped.TARGETS),
                     compile_forward(steps, grouped.TARGETS,
                                     deadline=Deadline(30, UNDO_MACHINE))]
    assert asl.validate(machines) == [""] * len(machines)
