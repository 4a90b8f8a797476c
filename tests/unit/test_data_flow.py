"""Data through a saga, with no server: input mapping (checked when a definition is stored,
resolved when a step runs), what a compensation is told, the result size cap, and the
participant contract's request, validated against the committed JSON Schema."""

from __future__ import annotations

import copy
import json
from datetime import timedelta
from typing import Any

import jsonschema
import pytest

from chalicelib.adapters.participants.lambdas import participant_request
from chalicelib.config import load_settings
from chalicelib.domain.contract import CONTRACT_SCHEMA_FILE, request_schema
from chalicelib.domain.lifecycle import TASK_TIMEOUT, Phase, StepStatus
from chalicelib.domain.mapping import MappingError, Scope, parse_reference, references, resolve
from chalicelib.domain.step_context import PermanentError, StepContext
from chalicelib.domain.validation import DefinitionInvalid, ValidationPolicy, check_definition
from chalicelib.roots.step_handler import record_end
from chalicelib.usecases.steps.recorder import OutcomeRecorder
from tests.support.step_world import World, build_world

POLICY = ValidationPolicy.from_settings(load_settings(environ={}).saga)
SCHEMA = json.loads(CONTRACT_SCHEMA_FILE.read_text())


def _step(step_id: str, order: int, action: str, **extra: Any) -> dict[str, Any]:
    return {"id": step_id, "name": f"Step {step_id}", "description": "a step of the trip",
            "order": order, "action": action, "compensation": f"undo_{action}",
            "max_retries": 0, "timeout": "30s", **extra}


TRIP = {"id": "trip", "name": "Trip", "description": "car, hotel, flight", "version": "1.0.0",
        "steps": [
            _step("car", 1, "book_car", input={"city": "$.input.city",
                                               "days": "$.input.nights"}),
            _step("hotel", 2, "book_hotel", input={
                "car": "$.results.car.booking_id", "first": "$.input.guests[0].name",
                "trip": "$.execution.id", "stars": 4, "note": "$$.not a reference"}),
            _step("flight", 3, "book_flight"),
        ],
        "output": {"car": "$.results.car.booking_id", "flight": "$.results.flight",
                   "city": "$.input.city"}}
TRIP_INPUT = {"city": "Lisbon", "nights": 3, "guests": [{"name": "Ana"}, {"name": "Rui"}]}


class Recorder:
    """Built-in actions that keep the context they got and answer as scripted."""

    def __init__(self) -> None:
        self.seen: dict[tuple[str, str], StepContext] = {}
        self.answers: dict[str, Any] = {"book_car": {"booking_id": "CAR-7"}}

    def resolve(self, name: str) -> Any:
        def run(ctx: StepContext) -> dict[str, Any]:
            self.seen[(ctx.step_id, ctx.phase)] = ctx
            answer = self.answers.get(name, {"done": name})
            if isinstance(answer, Exception):
                raise answer
            return dict(answer)

        return run


def _refused_flight(world: World, recorder: Recorder) -> None:
    """Car and hotel booked, the flight refused, hotel then car undone, as the machine does."""
    recorder.answers["book_flight"] = PermanentError("no seats left")
    world.deliver("car")
    world.deliver("hotel")
    with pytest.raises(PermanentError):
        world.deliver("flight")
    for step_id in ("hotel", "car"):
        world.deliver(step_id, Phase.COMPENSATION, error={"Error": "PermanentError"})


def _trip(**options: Any) -> tuple[World, Recorder]:
    world = build_world(TRIP, saga_input=TRIP_INPUT, **options)
    recorder = Recorder()
    world.runtime.resolve_action = recorder.resolve
    return world, recorder


# -- the mapping language -------------------------------------------------------------------------

def test_references_are_parsed_into_root_step_and_path() -> None:
    reference = parse_reference("$.results.car.rooms[2].id")
    assert (reference.root, reference.step_id, reference.path) == ("results", "car",
                                                                   ("rooms", 2, "id"))
    assert parse_reference("$.input").path == ()
    for bad in ("$.inputs.x", "$.results", "$.execution.started", "$.input..x", "input.x",
                "$.input.a b"):
        with pytest.raises(MappingError):
            parse_reference(bad)


def test_a_mapping_resolves_values_nested_at_any_depth_and_keeps_literals() -> None:
    scope = Scope("ex-1", {"a": {"b": [10, 20]}}, {"car": {"id": "C"}})
    mapping = {"x": "$.input.a.b[1]", "y": ["$.results.car.id", 3, None], "z": {"n": True},
               "who": "$.execution.id", "raw": "$$.input.a", "plain": "text", "all": "$.input"}
    assert resolve(mapping, scope) == {"x": 20, "y": ["C", 3, None], "z": {"n": True},
                                       "who": "ex-1", "raw": "$.input.a", "plain": "text",
                                       "all": {"a": {"b": [10, 20]}}}
    assert sorted(references(mapping)) == [("all", "$.input"), ("who", "$.execution.id"),
                                           ("x", "$.input.a.b[1]"), ("y[0]", "$.results.car.id")]


@pytest.mark.parametrize(("mapping", "says"), [
    ({"v": "$.input.missing"}, "'missing' is absent"),
    ({"v": "$.input.a.b[5]"}, "'a.b.5' is absent"),
    ({"v": "$.results.hotel.id"}, "step 'hotel' has no result"),
    ({"v": "$.results.car.nope"}, "'nope' is absent"),
])
def test_an_absent_value_is_an_error_naming_the_reference(mapping: dict[str, Any],
                                                          says: str) -> None:
    with pytest.raises(MappingError, match=says) as raised:
        resolve(mapping, Scope("ex-1", {"a": {"b": [1]}}, {"car": {"id": "C"}}))
    assert mapping["v"] in str(raised.value)


# -- checked when a definition is stored ----------------------------------------------------------

@pytest.mark.parametrize(("step_input", "message"), [
    ({"c": "$.results.flight.ref"}, "does not run before this one"),
    ({"c": "$.results.hotel.ref"}, "cannot use its own result"),
    ({"c": "$.results.boat.ref"}, "no active step 'boat'"),
    ({"deep": {"list": ["ok", "$.result.car"]}}, "a reference starts with $.input"),
    ({"c": "$.input.a b"}, "is not a field name"),
])
def test_a_bad_reference_is_refused_with_its_field_path(step_input: dict[str, Any],
                                                        message: str) -> None:
    definition = copy.deepcopy(TRIP)
    definition["steps"][1]["input"] = step_input
    with pytest.raises(DefinitionInvalid) as invalid:
        check_definition(definition, POLICY)
    [violation] = invalid.value.violations
    where, _ = next(iter(references(step_input)))
    assert violation.field == f"steps[1].input.{where}"
    assert violation.rule == "reference" and message in violation.message


def test_the_trip_definition_is_accepted() -> None:
    assert check_definition(copy.deepcopy(TRIP), POLICY).steps[1].input is not None


# -- resolved when a step runs ---------------------------------------------------------------------

def test_a_step_gets_its_mapped_input_and_a_step_without_one_the_whole_input() -> None:
    world, recorder = _trip()
    for step_id in ("car", "hotel", "flight"):
        world.deliver(step_id)
    assert recorder.seen[("car", "action")].saga_input == {"city": "Lisbon", "days": 3}
    assert recorder.seen[("hotel", "action")].saga_input == {
        "car": "CAR-7", "first": "Ana", "trip": "e1", "stars": 4, "note": "$.not a reference"}
    assert recorder.seen[("flight", "action")].saga_input == TRIP_INPUT
    assert world.execution().status.value == "RUNNING"


def test_a_reference_absent_at_run_time_fails_the_step_for_good_saying_which() -> None:
    world, recorder = _trip()
    recorder.answers["book_car"] = {"reference": "no booking_id here"}
    world.deliver("car")
    with pytest.raises(PermanentError, match=r"\$\.results\.car\.booking_id.*'booking_id' is "
                                              "absent"):
        world.deliver("hotel")
    assert ("hotel", "action") not in recorder.seen
    assert world.step("hotel").status is StepStatus.FAILED
    assert "booking_id" in (world.execution().error.message or "")


def test_a_result_over_the_limit_fails_its_step_for_good() -> None:
    world, recorder = _trip(max_result_bytes=1024)
    recorder.answers["book_car"] = {"booking_id": "CAR-7", "blob": "x" * 2000}
    with pytest.raises(PermanentError, match=r"result is 20\d\d bytes; the limit is 1024 "
                                             r"\(config saga.max_result_bytes\)"):
        world.deliver("car")
    assert world.step("car").status is StepStatus.FAILED
    assert world.step("car").result is None


def test_the_result_limit_is_a_config_key() -> None:
    assert load_settings(environ={}).saga.max_result_bytes == 64 * 1024
    changed = load_settings(environ={"SAGA__SAGA__MAX_RESULT_BYTES": "2048"})
    assert changed.saga.max_result_bytes == 2048


# -- what a compensation is told -------------------------------------------------------------------

def test_a_refused_flight_tells_each_compensation_its_own_result_and_the_reason() -> None:
    world, recorder = _trip()
    recorder.answers["book_hotel"] = {"booking_id": "HOTEL-3"}
    _refused_flight(world, recorder)
    hotel = recorder.seen[("hotel", "compensation")]
    car = recorder.seen[("car", "compensation")]
    assert hotel.action_result == {"booking_id": "HOTEL-3"}
    assert car.action_result == {"booking_id": "CAR-7"}
    for ctx in (hotel, car):
        assert ctx.action_error is None
        assert ctx.reason == {"step_id": "flight", "type": "PermanentError",
                              "message": "no seats left"}
    # A compensation gets its own step's input, mapped as for the action.
    assert car.saga_input == {"city": "Lisbon", "days": 3}
    assert hotel.saga_input["car"] == "CAR-7"


def test_a_timed_out_step_is_compensated_with_no_result_and_its_timeout_as_the_error() -> None:
    world, recorder = _trip()
    world.deliver("car")
    # The hotel's Task timed out (its Lambda never answered): the machine undoes it first.
    world.deliver("hotel", Phase.COMPENSATION,
                  error={"Error": TASK_TIMEOUT, "Cause": "Task timed out after 30 seconds"})
    world.deliver("car", Phase.COMPENSATION, error={"Error": TASK_TIMEOUT})
    hotel = recorder.seen[("hotel", "compensation")]
    assert hotel.action_result is None
    assert hotel.action_error == {"type": TASK_TIMEOUT,
                                  "message": "Task timed out after 30 seconds"}
    assert hotel.reason is not None and hotel.reason["step_id"] == "hotel"
    car = recorder.seen[("car", "compensation")]
    assert car.action_result == {"booking_id": "CAR-7"} and car.action_error is None


# -- the saga's output --------------------------------------------------------------------------

def test_a_completed_execution_carries_its_mapped_output_in_the_record_and_the_event() -> None:
    world, recorder = _trip()
    recorder.answers["book_flight"] = {"ticket": "TAP-1", "seat": "3A"}
    for step_id in ("car", "hotel", "flight"):
        world.deliver(step_id)
    recorder_lambda = OutcomeRecorder(world.ledger, world.definitions, clock=world.clock.now)
    assert record_end(recorder_lambda, {"execution_id": "e1", "outcome": "COMPLETED"}) == {
        "status": "COMPLETED"}
    expected = {"car": "CAR-7", "flight": {"ticket": "TAP-1", "seat": "3A"}, "city": "Lisbon"}
    assert world.execution().output == expected
    [completed] = world.events_of("saga.completed")
    assert completed["data"]["output"] == expected


def test_an_output_that_cannot_be_resolved_leaves_the_execution_completed_without_one() -> None:
    recorder = Recorder()
    recorder.answers["book_car"] = {"no_booking": True}  # the output's car field is absent
    definition = copy.deepcopy(TRIP)
    definition["steps"][1].pop("input")  # so the hotel still runs
    world = build_world(definition, saga_input=TRIP_INPUT)
    world.runtime.resolve_action = recorder.resolve
    for step_id in ("car", "hotel", "flight"):
        world.deliver(step_id)
    record_end(OutcomeRecorder(world.ledger, world.definitions),
               {"execution_id": "e1", "outcome": "COMPLETED"})
    assert world.execution().status.value == "COMPLETED"
    assert world.execution().output is None
    assert world.events_of("saga.completed")[0]["data"]["output"] is None


def test_the_output_may_name_any_active_step_but_no_unknown_one() -> None:
    definition = copy.deepcopy(TRIP)
    definition["output"] = {"x": "$.results.ship.id"}
    with pytest.raises(DefinitionInvalid) as invalid:
        check_definition(definition, POLICY)
    assert [(v.field, v.rule) for v in invalid.value.violations] == [("output.x", "reference")]


# -- the contract's request ------------------------------------------------------------------------

def test_the_committed_schema_is_the_models() -> None:
    assert request_schema() == SCHEMA
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


def test_every_request_of_a_run_and_its_undo_fits_the_schema() -> None:
    world, recorder = _trip()
    _refused_flight(world, recorder)
    validator = jsonschema.Draft202012Validator(SCHEMA)
    requests = {key: json.loads(participant_request(ctx).model_dump_json())
                for key, ctx in recorder.seen.items()}
    assert len(requests) == 5
    for request in requests.values():
        validator.validate(request)
    hotel_undo = requests[("hotel", "compensation")]
    assert hotel_undo["contract"] == "saga-participant/1"
    assert hotel_undo["idempotency_key"] == "e1:hotel:compensation"
    assert hotel_undo["results"] == {"car": {"booking_id": "CAR-7"}}
    assert hotel_undo["action_result"] == {"done": "book_hotel"}
    assert hotel_undo["reason"]["step_id"] == "flight"
    car_action = requests[("car", "action")]
    assert car_action["results"] == {} and car_action["action_result"] is None
    assert car_action["reason"] is None and car_action["saga_version"] == "1.0.0"
    # The deadline is when the Task times out: the delivery's time plus the step's timeout.
    ctx = recorder.seen[("car", "action")]
    assert ctx.deadline == world.clock.wall + timedelta(seconds=30)


def test_the_trip_booking_examples_saga_is_valid_as_shipped() -> None:
    from chalicelib.demo import BUILTIN_ACTIONS
    from infra.stack.paths import PROJECT_ROOT

    shipped = json.loads((PROJECT_ROOT / "examples" / "trip-booking" / "saga.json").read_text())
    policy = ValidationPolicy.from_settings(load_settings(environ={}).saga,
                                            actions=frozenset(BUILTIN_ACTIONS))
    saga = check_definition(shipped, policy)
    assert saga.output is not None
    assert saga.steps[1].input == {"city": "$.input.city", "nights": "$.input.nights",
                                   "car": "$.results.car.booking_id",
                                   "guest": "$.input.guests[0]"}
