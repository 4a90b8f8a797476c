"""ExecutionService against the in-memory ports: every use case, no server."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from chalicelib.domain import event_types
from chalicelib.domain.errors import BadRequest, Conflict, NotFound
from chalicelib.domain.executions import Execution, StepRun
from chalicelib.domain.lifecycle import ExecutionStatus, StepStatus
from chalicelib.domain.models import SagaDefinition, StoredSaga
from chalicelib.domain.requests import ExecuteRequest, ResolveRequest, parse_request
from chalicelib.http.http_errors import http_status
from chalicelib.testing import (
    InMemoryDefinitionStore,
    InMemoryExecutionStore,
    InMemoryReadModel,
    ScriptedEngine,
)
from chalicelib.usecases.executions import (
    ExecutionPolicy,
    ExecutionService,
    OrchestratorUnavailable,
)
from chalicelib.usecases.ports import Actor, RunKind, RunRef

SEED = json.loads((Path(__file__).parents[1] / "fixtures" / "payment-saga.json").read_text())
ACTOR = Actor("ops")


@dataclass
class World:
    definitions: InMemoryDefinitionStore
    executions: InMemoryExecutionStore
    engine: ScriptedEngine
    reads: InMemoryReadModel
    service: ExecutionService
    saga: StoredSaga

    def store_saga(self, saga_id: str, *, active: bool = True) -> StoredSaga:
        return self.definitions.insert_version(
            SagaDefinition.model_validate({**SEED, "id": saga_id, "active": active}),
            expected_revision=None, actor=ACTOR, action="create")

    def given(self, execution_id: str, status: ExecutionStatus, *,
              steps: tuple[StepStatus, ...] = (), saga: StoredSaga | None = None) -> Execution:
        saga = saga or self.saga
        now = datetime.now(UTC)
        execution = Execution(
            id=execution_id, saga_id=saga.id, revision=saga.revision, version=saga.version,
            status=status, input={}, started_at=now, updated_at=now,
            steps=[StepRun(step_id=f"s{i}", position=i, status=s)
                   for i, s in enumerate(steps, start=1)])
        self.executions.put(execution)
        return execution


@pytest.fixture
def world() -> World:
    definitions = InMemoryDefinitionStore()
    executions = InMemoryExecutionStore(definitions)
    engine = ScriptedEngine()
    reads = InMemoryReadModel()
    service = ExecutionService(definitions, executions, engine,
                               ExecutionPolicy(faults_enabled=True, max_input_bytes=1000),
                               reads)
    world = World(definitions, executions, engine, reads, service,
                  saga=None)  # type: ignore[arg-type]
    world.saga = world.store_saga("pay")
    return world


def _types(world: World, execution_id: str) -> list[str]:
    return [e["type"] for e in world.executions.events if e["key"] == execution_id]


# -- execute ------------------------------------------------------------------------------

def test_execute_records_the_execution_and_starts_its_run_under_its_id(world: World) -> None:
    execution, created = world.service.execute(
        "pay", ExecuteRequest(input={"amount": 5}, execution_id="e-1"), ACTOR)
    assert created and execution.status is ExecutionStatus.RUNNING
    assert [s.step_id for s in execution.steps] == [s.id for s in world.saga.active_steps()]
    [started] = world.engine.starts
    assert (started.execution_id, started.kind, started.at_step) == ("e-1", RunKind.FORWARD,
                                                                       None)
    # The store keeps the ref's parts: where the run was planned, and the run.
    assert RunRef.kept_for(execution) == started.ref == RunRef(
        "e-1", world.engine.where(world.saga), started.ref.run)
    assert _types(world, "e-1") == [event_types.EXECUTION_STARTED, event_types.RUN_STARTED]


def test_execute_without_an_id_makes_one(world: World) -> None:
    execution, created = world.service.execute("pay", ExecuteRequest(), ACTOR)
    assert created and len(execution.id) == 36


def test_a_repeated_execute_is_the_same_execution_and_one_run(world: World) -> None:
    first, _ = world.service.execute("pay", ExecuteRequest(execution_id="e-1"), ACTOR)
    again, created = world.service.execute("pay", ExecuteRequest(execution_id="e-1"), ACTOR)
    assert not created and again == first == world.executions.get("e-1")
    assert len(world.engine.starts) == 1


def test_a_repeated_execute_of_a_saga_switched_off_since_answers_its_execution(
        world: World) -> None:
    first, _ = world.service.execute("pay", ExecuteRequest(execution_id="e-1"), ACTOR)
    world.definitions.set_active("pay", False, ACTOR)
    again, created = world.service.execute("pay", ExecuteRequest(execution_id="e-1"), ACTOR)
    assert not created and again == first
    with pytest.raises(Conflict, match="not active"):  # a new one is refused
        world.service.execute("pay", ExecuteRequest(execution_id="e-2"), ACTOR)
    assert world.executions.get("e-2") is None and len(world.engine.starts) == 1


def test_an_execution_id_taken_by_another_saga_is_a_conflict(world: World) -> None:
    other = world.store_saga("other")
    world.given("shared", ExecutionStatus.RUNNING, saga=other)
    with pytest.raises(Conflict, match="taken by saga 'other'") as raised:
        world.service.execute("pay", ExecuteRequest(execution_id="shared"), ACTOR)
    assert http_status(raised.value) == 409
    assert world.executions.get("shared").saga_id == "other"  # type: ignore[union-attr]
    assert world.engine.starts == []


def test_a_failed_start_leaves_the_execution_failed_and_answers_503(world: World) -> None:
    world.engine.fail_start = 1
    with pytest.raises(OrchestratorUnavailable) as raised:
        world.service.execute("pay", ExecuteRequest(execution_id="e-1"), ACTOR)
    assert http_status(raised.value) == 503
    failed = world.executions.get("e-1")
    assert failed is not None and failed.status is ExecutionStatus.FAILED
    assert failed.error is not None and failed.error.type == "EngineDown"
    # Planned before the start: the reconciler could still find a run that did start.
    assert RunRef.kept_for(failed) == RunRef("e-1", world.engine.where(world.saga))
    assert failed.ended_at is not None
    assert _types(world, "e-1") == [event_types.EXECUTION_STARTED, event_types.SAGA_FAILED]
    # A retry of the same request does not start it again: it failed, and says so.
    again, created = world.service.execute("pay", ExecuteRequest(execution_id="e-1"), ACTOR)
    assert not created and again.status is ExecutionStatus.FAILED


def test_execute_refuses_a_missing_or_inactive_saga(world: World) -> None:
    with pytest.raises(NotFound):
        world.service.execute("nope", ExecuteRequest(), ACTOR)
    world.store_saga("off", active=False)
    with pytest.raises(Conflict, match="not active"):
        world.service.execute("off", ExecuteRequest(), ACTOR)


@pytest.mark.parametrize(("body", "message"), [
    ({"execution_id": "bad id!"}, "execution_id must be"),
    ({"execution_id": "x" * 65}, "execution_id must be"),
    ({"input": {"blob": "x" * 2000}}, "the limit is 1000"),
    ({"faults": [{"step_id": "ghost"}]}, "has no active step 'ghost'"),
    ({"inputs": {}}, "inputs"),
    ([], "must be a JSON object"),
])
def test_bad_execute_bodies_are_400_saying_what_is_wrong(world: World, body: object,
                                                          message: str) -> None:
    # As the edge does it: the body read into the request, then the use case's checks.
    with pytest.raises(BadRequest, match=message):
        world.service.execute("pay", parse_request(ExecuteRequest, body), ACTOR)
    assert world.engine.starts == []


def test_faults_are_refused_where_injection_is_disabled(world: World) -> None:
    service = ExecutionService(world.definitions, world.executions, world.engine,
                               ExecutionPolicy(faults_enabled=False), world.reads)
    step = world.saga.active_steps()[0].id
    with pytest.raises(BadRequest, match="fault injection is disabled"):
        service.execute("pay", parse_request(ExecuteRequest, {"faults": [{"step_id": step}]}),
                        ACTOR)


# -- compensate, retry, resolve --------------------------------------------------------------

def test_compensate_undoes_a_completed_execution_with_the_compensation_machine(
        world: World) -> None:
    world.given("done", ExecutionStatus.COMPLETED)
    moved = world.service.compensate("pay", "done", ACTOR)
    assert moved.status is ExecutionStatus.COMPENSATING
    assert moved.error is not None and moved.error.type == "CompensationRequested"
    [started] = world.engine.starts
    assert (started.execution_id, started.kind) == ("done", RunKind.COMPENSATION)
    assert started.ref.where == world.engine.where(world.saga, RunKind.COMPENSATION)
    assert started.run_name.startswith("done-c")
    assert moved.ended_at is None


def test_compensate_with_no_execution_named_takes_the_latest_completed(world: World) -> None:
    world.given("done", ExecutionStatus.COMPLETED)
    world.given("going", ExecutionStatus.RUNNING)
    assert world.service.compensate("pay", None, ACTOR).id == "done"


def test_compensate_refusals(world: World) -> None:
    with pytest.raises(Conflict, match="no completed execution"):
        world.service.compensate("pay", None, ACTOR)
    world.given("going", ExecutionStatus.RUNNING)
    with pytest.raises(Conflict, match="only a COMPLETED execution"):
        world.service.compensate("pay", "going", ACTOR)
    other = world.store_saga("other")
    world.given("theirs", ExecutionStatus.COMPLETED, saga=other)
    with pytest.raises(NotFound, match="has no execution 'theirs'"):
        world.service.compensate("pay", "theirs", ACTOR)
    with pytest.raises(NotFound, match="saga 'ghost'"):
        world.service.compensate("ghost", None, ACTOR)
    with pytest.raises(NotFound, match="execution 'nope'"):
        world.service.compensate("pay", "nope", ACTOR)


def test_a_compensation_that_cannot_start_fails_the_execution(world: World) -> None:
    world.given("done", ExecutionStatus.COMPLETED)
    world.engine.fail_start = 1
    with pytest.raises(OrchestratorUnavailable):
        world.service.compensate("pay", "done", ACTOR)
    assert world.executions.get("done").status is ExecutionStatus.FAILED  # type: ignore[union-attr]


def test_retry_compensation_restarts_a_failed_one_with_the_steps_cause(world: World) -> None:
    execution = world.given("stuck", ExecutionStatus.COMPENSATION_FAILED,
                            steps=(StepStatus.SUCCEEDED, StepStatus.FAILED))
    execution.steps[1].error = {"type": "CardDeclined", "message": "no"}
    world.executions.put(execution)
    moved = world.service.retry_compensation("stuck", ACTOR)
    assert moved.status is ExecutionStatus.COMPENSATING
    assert moved.error is not None and moved.error.type == "CardDeclined"
    assert moved.error.step_id == "s2"
    world.given("fine", ExecutionStatus.COMPLETED)
    with pytest.raises(Conflict, match="only a COMPENSATION_FAILED"):
        world.service.retry_compensation("fine", ACTOR)


def test_a_compensation_whose_version_is_gone_is_a_conflict(world: World) -> None:
    now = datetime.now(UTC)
    world.executions.put(Execution(id="old", saga_id="pay", revision=99, version="0.0.1",
                                   status=ExecutionStatus.COMPENSATION_FAILED, input={},
                                   started_at=now, updated_at=now))
    with pytest.raises(Conflict, match="is gone"):
        world.service.retry_compensation("old", ACTOR)


def test_resolve_marks_a_failed_execution_only(world: World) -> None:
    world.given("bad", ExecutionStatus.FAILED)
    resolved = world.service.resolve("bad", ResolveRequest(reason="  refunded by hand  "),
                                     ACTOR)
    assert (resolved.resolved_by, resolved.resolution) == ("ops", "refunded by hand")
    assert resolved.status is ExecutionStatus.FAILED
    with pytest.raises(BadRequest, match="3 to 500"):
        world.service.resolve("bad", ResolveRequest(reason="no"), ACTOR)
    world.given("going", ExecutionStatus.RUNNING)
    with pytest.raises(Conflict, match="only a failed or parked execution"):
        world.service.resolve("going", ResolveRequest(reason="because"), ACTOR)


# -- reads ------------------------------------------------------------------------------------

def test_get_prefers_the_read_model_and_falls_back_to_the_write_model(world: World) -> None:
    written = world.given("e", ExecutionStatus.RUNNING)
    # Not projected yet: the write model's view (a row put as it is has no events).
    assert world.service.get("e").consistency == {"source": "write_model", "sequence": 0}
    world.reads.project(written.model_copy(update={"status": ExecutionStatus.COMPLETED}), 7)
    assert world.service.get("e").consistency == {"source": "read_model", "sequence": 7}
    world.reads.available = False
    fallen_back = world.service.get("e")
    assert fallen_back.status is ExecutionStatus.RUNNING
    assert fallen_back.consistency == {"source": "write_model", "sequence": 0}
    with pytest.raises(NotFound):
        world.service.get("missing")


def test_status_reads_the_read_model(world: World) -> None:
    world.reads.project(world.given("e", ExecutionStatus.RUNNING))
    status = world.service.status("pay")
    assert status["running"] == 1 and status["latest_execution"]["id"] == "e"
    assert status["executions"]["by_status"] == {"RUNNING": 1}
    assert "steps" not in status["latest_execution"]


def test_status_falls_back_to_the_write_model_when_the_read_model_is_down(
        world: World) -> None:
    world.given("e", ExecutionStatus.COMPENSATING)
    world.reads.available = False
    status = world.service.status("pay")
    assert status["running"] == 1
    assert status["executions"]["unavailable"] == "the read model cannot be reached"
    assert status["latest_execution"]["id"] == "e"
    assert status["version"] == world.saga.version
    with pytest.raises(NotFound):
        world.service.status("ghost")


def test_status_of_a_saga_never_run(world: World) -> None:
    assert world.service.status("pay")["latest_execution"] is None


def test_summaries_say_when_the_read_model_is_down(world: World) -> None:
    assert world.service.saga_summary("pay")["executions"] == 0
    assert world.service.totals()["executions"] == 0
    world.reads.available = False
    assert "unavailable" in world.service.saga_summary("pay")
    assert "unavailable" in world.service.totals()


def test_list_checks_its_filters_and_falls_back(world: World) -> None:
    world.reads.project(world.given("a", ExecutionStatus.RUNNING))
    world.given("b", ExecutionStatus.FAILED)
    assert [e.id for e in world.service.list(saga_id="pay", status=None, limit=None,
                                             cursor=None).items] == ["a"]
    world.reads.available = False
    listed = world.service.list(saga_id=None, status="FAILED", limit="10", cursor=None)
    assert [e.id for e in listed.items] == ["b"]
    with pytest.raises(BadRequest, match="status must be one of"):
        world.service.list(saga_id=None, status="DONE", limit=None, cursor=None)
    with pytest.raises(BadRequest, match="cursor"):
        world.service.list(saga_id=None, status=None, limit=None, cursor="zz")
    with pytest.raises(BadRequest, match="limit"):
        world.service.list(saga_id=None, status=None, limit="0", cursor=None)


def test_list_filters_on_a_start_time_range(world: World) -> None:
    noon = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
    for hour, execution_id in ((11, "early"), (12, "noon"), (13, "late")):
        execution = world.given(execution_id, ExecutionStatus.COMPLETED)
        execution.started_at = noon.replace(hour=hour)
        world.executions.put(execution)
        world.reads.project(execution)

    def listed(after: str | None, before: str | None) -> list[str]:
        return [e.id for e in world.service.list(
            saga_id=None, status=None, limit=None, cursor=None, started_after=after,
            started_before=before).items]

    # At or after the first bound, strictly before the second; zones are honoured.
    assert listed("2026-12-05T12:00:00Z", None) == ["late", "noon"]
    assert listed(None, "2026-12-05T12:00:00+00:00") == ["early"]
    assert listed("2026-12-05T12:30:00+01:00", "2026-12-05T13:00:00Z") == ["noon"]
    world.reads.available = False  # the write model's fallback filters alike
    assert listed("2026-12-05T11:30:00Z", "2026-12-05T12:30:00Z") == ["noon"]
    for bad in ("yesterday", "2026-12-05T12:00:00", "2026-13-01T00:00:00Z"):
        with pytest.raises(BadRequest, match="ISO 8601 time with its zone"):
            listed(bad, None)
    with pytest.raises(BadRequest, match="not be later than started_before"):
        listed("2026-12-05T13:00:00Z", "2026-12-05T12:00:00Z")
    # An empty window (the same bound twice) is no mistake: it holds no execution.
    assert listed("2026-12-05T12:00:00Z", "2026-12-05T12:00:00Z") == []
