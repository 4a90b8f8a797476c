"""A decision stays made (row 7): resolving an execution is a decision taken once, under its
lock, and a resolved execution refuses every further operator decision; and a failed output
mapping is recorded, not silent (row 11). Against the in-memory fakes, which answer as the
MySQL store does."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from chalicelib.domain import event_types
from chalicelib.domain.errors import Conflict, SagaError
from chalicelib.domain.executions import Execution, OutputError
from chalicelib.domain.lifecycle import (
    RESOLVABLE,
    ExecutionStatus,
    StepStatus,
    accepts_decision,
    can_resolve,
    can_transition,
)
from chalicelib.domain.requests import ResolveRequest
from chalicelib.domain.step_context import PermanentError, StepContext
from chalicelib.http.http_errors import http_error, http_status
from chalicelib.roots.step_handler import record_end
from chalicelib.testing import InMemoryReadModel, ScriptedEngine
from chalicelib.usecases.executions import AlreadyResolved, ExecutionPolicy, ExecutionService
from chalicelib.usecases.ports import Actor
from chalicelib.usecases.steps.recorder import OutcomeRecorder
from infra.cli_service import _timeline
from tests.support.step_world import World, build_world

S = ExecutionStatus
# Decisions taken on a resolved execution, or on one another decision moved on.
DECISIONS = {event_types.SAGA_RESOLVED, event_types.SAGA_RESUMED, event_types.COMPENSATION_STARTED}


def _step(step_id: str, order: int, kind: str = "compensatable") -> dict[str, Any]:
    step: dict[str, Any] = {"id": step_id, "order": order, "action": f"do_{step_id}",
                            "kind": kind, "timeout": "10s"}
    if kind != "retriable":
        step.update(compensation=f"undo_{step_id}", max_retries=0)
    return step


FULFILMENT = {"id": "fulfil", "name": "Fulfil", "description": "pivot, then retriable",
              "version": "1.0.0",
              "steps": [_step("create", 1), _step("capture", 2, "pivot"),
                        _step("ship", 3, "retriable")]}


def _declined(ctx: StepContext) -> None:
    raise PermanentError("carrier refused")


def _parked() -> World:
    world = build_world(FULFILMENT)
    world.deliver("create")
    world.deliver("capture")
    world.actions.script["do_ship"] = _declined
    with pytest.raises(PermanentError):
        world.deliver("ship")
    record_end(OutcomeRecorder(world.ledger, world.definitions, clock=world.clock.now),
               {"execution_id": "e1", "outcome": "PARKED", "error": None})
    assert world.execution().status is S.PARKED
    return world


def _compensation_failed() -> World:
    world = build_world(FULFILMENT)
    world.set_status(S.COMPENSATION_FAILED, {"create": StepStatus.COMPENSATION_FAILED})
    return world


def _service(world: World) -> tuple[ExecutionService, ScriptedEngine]:
    engine = ScriptedEngine()
    return ExecutionService(world.definitions, world.store, engine,
                            ExecutionPolicy(faults_enabled=True), InMemoryReadModel()), \
        engine


def _decisions(world: World) -> list[dict[str, Any]]:
    """The decision events after the execution's end was recorded."""
    kinds = [e["type"] for e in world.store.events]
    ended = max((i for i, kind in enumerate(kinds)
                 if kind in (event_types.SAGA_PARKED, event_types.COMPENSATION_FAILED)), default=-1)
    return [e for e in world.store.events[ended + 1:] if e["type"] in DECISIONS]


# -- the rule ----------------------------------------------------------------------------------

@pytest.mark.parametrize("status", list(S))
def test_only_an_undecided_failed_end_can_be_resolved(status: S) -> None:
    assert can_resolve(status, None) is (status in RESOLVABLE)
    assert not can_resolve(status, "ops")


def test_an_operator_never_moves_a_resolved_execution_the_orchestration_rule_is_unchanged(
) -> None:
    assert accepts_decision(None) and not accepts_decision("ops")
    assert can_transition(S.PARKED, S.RUNNING, by_operator=True)
    assert not can_transition(S.PARKED, S.RUNNING, by_operator=True, resolved_by="ops")
    assert not can_transition(S.COMPENSATION_FAILED, S.COMPENSATING, by_operator=True,
                              resolved_by="ops")
    assert can_transition(S.RUNNING, S.COMPLETED, resolved_by="ops")  # not an operator's


# -- the store ----------------------------------------------------------------------------------

def test_the_store_takes_the_first_resolve_and_refuses_every_later_decision() -> None:
    world = _parked()
    first = world.store.resolve("e1", "ana", "shipped by hand")
    assert first is not None and (first.resolved_by, first.resolution) == (
        "ana", "shipped by hand")
    assert world.store.resolve("e1", "bob", "refunded") is None
    assert world.store.resume("e1", ["ship"], "bob") is None
    assert world.store.transition("e1", {S.PARKED}, S.RUNNING, event_types.SAGA_RESUMED, {},
                                  by_operator=True) is None
    after = world.execution()
    assert (after.status, after.resolved_by, after.resolution) == (
        S.PARKED, "ana", "shipped by hand")
    assert after.updated_at == first.updated_at  # the decision was its last change
    [resolved] = _decisions(world)
    assert resolved["data"] == {"saga_id": "fulfil", "by": "ana", "reason": "shipped by hand"}


def test_the_store_refuses_to_resolve_what_is_not_a_failed_end() -> None:
    world = build_world(FULFILMENT)
    assert world.store.resolve("e1", "ana", "too early") is None  # RUNNING
    assert world.store.resolve("ghost", "ana", "no such") is None


# -- the service ---------------------------------------------------------------------------------

def test_a_second_resolve_is_refused_naming_who_resolved_it_and_when() -> None:
    world = _parked()
    service, _ = _service(world)
    resolved = service.resolve("e1", ResolveRequest(reason="shipped by hand"), Actor("ana"))
    with pytest.raises(AlreadyResolved) as refused:
        service.resolve("e1", ResolveRequest(reason="refunded instead"), Actor("bob"))
    error = refused.value
    assert http_error(error.kind) == (409, "already_resolved")
    at = resolved.model_dump(mode="json")["updated_at"]  # as the API writes times
    assert f"resolved by ana at {at}" in error.message
    assert error.details == {"execution_id": "e1", "resolved_by": "ana", "resolved_at": at,
                             "resolution": "shipped by hand"}
    assert world.execution().resolution == "shipped by hand"  # the first reason stands
    assert len(_decisions(world)) == 1


def test_a_resolved_parked_execution_is_not_retried_forward() -> None:
    world = _parked()
    service, engine = _service(world)
    service.resolve("e1", ResolveRequest(reason="shipped by hand"), Actor("ana"))
    with pytest.raises(AlreadyResolved, match="resolved by ana"):
        service.retry_forward("e1", Actor("bob"))
    assert engine.starts == []
    assert world.execution().status is S.PARKED
    assert world.step("ship").status is StepStatus.FAILED
    assert [e["type"] for e in _decisions(world)] == [event_types.SAGA_RESOLVED]


def test_a_resolved_failed_compensation_is_not_retried() -> None:
    world = _compensation_failed()
    service, engine = _service(world)
    service.resolve("e1", ResolveRequest(reason="refunded by hand"), Actor("ana"))
    with pytest.raises(AlreadyResolved, match="resolved by ana"):
        service.retry_compensation("e1", Actor("bob"))
    assert engine.starts == []
    assert world.execution().status is S.COMPENSATION_FAILED


class _StaleReads:
    """The store, but `get` answers what it held before `decide` ran: the service read the
    execution, then another operator's decision committed before the service's own."""

    def __init__(self, world: World, decide: Callable[[], Any]) -> None:
        self._store = world.store
        self._decide = decide
        self._stale: Execution | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def get(self, execution_id: str) -> Execution | None:
        if self._stale is None:
            self._stale = self._store.get(execution_id)
            self._decide()
            return self._stale
        return self._store.get(execution_id)


def _racing(world: World, decide: Callable[[], Any]) -> ExecutionService:
    service, _ = _service(world)
    service.executions = _StaleReads(world, decide)  # type: ignore[assignment]
    return service


def test_a_resolve_that_read_before_another_one_committed_loses_at_the_store() -> None:
    world = _parked()
    service = _racing(world, lambda: world.store.resolve("e1", "ana", "shipped by hand"))
    with pytest.raises(AlreadyResolved, match="resolved by ana"):
        service.resolve("e1", ResolveRequest(reason="refunded"), Actor("bob"))
    assert world.execution().resolution == "shipped by hand"
    assert len(_decisions(world)) == 1


def test_a_retry_forward_that_read_before_a_resolve_committed_loses_at_the_store() -> None:
    world = _parked()
    service = _racing(world, lambda: world.store.resolve("e1", "ana", "shipped by hand"))
    with pytest.raises(AlreadyResolved, match="resolved by ana"):
        service.retry_forward("e1", Actor("bob"))
    assert world.execution().status is S.PARKED
    assert [e["type"] for e in _decisions(world)] == [event_types.SAGA_RESOLVED]


def test_a_retry_compensation_that_read_before_a_resolve_committed_loses_at_the_store() -> None:
    world = _compensation_failed()
    service = _racing(world, lambda: world.store.resolve("e1", "ana", "refunded by hand"))
    with pytest.raises(AlreadyResolved, match="resolved by ana"):
        service.retry_compensation("e1", Actor("bob"))
    assert world.execution().status is S.COMPENSATION_FAILED


def test_a_resolve_that_read_before_a_retry_forward_committed_is_told_it_moved_on() -> None:
    world = _parked()
    service = _racing(world, lambda: world.store.resume("e1", ["ship"], "ana"))
    with pytest.raises(Conflict, match=r"changed meanwhile \(it is RUNNING\)") as refused:
        service.resolve("e1", ResolveRequest(reason="shipped by hand"), Actor("bob"))
    assert not isinstance(refused.value, AlreadyResolved)
    assert world.execution().resolved_by is None
    assert [e["type"] for e in _decisions(world)] == [event_types.SAGA_RESUMED]


@pytest.mark.parametrize("make", [_parked, _compensation_failed], ids=["parked",
                                                                       "compensation_failed"])
def test_eight_operators_deciding_at_once_take_one_decision(make: Callable[[], World]) -> None:
    world = make()
    service, engine = _service(world)
    barrier = threading.Barrier(8)
    answers: list[Execution | SagaError] = []

    def decide(n: int) -> None:
        actor = Actor(f"op{n}")
        barrier.wait()
        try:
            if n % 3 == 0:
                answers.append(service.resolve(
                    "e1", ResolveRequest(reason=f"handled by op{n}"), actor))
            elif n % 3 == 1:
                answers.append(service.retry_forward("e1", actor))
            else:
                answers.append(service.retry_compensation("e1", actor))
        except SagaError as error:
            answers.append(error)

    threads = [threading.Thread(target=decide, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    won = [a for a in answers if isinstance(a, Execution)]
    refused = [a for a in answers if isinstance(a, SagaError)]
    assert len(won) == 1 and len(refused) == 7, answers
    assert all(http_status(error) == 409 for error in refused)
    assert len(_decisions(world)) == 1
    assert len(engine.starts) == (0 if won[0].resolved_by else 1)


# -- a failed output mapping (row 11) ------------------------------------------------------------

def test_a_failed_output_mapping_is_recorded_in_the_execution_and_its_event() -> None:
    definition = {**FULFILMENT, "steps": [_step("s1", 1), _step("s2", 2)],
                  "output": {"ok": "$.results.s2.by", "missing": "$.results.s1.missing_field",
                             "later": "$.input.absent"}}
    world = build_world(definition)
    world.deliver("s1")
    world.deliver("s2")
    recorder = OutcomeRecorder(world.ledger, world.definitions, clock=world.clock.now)
    assert record_end(recorder, {"execution_id": "e1", "outcome": "COMPLETED"}) == {
        "status": "COMPLETED"}
    execution = world.execution()
    assert execution.status is S.COMPLETED and execution.output is None
    # The first reference that fails, in the mapping's order, says where and why.
    assert execution.output_error == OutputError(
        field="missing", reference="$.results.s1.missing_field",
        message="$.results.s1.missing_field: 'missing_field' is absent")
    [completed] = world.events_of(event_types.SAGA_COMPLETED)
    assert completed["data"]["output"] is None
    assert completed["data"]["output_error"] == execution.output_error.model_dump()
    shown = execution.model_dump(mode="json")
    assert shown["output_error"]["field"] == "missing"
    assert "no output: field 'missing' ($.results.s1.missing_field)" in _timeline(shown)


def test_a_resolved_output_has_no_output_error() -> None:
    world = build_world({**FULFILMENT, "steps": [_step("s1", 1)],
                         "output": {"by": "$.results.s1.by"}})
    world.deliver("s1")
    record_end(OutcomeRecorder(world.ledger, world.definitions),
               {"execution_id": "e1", "outcome": "COMPLETED"})
    assert (world.execution().output, world.execution().output_error) == (
        {"by": "do_s1"}, None)
    assert world.events_of(event_types.SAGA_COMPLETED)[0]["data"]["output_error"] is None
