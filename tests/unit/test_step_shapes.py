"""The step runtime, recorder and service for parallel groups, pivots and retriable steps,
against the in-memory ledger: a failed group sibling starts no new attempt, an undo skips a
step that failed for good, a retriable step fails for good after its round of attempts and
parks the execution, and a retry forward gives it a new round."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.adapters.stepfunctions.machine_input import resume_state
from chalicelib.config import load_settings
from chalicelib.domain import event_types
from chalicelib.domain.errors import Conflict
from chalicelib.domain.lifecycle import ExecutionStatus, Phase, StepKind, StepStatus
from chalicelib.domain.requests import ResolveRequest
from chalicelib.domain.step_context import PermanentError, StepContext
from chalicelib.roots.step_handler import record_end
from chalicelib.roots.step_wiring import StepContainer
from chalicelib.testing import InMemoryReadModel, ScriptedEngine
from chalicelib.usecases.executions import ExecutionPolicy, ExecutionService
from chalicelib.usecases.ports import Actor, RunKind
from chalicelib.usecases.steps.failures import StepAborted
from chalicelib.usecases.steps.recorder import OutcomeRecorder
from tests.support.step_world import PARTICIPANT, World, build_world


def _step(step_id: str, order: int, kind: str = "compensatable", **extra: Any) -> dict[str, Any]:
    step: dict[str, Any] = {"id": step_id, "order": order, "action": f"do_{step_id}",
                            "kind": kind, "timeout": "10s", **extra}
    if kind != "retriable":
        step.update(compensation=f"undo_{step_id}", max_retries=extra.get("max_retries", 2))
    return step


FULFILMENT = {
    "id": "fulfil", "name": "Order fulfilment", "description": "an order, end to end",
    "version": "1.0.0",
    "steps": [_step("validate", 1), _step("reserve", 2), _step("authorize", 2),
              _step("capture", 3, "pivot"), _step("ship", 4, "retriable"),
              _step("notify", 4, "retriable")],
}


def _fails(ctx: StepContext) -> None:
    raise RuntimeError("downstream is down")


def _declined(ctx: StepContext) -> None:
    raise PermanentError("card declined")


def _world(**options: Any) -> World:
    return build_world(FULFILMENT, **options)


def test_the_execution_records_each_steps_group_and_kind() -> None:
    world = _world()
    shape = {(s.step_id, s.group, s.kind) for s in world.execution().steps}
    assert shape == {("validate", 1, StepKind.COMPENSATABLE),
                     ("reserve", 2, StepKind.COMPENSATABLE),
                     ("authorize", 2, StepKind.COMPENSATABLE), ("capture", 3, StepKind.PIVOT),
                     ("ship", 4, StepKind.RETRIABLE), ("notify", 4, StepKind.RETRIABLE)}
    started = world.events_of(event_types.EXECUTION_STARTED)[0]["data"]
    assert started["shape"][1] == {"step_id": "reserve", "group": 2, "kind": "compensatable"}
    world.deliver("validate")
    record = world.events_of(event_types.STEP_SUCCEEDED)[0]["data"]["step"]
    assert (record["group"], record["kind"]) == (1, "compensatable")


def test_once_a_sibling_failed_for_good_no_new_attempt_starts() -> None:
    world = _world()
    world.deliver("validate")
    world.actions.script["do_authorize"] = _fails
    with pytest.raises(RuntimeError):
        world.deliver("authorize")  # attempt 1 of 3: it will be retried
    world.actions.script["do_reserve"] = _declined
    with pytest.raises(PermanentError):
        world.deliver("reserve")  # failed for good
    with pytest.raises(StepAborted, match="starts no new attempt: another step of its "
                                          "execution failed for good"):
        world.deliver("authorize")  # its retry
    assert world.actions.ran("do_authorize") == 1
    assert world.step("authorize").status is StepStatus.RUNNING
    # The group's undo: the step that failed for good did nothing, so it is skipped; the one
    # left unfinished is compensated (its attempt's outcome may be unknown).
    assert world.deliver("reserve", Phase.COMPENSATION)["skipped"] is True
    world.deliver("authorize", Phase.COMPENSATION)
    assert world.step("authorize").status is StepStatus.COMPENSATED
    assert world.actions.ran("undo_reserve") == 0


def test_a_participant_answer_in_flight_when_a_sibling_fails_is_still_recorded() -> None:
    definition = {**FULFILMENT, "steps": [_step("validate", 1),
                                          _step("reserve", 2, action=PARTICIPANT),
                                          _step("authorize", 2)]}
    world = build_world(definition)
    world.deliver("validate")
    world.actions.script["do_authorize"] = _declined

    def sibling_fails_meanwhile(ctx: StepContext) -> None:
        with pytest.raises(PermanentError):
            world.deliver("authorize")

    world.actions.script[PARTICIPANT] = sibling_fails_meanwhile
    world.deliver("reserve")
    # Its work was done: recorded, so the group's undo compensates it.
    assert world.step("reserve").status is StepStatus.SUCCEEDED


def test_a_retriable_step_fails_for_good_after_the_configured_attempts() -> None:
    world = _world(retriable_max_attempts=3)
    for step_id in ("validate", "reserve", "authorize", "capture", "notify"):
        world.deliver(step_id)
    world.actions.script["do_ship"] = _fails
    for attempt in (1, 2):
        with pytest.raises(RuntimeError):
            world.deliver("ship")
        assert world.step("ship").status is StepStatus.RUNNING, attempt
    with pytest.raises(RuntimeError):
        world.deliver("ship")
    assert world.step("ship").status is StepStatus.FAILED
    assert world.execution().error is not None
    assert world.execution().error.step_id == "ship"


def _parked(world: World) -> OutcomeRecorder:
    for step_id in ("validate", "reserve", "authorize", "capture", "notify"):
        world.deliver(step_id)
    world.actions.script["do_ship"] = _declined
    with pytest.raises(PermanentError):
        world.deliver("ship")
    recorder = OutcomeRecorder(world.ledger, world.definitions, clock=world.clock.now)
    record_end(recorder, {"execution_id": "e1", "outcome": "PARKED", "error": None})
    return recorder


def test_a_retriable_step_out_of_attempts_parks_the_execution_with_its_reason() -> None:
    world = _world()
    _parked(world)
    execution = world.execution()
    assert execution.status is ExecutionStatus.PARKED
    assert execution.error is not None and execution.error.step_id == "ship"
    parked = world.events_of(event_types.SAGA_PARKED)[0]["data"]
    assert parked["status"] == "PARKED"
    assert parked["execution_error"]["message"] == "card declined"
    # Nothing was undone.
    assert not [c for c in world.actions.calls if c[1] == Phase.COMPENSATION]


def _service(world: World, engine: ScriptedEngine) -> ExecutionService:
    return ExecutionService(world.definitions, world.store, engine,
                            ExecutionPolicy(faults_enabled=True), InMemoryReadModel())


def test_retry_forward_starts_a_new_round_at_the_parked_group() -> None:
    world = _world(retriable_max_attempts=2)
    _parked(world)
    engine = ScriptedEngine()
    moved = _service(world, engine).retry_forward("e1", Actor("ops"))
    assert moved.status is ExecutionStatus.RUNNING and moved.error is None
    started = engine.starts[-1]
    assert (started.kind, started.at_step) == (RunKind.RESUME, "ship")
    assert started.run_name.startswith("e1-f")
    # On Step Functions the run enters the forward machine at the parked group's state.
    steps = world.definitions.get_revision("fulfil", 1).active_steps()  # type: ignore[union-attr]
    assert resume_state(steps, "ship") == "group:4"
    ship = world.step("ship")
    assert (ship.status, ship.error, ship.action_attempts) == (StepStatus.PENDING, None, 1)
    assert world.step("notify").status is StepStatus.SUCCEEDED  # it stays done
    resumed = world.events_of(event_types.SAGA_RESUMED)[0]["data"]
    assert resumed["by"] == "ops" and resumed["execution_error"] is None
    # A new round of 2 attempts: the first fails and is retried, numbered on from before.
    world.actions.script["do_ship"] = _fails
    with pytest.raises(RuntimeError):
        world.deliver("ship")
    assert world.step("ship").status is StepStatus.RUNNING
    assert world.step("ship").attempts[-1].attempt == 2
    del world.actions.script["do_ship"]
    world.deliver("ship")
    assert world.step("ship").status is StepStatus.SUCCEEDED


def test_only_a_parked_execution_is_retried_forward_and_a_pivot_saga_is_never_compensated(
) -> None:
    world = _world()
    service = _service(world, ScriptedEngine())
    with pytest.raises(Conflict, match="only a PARKED execution can be retried forward"):
        service.retry_forward("e1", Actor("ops"))
    world.set_status(ExecutionStatus.COMPLETED)
    with pytest.raises(Conflict, match="passed its pivot step 'capture'"):
        service.compensate("fulfil", "e1", Actor("ops"))


def test_a_parked_execution_can_be_resolved() -> None:
    world = _world()
    _parked(world)
    resolved = _service(world, ScriptedEngine()).resolve(
        "e1", ResolveRequest(reason="shipped by hand"), Actor("ops"))
    assert resolved.status is ExecutionStatus.PARKED
    assert resolved.resolution == "shipped by hand"


def test_a_group_whose_steps_all_failed_ends_failed_not_compensated() -> None:
    world = build_world({**FULFILMENT, "steps": [_step("a", 1), _step("b", 1)]})
    # Both attempts ran side by side and failed for good.
    world.set_status(ExecutionStatus.RUNNING, {"a": StepStatus.FAILED, "b": StepStatus.FAILED})
    for step_id in ("a", "b"):
        assert world.deliver(step_id, Phase.COMPENSATION)["skipped"] is True
    recorder = OutcomeRecorder(world.ledger, world.definitions, clock=world.clock.now)
    assert record_end(recorder, {"execution_id": "e1", "outcome": "COMPENSATED"}) == {
        "status": "FAILED"}
    assert world.execution().status is ExecutionStatus.FAILED


def test_parallel_compensations_that_fail_are_all_listed() -> None:
    world = build_world({**FULFILMENT, "steps": [_step("a", 1), _step("b", 1), _step("c", 2)]})
    for step_id in ("a", "b"):
        world.deliver(step_id)
    world.actions.script["do_c"] = _declined
    with pytest.raises(PermanentError):
        world.deliver("c")
    world.actions.script["undo_a"] = world.actions.script["undo_b"] = _declined
    for step_id in ("a", "b"):
        with pytest.raises(PermanentError):
            world.deliver(step_id, Phase.COMPENSATION)
    recorder = OutcomeRecorder(world.ledger, world.definitions, clock=world.clock.now)
    record_end(recorder, {"execution_id": "e1", "outcome": "COMPENSATION_FAILED"})
    error = world.execution().error
    assert world.execution().status is ExecutionStatus.COMPENSATION_FAILED
    assert error is not None and error.failed_steps == ["a", "b"]
    assert world.events_of(event_types.COMPENSATION_FAILED)[0]["data"]["execution_error"][
        "failed_steps"] == ["a", "b"]


def test_retriable_max_attempts_is_a_config_key_the_runtime_and_compiler_use() -> None:
    assert load_settings(environ={}).saga.retriable_max_attempts == 5
    settings = load_settings(environ={"SAGA__SAGA__RETRIABLE_MAX_ATTEMPTS": "9"})
    assert StepContainer(settings).attempt_runner.retriable_max_attempts == 9
    from chalicelib.roots.container import Container

    assert Container(settings).engine._options.retriable_max_attempts == 9


def test_the_machine_says_how_many_attempts_a_round_has() -> None:
    """A machine compiled before saga.retriable_max_attempts changed still decides: the step's
    Task carries its attempts, and the runtime counts against them."""
    world = _world(retriable_max_attempts=5)
    for step_id in ("validate", "reserve", "authorize", "capture", "notify"):
        world.deliver(step_id)
    world.actions.script["do_ship"] = _fails
    with pytest.raises(RuntimeError):
        world.deliver("ship", max_attempts=2)
    assert world.step("ship").status is StepStatus.RUNNING
    with pytest.raises(RuntimeError):
        world.deliver("ship", max_attempts=2)
    assert world.step("ship").status is StepStatus.FAILED
