"""The stores' contract, written once: the DefinitionStore, ExecutionStore and StepLedger ports
and the events each change persists, type and data field by field.

A test module subclasses StoreContract and gives it a `stores` fixture (the in-memory fakes in
the unit suite, MySQL in the integration suite), so the fakes the services' unit tests run on
are held to what production writes. Ids are unique per test: MySQL's database is shared by a
module's tests.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chalicelib.domain import event_types, events, expected_by
from chalicelib.domain.errors import Conflict, NotFound
from chalicelib.domain.executions import Execution, Fault, ParentRef, StepShape, execution_error
from chalicelib.domain.lifecycle import OUTCOME_UNKNOWN, ExecutionStatus, Outcome, Phase, StepStatus
from chalicelib.domain.models import SagaDefinition, StoredSaga
from chalicelib.domain.step_context import (
    OutcomeUnknown,
    PermanentError,
    RetryableError,
    StepContext,
)
from chalicelib.roots.step_handler import record_end, run_step
from chalicelib.usecases.ports import (
    Actor,
    DefinitionStore,
    ExecutionQuery,
    ExecutionStore,
    RunRef,
    SagaFilter,
)
from chalicelib.usecases.steps.attempt import AttemptRunner
from chalicelib.usecases.steps.failures import StepAborted
from chalicelib.usecases.steps.ledger import StepLedger
from chalicelib.usecases.steps.recorder import OutcomeRecorder

ACTOR = Actor("contract", request_id="req-1")
# The runtime's clock in these tests: whole microseconds, as MySQL's DATETIME(6) keeps them.
T = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
T_ISO = T.isoformat()
SECOND = timedelta(seconds=1)


@dataclass
class Stores:
    """One implementation of the three ports, over one outbox."""

    definitions: DefinitionStore
    executions: ExecutionStore
    ledger: StepLedger
    # The envelopes persisted under a key (an execution's or a saga's id), in sequence order.
    outbox: Callable[[str], list[dict[str, Any]]]
    # Moves an execution's last change, and the moment it is next expected to move, that many
    # seconds into the past.
    age: Callable[[str, float], None]
    # When an execution is next expected to move, as stored (UTC-aware; None: nothing).
    expected_by: Callable[[str], datetime | None]


def _id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def _saga_body(saga_id: str, version: str = "1.0.0", *, saga_type: str | None = None,
               active: bool = True) -> SagaDefinition:
    def step(step_id: str, order: int, retries: int) -> dict[str, Any]:
        return {"id": step_id, "name": step_id.upper(), "description": f"step {step_id}",
                "order": order, "action": f"act.{step_id}",
                "compensation": f"undo.{step_id}", "max_retries": retries, "timeout": "30s"}

    return SagaDefinition.model_validate({
        "id": saga_id, "name": "Contract", "description": "the stores' contract",
        "version": version, "type": saga_type, "active": active,
        "steps": [step("a", 1, 0), step("b", 2, 1), step("c", 3, 0)]})


def _store_saga(stores: Stores, **options: Any) -> StoredSaga:
    return stores.definitions.insert_version(_saga_body(_id("saga"), **options),
                                             expected_revision=None, actor=ACTOR,
                                             action="create")


def _shapes(saga: StoredSaga) -> list[StepShape]:
    return [StepShape.of(step) for step in saga.active_steps()]


def _create(stores: Stores, saga: StoredSaga, execution_id: str | None = None, *,
            started_at: datetime | None = None,
            faults: list[dict[str, Any]] | None = None) -> Execution:
    at = started_at or datetime.now(UTC)
    created, fresh = stores.executions.create(Execution(
        id=execution_id or _id("x"), saga_id=saga.id, revision=saga.revision,
        version=saga.version, status=ExecutionStatus.RUNNING, input={"sku": "A-1", "n": 2},
        faults=[Fault.model_validate(f) for f in faults or []],
        state_machine_arn="arn:machine:fwd", started_at=at, updated_at=at), _shapes(saga))
    assert fresh
    return created


def _data(stores: Stores, key: str) -> list[tuple[str, dict[str, Any]]]:
    return [(e["type"], e["data"]) for e in stores.outbox(key)]


def _last(stores: Stores, key: str) -> tuple[str, dict[str, Any]]:
    return _data(stores, key)[-1]


def _summary(saga: StoredSaga) -> dict[str, Any]:
    return {"saga_id": saga.id, "version": saga.version, "revision": saga.revision,
            "active": saga.active, "steps": [s.id for s in saga.steps]}


class StoreContract:
    """Every test runs on the `stores` fixture its subclass provides."""

    # -- the definition store ---------------------------------------------------------------

    def test_a_created_saga_is_read_back_and_says_so_with_its_event(self,
                                                                    stores: Stores) -> None:
        saga = _store_saga(stores, saga_type="contract")
        assert (saga.revision, saga.version, saga.active, saga.type) == (1, "1.0.0", True,
                                                                          "contract")
        assert [s.id for s in saga.steps] == ["a", "b", "c"]
        for read in (stores.definitions.get(saga.id),
                     stores.definitions.get(saga.id, "1.0.0"),
                     stores.definitions.get_revision(saga.id, 1)):
            assert read is not None
            assert read.model_dump(exclude={"created_at", "updated_at",
                                            "version_created_at"}) == \
                saga.model_dump(exclude={"created_at", "updated_at", "version_created_at"})
        assert stores.definitions.get(saga.id, "9.9.9") is None
        assert stores.definitions.get_revision(saga.id, 2) is None
        assert stores.definitions.get("no-such-saga") is None
        envelopes = stores.outbox(saga.id)
        assert [(e["type"], e["data"], e["sequence"], e["key"], e["subject"])
                for e in envelopes] == [
            (event_types.DEFINITION_CREATED, {**_summary(saga), "action": "create"}, 1, saga.id,
             f"saga/{saga.id}")]

    def test_a_new_version_is_an_optimistic_update_with_its_event(self,
                                                                  stores: Stores) -> None:
        saga = _store_saga(stores)
        with pytest.raises(Conflict):  # it exists already
            stores.definitions.insert_version(_saga_body(saga.id, "2.0.0"),
                                              expected_revision=None, actor=ACTOR,
                                              action="create")
        with pytest.raises(Conflict):  # a stale revision
            stores.definitions.insert_version(_saga_body(saga.id, "2.0.0"),
                                              expected_revision=7, actor=ACTOR,
                                              action="update")
        with pytest.raises(Conflict):  # the version is taken
            stores.definitions.insert_version(_saga_body(saga.id, "1.0.0"),
                                              expected_revision=1, actor=ACTOR,
                                              action="update")
        with pytest.raises(NotFound):
            stores.definitions.insert_version(_saga_body(_id("missing")),
                                              expected_revision=1, actor=ACTOR,
                                              action="update")
        updated = stores.definitions.insert_version(_saga_body(saga.id, "1.1.0"),
                                                    expected_revision=1, actor=ACTOR,
                                                    action="update")
        assert (updated.revision, updated.version) == (2, "1.1.0")
        assert stores.definitions.get(saga.id).revision == 2  # type: ignore[union-attr]
        assert stores.definitions.get(saga.id, "1.0.0").revision == 1  # type: ignore[union-attr]
        assert [(v["revision"], v["version"], v["created_by"])
                for v in stores.definitions.versions(saga.id)] == [
            (1, "1.0.0", ACTOR.name), (2, "1.1.0", ACTOR.name)]
        assert all(v["created_at"].tzinfo is not None
                   for v in stores.definitions.versions(saga.id))
        assert stores.definitions.versions("no-such-saga") == []
        assert _data(stores, saga.id) == [
            (event_types.DEFINITION_CREATED, {**_summary(saga), "action": "create"}),
            (event_types.DEFINITION_UPDATED, {**_summary(updated), "action": "update"})]
        assert [e["sequence"] for e in stores.outbox(saga.id)] == [1, 2]

    def test_switching_a_saga_off_is_an_update_once(self, stores: Stores) -> None:
        saga = _store_saga(stores)
        off = stores.definitions.set_active(saga.id, False, ACTOR)
        assert off is not None and off.active is False
        assert stores.definitions.get(saga.id).active is False  # type: ignore[union-attr]
        again = stores.definitions.set_active(saga.id, False, ACTOR)  # nothing changes
        assert again is not None and again.active is False
        assert stores.definitions.set_active(_id("missing"), True, ACTOR) is None
        assert _data(stores, saga.id)[1:] == [
            (event_types.DEFINITION_UPDATED, {**_summary(off), "action": "set_active"})]

    def test_a_deleted_saga_keeps_the_revisions_asked_for_and_says_so(self,
                                                                       stores: Stores) -> None:
        saga = _store_saga(stores)
        stores.definitions.insert_version(_saga_body(saga.id, "1.1.0"), expected_revision=1,
                                          actor=ACTOR, action="update")
        assert stores.definitions.delete(saga.id, ACTOR, keep_revisions=[1]) is True
        assert stores.definitions.get(saga.id) is None
        assert stores.definitions.versions(saga.id) == []
        kept = stores.definitions.get_revision(saga.id, 1)
        assert kept is not None and kept.version == "1.0.0"
        assert stores.definitions.get_revision(saga.id, 2) is None
        assert stores.definitions.delete(saga.id, ACTOR, keep_revisions=[]) is False
        assert _last(stores, saga.id) == (event_types.DEFINITION_DELETED,
                                          {"saga_id": saga.id, "version": "1.1.0"})
        # Created again: a new incarnation, its events numbered on.
        again = stores.definitions.insert_version(_saga_body(saga.id), expected_revision=None,
                                                  actor=ACTOR, action="create")
        assert (again.revision, again.version) == (2, "1.0.0")
        assert stores.definitions.get(saga.id, "1.0.0").revision == 2  # type: ignore[union-attr]
        assert [e["sequence"] for e in stores.outbox(saga.id)] == [1, 2, 3, 4]
        assert _last(stores, saga.id) == (event_types.DEFINITION_CREATED,
                                          {**_summary(again), "action": "create"})

    def test_every_change_is_audited(self, stores: Stores) -> None:
        saga = _store_saga(stores)
        updated = stores.definitions.insert_version(_saga_body(saga.id, "1.1.0"),
                                                    expected_revision=1, actor=ACTOR,
                                                    action="update")
        off = stores.definitions.set_active(saga.id, False, Actor("ops"))
        assert off is not None
        stores.definitions.delete(saga.id, ACTOR, keep_revisions=[])
        entries = stores.definitions.audit_entries("saga", saga.id)
        assert [(e["action"], e["actor"], e["request_id"], e["before_state"], e["after_state"])
                for e in entries] == [
            ("create", "contract", "req-1", None, _summary(saga)),
            ("update", "contract", "req-1", _summary(saga), _summary(updated)),
            ("deactivate", "ops", None, _summary(updated), _summary(off)),
            ("delete", "contract", "req-1", _summary(off), None)]
        assert all(e["at"].tzinfo is not None for e in entries)
        assert stores.definitions.audit_entries("execution", saga.id) == []

    def test_listing_and_totals(self, stores: Stores) -> None:
        kind = _id("type")
        before = stores.definitions.totals()
        first = _store_saga(stores, saga_type=kind)
        second = _store_saga(stores, saga_type=kind, active=False)
        stores.definitions.insert_version(_saga_body(first.id, "1.1.0", saga_type=kind),
                                          expected_revision=1, actor=ACTOR, action="update")
        after = stores.definitions.totals()
        assert (after.sagas - before.sagas, after.steps - before.steps,
                after.versions - before.versions,
                after.active_sagas - before.active_sagas) == (2, 6, 3, 1)
        assert after.by_type[kind] == 2
        ids = sorted([first.id, second.id])
        page = stores.definitions.list(1, None, SagaFilter(type=kind))
        assert [s.id for s in page.items] == ids[:1] and page.next_cursor is not None
        rest = stores.definitions.list(1, page.next_cursor, SagaFilter(type=kind))
        assert [s.id for s in rest.items] == ids[1:] and rest.next_cursor is None
        listed = stores.definitions.list(10, None, SagaFilter(type=kind))
        assert {s.id: s.version for s in listed.items} == {first.id: "1.1.0",
                                                           second.id: "1.0.0"}
        active = stores.definitions.list(10, None, SagaFilter(active=True, type=kind))
        assert [s.id for s in active.items] == [first.id]

    # -- the execution store ----------------------------------------------------------------

    def test_create_stores_the_execution_its_steps_and_its_started_event(
            self, stores: Stores) -> None:
        saga = _store_saga(stores)
        at = datetime.now(UTC).replace(microsecond=123456)
        created = _create(stores, saga, started_at=at,
                          faults=[{"step_id": "b", "error": "Boom", "times": 1}])
        assert created.status is ExecutionStatus.RUNNING
        assert created.consistency == {"source": "write_model", "sequence": 1}
        assert [(s.step_id, s.position, s.group, s.kind, s.status) for s in created.steps] == [
            (shape.step_id, i, shape.group, shape.kind, StepStatus.PENDING)
            for i, shape in enumerate(_shapes(saga), start=1)]
        assert created.started_at == at and created.input == {"sku": "A-1", "n": 2}
        assert [f.step_id for f in created.faults] == ["b"]
        # Returned as stored, without a read of its own: what a read gives.
        assert created == stores.executions.get(created.id)
        envelopes = stores.outbox(created.id)
        assert [(e["type"], e["sequence"], e["key"], e["subject"], e["time"])
                for e in envelopes] == [(event_types.EXECUTION_STARTED, 1, created.id,
                                         f"execution/{created.id}", at.isoformat())]
        assert envelopes[0]["data"] == {
            "saga_id": saga.id, "version": "1.0.0", "revision": 1, "steps": ["a", "b", "c"],
            "shape": [shape.model_dump(mode="json") for shape in _shapes(saga)],
            "input": {"sku": "A-1", "n": 2},
            "faults": [f.model_dump(mode="json") for f in created.faults],
            "state_machine_arn": "arn:machine:fwd"}

    def test_a_second_create_returns_the_first_and_writes_nothing(self,
                                                                 stores: Stores) -> None:
        saga = _store_saga(stores)
        first = _create(stores, saga)
        again, fresh = stores.executions.create(first.model_copy(update={"input": {}}),
                                                _shapes(saga))
        assert not fresh and again == stores.executions.get(first.id) == first
        assert len(stores.outbox(first.id)) == 1
        with pytest.raises(NotFound):
            stores.executions.create(first.model_copy(update={"id": _id("x"),
                                                              "saga_id": _id("none")}),
                                     _shapes(saga))

    def test_reads_carry_the_write_models_consistency(self, stores: Stores) -> None:
        saga = _store_saga(stores)
        older = _create(stores, saga, started_at=datetime.now(UTC) - timedelta(minutes=5))
        newer = _create(stores, saga)
        stores.executions.mark_started(newer.id, RunRef(newer.id, "arn:m", "arn:run"))
        got = stores.executions.get(newer.id)
        assert got is not None and got.consistency == {"source": "write_model", "sequence": 2}
        assert (got.state_machine_arn, got.sfn_execution_arn) == ("arn:m", "arn:run")
        assert stores.executions.get(_id("none")) is None
        latest = stores.executions.latest(saga.id)
        assert latest is not None and latest.id == newer.id
        assert latest.consistency == {"source": "write_model", "sequence": 2}
        listed = stores.executions.list(ExecutionQuery(limit=10, saga_id=saga.id))
        assert [(e.id, e.consistency) for e in listed.items] == [
            (newer.id, {"source": "write_model", "sequence": 2}),
            (older.id, {"source": "write_model", "sequence": 1})]

    def test_listing_filters_and_pages_newest_first(self, stores: Stores) -> None:
        saga = _store_saga(stores)
        now = datetime.now(UTC).replace(microsecond=0)
        made = [_create(stores, saga, started_at=now - timedelta(minutes=m)) for m in (3, 2, 1)]
        stores.executions.transition(made[0].id, {ExecutionStatus.RUNNING},
                                     ExecutionStatus.FAILED, event_types.SAGA_FAILED,
                                     {"reason": "test"})
        newest_first = [e.id for e in reversed(made)]
        page = stores.executions.list(ExecutionQuery(limit=2, saga_id=saga.id))
        assert [e.id for e in page.items] == newest_first[:2] and page.next_cursor
        rest = stores.executions.list(ExecutionQuery(limit=2, saga_id=saga.id,
                                                     cursor=page.next_cursor))
        assert [e.id for e in rest.items] == newest_first[2:] and rest.next_cursor is None
        failed = stores.executions.list(ExecutionQuery(limit=5, saga_id=saga.id,
                                                       status=ExecutionStatus.FAILED.value))
        assert [e.id for e in failed.items] == [made[0].id]
        window = stores.executions.list(ExecutionQuery(
            limit=5, saga_id=saga.id, started_after=now - timedelta(minutes=2),
            started_before=now - timedelta(minutes=1)))
        assert [e.id for e in window.items] == [made[1].id]
        # A search: an execution's id, or its saga's id, compared exactly.
        assert [e.id for e in stores.executions.list(
            ExecutionQuery(limit=5, q=made[1].id)).items] == [made[1].id]
        assert [e.id for e in stores.executions.list(
            ExecutionQuery(limit=5, q=saga.id)).items] == newest_first
        assert stores.executions.list(ExecutionQuery(limit=5, q=made[1].id[:8])).items == []
        running = stores.executions.latest(saga.id, ExecutionStatus.FAILED)
        assert running is not None and running.id == made[0].id
        assert stores.executions.latest(saga.id, ExecutionStatus.COMPLETED) is None
        assert stores.executions.latest(_id("none")) is None

    def test_mark_started_records_the_run_and_its_event(self, stores: Stores) -> None:
        saga = _store_saga(stores)
        created = _create(stores, saga)
        marked = stores.executions.mark_started(created.id, RunRef(
            created.id, "arn:machine:fwd", "arn:run:1"))
        assert _last(stores, created.id) == (event_types.RUN_STARTED, {
            "saga_id": saga.id, "state_machine_arn": "arn:machine:fwd",
            "run_arn": "arn:run:1"})
        # Returned as it now is, its steps included: what a read gives.
        assert marked is not None and marked == stores.executions.get(created.id)
        assert (marked.sfn_execution_arn, marked.consistency) == (
            "arn:run:1", {"source": "write_model", "sequence": 2})
        assert marked.updated_at >= created.updated_at
        assert [s.step_id for s in marked.steps] == [s.step_id for s in created.steps]
        assert stores.executions.mark_started(_id("none"), RunRef("x", "arn:m", "arn:r")) is None
        # The same run started again (repeats of a throttled execute) is recorded once.
        again = stores.executions.mark_started(created.id, RunRef(
            created.id, "arn:machine:fwd", "arn:run:1"))
        assert again is not None and again.consistency == marked.consistency
        assert len(_data(stores, created.id)) == 2

    def test_an_operators_compensation_moves_the_execution_with_its_event(
            self, stores: Stores) -> None:
        saga = _store_saga(stores)
        created = _create(stores, saga)
        done = stores.executions.transition(created.id, {ExecutionStatus.RUNNING},
                                            ExecutionStatus.COMPLETED, event_types.SAGA_COMPLETED,
                                            {"reconciled": True, "reason": "it ran"})
        assert done is not None and done.status is ExecutionStatus.COMPLETED
        assert done.ended_at is not None
        assert _last(stores, created.id) == (event_types.SAGA_COMPLETED, {
            "saga_id": saga.id, "status": "COMPLETED", "reconciled": True, "reason": "it ran"})
        cause = execution_error(None, Phase.COMPENSATION, "CompensationRequested", "by ops")
        # Not from a status the caller allows; not an operator's move from a final status.
        assert stores.executions.transition(created.id, {ExecutionStatus.RUNNING},
                                            ExecutionStatus.COMPENSATING,
                                            event_types.COMPENSATION_STARTED, {}) is None
        assert stores.executions.transition(created.id, {ExecutionStatus.COMPLETED},
                                            ExecutionStatus.COMPENSATING,
                                            event_types.COMPENSATION_STARTED, {}) is None
        moved = stores.executions.transition(
            created.id, {ExecutionStatus.COMPLETED}, ExecutionStatus.COMPENSATING,
            event_types.COMPENSATION_STARTED, {"reason": "compensation requested", "by": "ops"},
            error=cause, by_operator=True)
        assert moved is not None and moved.status is ExecutionStatus.COMPENSATING
        assert moved.ended_at is None and moved.error is not None
        assert moved.error.model_dump(exclude_none=True) == {
            k: v for k, v in cause.items() if v is not None}
        assert moved.consistency == {"source": "write_model", "sequence": 3}
        assert _last(stores, created.id) == (event_types.COMPENSATION_STARTED, {
            "saga_id": saga.id, "status": "COMPENSATING", "reason": "compensation requested",
            "by": "ops", "execution_error": cause})
        assert len(stores.outbox(created.id)) == 3  # the refused moves wrote nothing

    def test_an_unstarted_execution_fails_with_its_error(self, stores: Stores) -> None:
        saga = _store_saga(stores)
        created = _create(stores, saga)
        error = execution_error(None, None, "OrchestratorDown", "no engine")
        failed = stores.executions.transition(
            created.id, {ExecutionStatus.RUNNING, ExecutionStatus.COMPENSATING},
            ExecutionStatus.FAILED, event_types.SAGA_FAILED,
            {"reason": "the state machine could not be started"}, error=error)
        assert failed is not None and failed.status is ExecutionStatus.FAILED
        assert _last(stores, created.id) == (event_types.SAGA_FAILED, {
            "saga_id": saga.id, "status": "FAILED",
            "reason": "the state machine could not be started", "execution_error": error})

    def test_a_parked_execution_is_resumed_once_with_its_steps_reset(self,
                                                                     stores: Stores) -> None:
        saga = _store_saga(stores)
        created = _create(stores, saga)
        assert stores.executions.resume(created.id, ["b"], "ops") is None  # not parked
        with stores.ledger.transaction() as tx:
            tx.lock_execution(created.id)
            tx.lock_step(created.id, "b")
            tx.record_outcome(created.id, "b", status=StepStatus.RUNNING, phase=Phase.ACTION,
                              at=T, started=T, error={"type": "Busy", "message": "no"})
        parked = stores.executions.transition(
            created.id, {ExecutionStatus.RUNNING}, ExecutionStatus.PARKED, event_types.SAGA_PARKED,
            {"reason": "out of attempts"},
            error=execution_error("b", Phase.ACTION, "Busy", "no"))
        assert parked is not None
        resumed = stores.executions.resume(created.id, ["b"], "ops")
        assert resumed is not None and resumed.status is ExecutionStatus.RUNNING
        assert resumed.error is None and resumed.ended_at is None
        step = next(s for s in resumed.steps if s.step_id == "b")
        assert (step.status, step.error, step.ended_at, step.action_attempts) == (
            StepStatus.PENDING, None, None, 1)
        group, kind = next((s.group, s.kind.value) for s in _shapes(saga) if s.step_id == "b")
        assert _data(stores, created.id)[-2:] == [
            (event_types.SAGA_PARKED, {"saga_id": saga.id, "status": "PARKED",
                                  "reason": "out of attempts",
                                  "execution_error": execution_error("b", Phase.ACTION,
                                                                     "Busy", "no")}),
            (event_types.SAGA_RESUMED, {"saga_id": saga.id, "status": "RUNNING", "by": "ops",
                                   "reason": "retry forward requested",
                                   "execution_error": None, "steps": [{
                                       "step_id": "b", "status": "PENDING",
                                       "action_attempts": 1, "compensation_attempts": 0,
                                       "group": group, "kind": kind, "error": None,
                                       "started_at": T_ISO, "ended_at": None,
                                       "compensated_at": None, "waiting": None,
                                       "condition": None, "fanout": None, "item": None,
                    "child": None}]})]
        assert stores.executions.resume(created.id, ["b"], "ops") is None

    def test_a_failed_execution_is_resolved_once(self, stores: Stores) -> None:
        saga = _store_saga(stores)
        created = _create(stores, saga)
        assert stores.executions.resolve(created.id, "ops", "running still") is None
        stores.executions.transition(created.id, {ExecutionStatus.RUNNING},
                                     ExecutionStatus.FAILED, event_types.SAGA_FAILED, {})
        assert _last(stores, created.id) == (event_types.SAGA_FAILED, {"saga_id": saga.id,
                                                                  "status": "FAILED"})
        resolved = stores.executions.resolve(created.id, "ops", "refunded by hand")
        assert resolved is not None
        assert (resolved.resolved_by, resolved.resolution) == ("ops", "refunded by hand")
        assert stores.executions.resolve(created.id, "other", "me too") is None
        assert stores.executions.resolve(_id("none"), "ops", "nothing") is None
        assert _last(stores, created.id) == (event_types.SAGA_RESOLVED, {
            "saga_id": saga.id, "by": "ops", "reason": "refunded by hand"})
        # A resolved execution accepts no operator's move.
        assert stores.executions.transition(created.id, {ExecutionStatus.FAILED},
                                            ExecutionStatus.COMPENSATING,
                                            event_types.COMPENSATION_STARTED, {},
                                            by_operator=True) is None

    def test_active_pinned_and_unsettled_executions(self, stores: Stores) -> None:
        saga = _store_saga(stores)
        stale, fresh, ended = (_create(stores, saga) for _ in range(3))
        stores.executions.transition(ended.id, {ExecutionStatus.RUNNING},
                                     ExecutionStatus.COMPLETED, event_types.SAGA_COMPLETED, {})
        stores.definitions.insert_version(_saga_body(saga.id, "2.0.0"), expected_revision=1,
                                          actor=ACTOR, action="update")
        assert stores.executions.count_active(saga.id) == 2
        assert stores.executions.pinned_revisions(saga.id) == [1]
        assert stores.executions.pinned_revisions(_id("none")) == []
        stores.age(stale.id, 3600)
        stores.age(ended.id, 3600)
        ours = {stale.id, fresh.id, ended.id}
        unsettled = [e for e in stores.executions.unsettled(600, 10_000) if e.id in ours]
        assert [e.id for e in unsettled] == [stale.id]
        assert unsettled[0].consistency == {"source": "write_model", "sequence": 1}

    # -- the step ledger ----------------------------------------------------------------------

    def test_a_ledger_transaction_reads_under_its_locks(self, stores: Stores) -> None:
        saga = _store_saga(stores)
        created = _create(stores, saga, faults=[{"step_id": "a", "error": "Boom"}])
        with stores.ledger.transaction() as tx:
            assert hasattr(tx.cursor, "execute")
            locked = tx.lock_execution(created.id)
            assert locked is not None
            assert (locked.id, locked.saga_id, locked.revision, locked.status, locked.error) == (
                created.id, saga.id, 1, ExecutionStatus.RUNNING, None)
            assert tx.lock_execution(_id("none")) is None
            step = tx.lock_step(created.id, "a")
            assert step is not None
            assert (step.step_id, step.status, step.action_attempts,
                    step.compensation_attempts, step.result, step.error, step.retry_base,
                    step.action_deadline) == ("a", StepStatus.PENDING, 0, 0, None, None, 0,
                                              None)
            assert tx.lock_step(created.id, "zz") is None
            loaded = tx.load_execution(created.id)
            assert (loaded.id, loaded.input, [f.error for f in loaded.faults]) == (
                created.id, {"sku": "A-1", "n": 2}, ["Boom"])
            assert loaded.steps == []
            assert tx.next_step(created.id, "a") == "b"
            assert tx.next_step(created.id, "c") is None
            assert tx.steps_in(created.id, StepStatus.PENDING) == ["a", "b", "c"]
            assert tx.results(created.id) == {}
        peeked = stores.ledger.peek(created.id)
        assert peeked is not None and peeked.steps == [] and peeked.id == created.id
        assert stores.ledger.peek(_id("none")) is None

    def test_a_ledger_transaction_records_attempts_outcomes_and_statuses(
            self, stores: Stores) -> None:
        saga = _store_saga(stores)
        created = _create(stores, saga)
        later = T + timedelta(seconds=2)
        with stores.ledger.transaction() as tx:
            tx.lock_execution(created.id)
            tx.lock_step(created.id, "a")
            assert tx.claim_attempt(created.id, "a", phase=Phase.ACTION, deadline=later) == 1
            assert tx.claim_attempt(created.id, "a", phase=Phase.ACTION, deadline=T) == 2
            assert tx.claim_attempt(created.id, "a", phase=Phase.COMPENSATION,
                                    deadline=T) == 1
            tx.record_attempt(created.id, "a", phase=Phase.ACTION, attempt=2,
                              outcome=Outcome.SUCCEEDED, started=T, ended=later)
            record = tx.record_outcome(created.id, "a", status=StepStatus.SUCCEEDED,
                                       phase=Phase.ACTION, at=later, started=T,
                                       result={"id": 7}, claimed=True)
            group, kind = next((s.group, s.kind.value) for s in _shapes(saga)
                               if s.step_id == "a")
            assert record == {"status": "SUCCEEDED", "action_attempts": 2,
                              "compensation_attempts": 1, "group": group, "kind": kind,
                              "error": None, "started_at": T_ISO,
                              "ended_at": later.isoformat(), "compensated_at": None,
                              "waiting": None, "condition": None, "fanout": None,
                              "item": None, "child": None}
            assert tx.results(created.id) == {"a": {"id": 7}}
            assert tx.set_execution_status(created.id, ExecutionStatus.COMPLETED,
                                           at=later) is True
            tx.set_execution_output(created.id, {"total": 3})
        with stores.ledger.transaction() as tx:
            tx.lock_execution(created.id)
            # COMPLETED is final: the orchestration cannot move it.
            assert tx.set_execution_status(created.id, ExecutionStatus.FAILED,
                                           at=later) is False
            tx.set_execution_error(created.id, execution_error("a", Phase.ACTION, "X", "y"))
        got = stores.executions.get(created.id)
        assert got is not None and got.status is ExecutionStatus.COMPLETED
        assert got.ended_at == later and got.output == {"total": 3} and got.output_error is None
        assert got.error is not None and (got.error.step_id, got.error.type) == ("a", "X")
        step = next(s for s in got.steps if s.step_id == "a")
        assert (step.status, step.result, step.action_attempts, step.ended_at) == (
            StepStatus.SUCCEEDED, {"id": 7}, 2, later)
        assert [(a.phase, a.attempt, a.outcome, a.duration_ms, a.started_at, a.ended_at)
                for a in step.attempts] == [("action", 2, "succeeded", 2000, T, later)]
        with stores.ledger.transaction() as tx:
            locked = tx.lock_step(created.id, "a")
            assert locked is not None and locked.action_deadline == later

    def test_a_ledger_transaction_makes_a_child_once_and_names_it_on_its_step(
            self, stores: Stores) -> None:
        saga = _store_saga(stores)
        parent = _create(stores, saga)
        child_id = _id("child")
        child = Execution(id=child_id, saga_id=saga.id, revision=saga.revision,
                          version=saga.version, status=ExecutionStatus.RUNNING,
                          input={"amount": 3}, started_at=T, updated_at=T,
                          parent=ParentRef(execution_id=parent.id, step_id="a"), depth=2,
                          state_machine_arn="arn:aws:states:r:1:stateMachine:m")
        with stores.ledger.transaction() as tx:
            tx.lock_execution(parent.id)
            assert tx.add_execution(child, _shapes(saga)) is True
            assert tx.add_execution(child, _shapes(saga)) is False  # its id exists
            record = tx.start_child(parent.id, "a", child_id=child_id, at=T)
            assert (record["status"], record["action_attempts"], record["child"],
                    record["started_at"]) == ("RUNNING", 1, child_id, T_ISO)
            locked = tx.lock_step(parent.id, "a")
            assert locked is not None and locked.child == child_id
            found = tx.lock_execution(child_id)
            assert found is not None and found.status is ExecutionStatus.RUNNING
        got = stores.executions.get(child_id)
        assert got is not None
        assert (got.parent, got.depth, got.input, got.state_machine_arn) == (
            ParentRef(execution_id=parent.id, step_id="a"), 2, {"amount": 3},
            "arn:aws:states:r:1:stateMachine:m")
        assert [s.step_id for s in got.steps] == [s.step_id for s in _shapes(saga)]
        assert all(s.status is StepStatus.PENDING for s in got.steps)
        [(kind, data)] = _data(stores, child_id)
        assert kind == event_types.EXECUTION_STARTED
        assert (data["parent"], data["depth"], data["input"]) == (
            {"execution_id": parent.id, "step_id": "a"}, 2, {"amount": 3})
        step = next(s for s in stores.executions.get(parent.id).steps if s.step_id == "a")
        assert (step.child, step.status) == (child_id, StepStatus.RUNNING)
        # A top-level execution's started event says nothing of a parent.
        [(_, top)] = _data(stores, parent.id)[:1]
        assert "parent" not in top and "depth" not in top

    def test_a_ledger_transaction_appends_events_in_order_or_not_at_all(
            self, stores: Stores) -> None:
        saga = _store_saga(stores)
        created = _create(stores, saga)
        tried = events.StepAttempt(saga_id=saga.id, step_id="a", attempt=1,
                                   phase=Phase.ACTION, started=T, ended=T)
        with pytest.raises(RuntimeError), stores.ledger.transaction() as tx:
            tx.lock_execution(created.id)
            tx.append_events(created.id, [(events.step_started(tried), T)])
            tx.set_execution_error(created.id, execution_error("a", None, "X", "y"))
            raise RuntimeError("rolled back")
        assert len(stores.outbox(created.id)) == 1
        got = stores.executions.get(created.id)
        assert got is not None and got.error is None
        with stores.ledger.transaction() as tx:
            tx.lock_execution(created.id)
            tx.append_events(created.id, [(events.step_started(tried), T),
                                          (events.step_started(tried), T)])
        with stores.ledger.transaction() as tx:  # not locked: numbered on all the same
            tx.append_events(created.id, [(events.step_started(tried), T)])
        envelopes = stores.outbox(created.id)
        assert [(e["sequence"], e["time"]) for e in envelopes[1:]] == [
            (2, T_ISO), (3, T_ISO), (4, T_ISO)]
        assert envelopes[1]["data"] == {"saga_id": saga.id, "step_id": "a", "attempt": 1,
                                        "phase": "action", "started_at": T_ISO,
                                        "duration_ms": 0}

    # -- the step events, as the step runtime writes them through the ledger ------------------

    def test_the_step_runtimes_events_carry_every_field(self, stores: Stores) -> None:
        saga = _store_saga(stores)
        run = _Runtime(stores)
        shapes = {s.step_id: (s.group, s.kind.value) for s in _shapes(saga)}

        def record(step_id: str, status: str, action: int, compensation: int = 0, *,
                   error: dict[str, Any] | None = None, ended: bool = True,
                   compensated: bool = False) -> dict[str, Any]:
            group, kind = shapes[step_id]
            return {"status": status, "action_attempts": action,
                    "compensation_attempts": compensation, "group": group, "kind": kind,
                    "error": error, "started_at": T_ISO, "ended_at": T_ISO if ended else None,
                    "compensated_at": T_ISO if compensated else None, "waiting": None,
                    "condition": None, "fanout": None, "item": None,
                    "child": None}

        def base(step_id: str, attempt: int, phase: Phase = Phase.ACTION, *,
                 sent: bool = True) -> dict[str, Any]:
            # sent: the attempt resolved its input (the execution's: no mapping), so its
            # events carry it.
            return {"saga_id": saga.id, "step_id": step_id, "attempt": attempt,
                    "phase": phase.value, "started_at": T_ISO, "duration_ms": 0,
                    **({"input": {"sku": "A-1", "n": 2}} if sent else {})}

        busy = {"type": "RetryableError", "message": "busy"}
        failed_b = execution_error("b", Phase.ACTION, "RetryableError", "busy")
        x = _create(stores, saga).id
        run.deliver(x, "a")
        run.actions.fail["act.b"] = RetryableError("busy")
        run.deliver(x, "b", raises=RetryableError)
        run.deliver(x, "b", raises=RetryableError)
        run.deliver(x, "c", raises=StepAborted)
        run.deliver(x, "a", Phase.COMPENSATION, last=True,
                    error={"Error": "RetryableError", "Cause": "busy"})
        assert _data(stores, x)[1:] == [
            (event_types.STEP_STARTED, base("a", 1)),
            (event_types.STEP_SUCCEEDED, {**base("a", 1), "result": {"by": "act.a"},
                                     "step": record("a", "SUCCEEDED", 1)}),
            (event_types.STEP_RETRIED, {**base("b", 1), "error": busy, "outcome": "failed",
                                   "step": record("b", "RUNNING", 1, error=busy)}),
            (event_types.STEP_FAILED, {**base("b", 2), "error": busy, "outcome": "failed",
                                  "execution_error": failed_b,
                                  "step": record("b", "FAILED", 2, error=busy)}),
            (event_types.STEP_ABORTED, {**base("c", 1, sent=False), "error": {
                "type": "StepAborted",
                "message": "step c starts no new attempt: another step of its execution "
                           "failed for good"}}),
            (event_types.COMPENSATION_STARTED, {"saga_id": saga.id, "status": "COMPENSATING",
                                           "cause": failed_b, "execution_error": failed_b}),
            (event_types.STEP_COMPENSATED, {
                **base("a", 1, Phase.COMPENSATION), "result": {"by": "undo.a"},
                "step": record("a", "COMPENSATED", 1, 1, compensated=True)}),
            (event_types.SAGA_COMPENSATED, {"saga_id": saga.id, "status": "COMPENSATED"})]

        unknown_a = {"type": OUTCOME_UNKNOWN, "message": "cut"}
        y = _create(stores, saga).id
        run.actions.fail["act.a"] = OutcomeUnknown("cut", result={"late": 1})
        run.actions.fail["undo.a"] = PermanentError("no way back")
        run.deliver(y, "a", raises=OutcomeUnknown)
        run.deliver(y, "a", Phase.COMPENSATION, raises=PermanentError)
        undo_failed = {"type": "PermanentError", "message": "no way back"}
        failed_undo = execution_error("a", Phase.COMPENSATION, "PermanentError",
                                      "no way back")
        assert run.record(y, ExecutionStatus.COMPENSATION_FAILED) == {
            "status": "COMPENSATION_FAILED"}
        assert _data(stores, y)[1:] == [
            (event_types.STEP_OUTCOME_UNKNOWN, {
                **base("a", 1), "error": unknown_a, "outcome": "unknown",
                "result": {"late": 1},
                "execution_error": execution_error("a", Phase.ACTION, OUTCOME_UNKNOWN, "cut"),
                "step": record("a", "OUTCOME_UNKNOWN", 1, error=unknown_a)}),
            (event_types.STEP_COMPENSATION_FAILED, {
                **base("a", 1, Phase.COMPENSATION), "error": undo_failed, "outcome": "failed",
                "execution_error": failed_undo,
                "step": record("a", "COMPENSATION_FAILED", 1, 1, error=undo_failed)}),
            (event_types.COMPENSATION_FAILED, {
                "saga_id": saga.id, "status": "COMPENSATION_FAILED",
                "execution_error": {**failed_undo, "failed_steps": ["a"]}})]

        z = _create(stores, saga).id
        assert run.record(z, ExecutionStatus.COMPLETED) == {"status": "COMPLETED"}
        assert _last(stores, z) == (event_types.SAGA_COMPLETED, {
            "saga_id": saga.id, "status": "COMPLETED", "execution_error": None,
            "output": None, "output_error": None})
        assert [e["sequence"] for e in stores.outbox(x)] == list(range(1, 10))

    # -- when an execution is next expected to move (the reconciler's cue) ---------------------

    def test_expect_by_keeps_what_an_attempt_may_still_need(self, stores: Stores) -> None:
        saga = _store_saga(stores)
        x = _create(stores, saga, started_at=T).id
        assert stores.expected_by(x) == T  # its first step is due at once
        with stores.ledger.transaction() as tx:
            tx.lock_execution(x)
            # Attempts of a parallel group admitted side by side, the one due later first:
            # the group moves on when the last of them ends.
            assert tx.claim_attempt(x, "a", phase=Phase.ACTION, deadline=T + 30 * SECOND,
                                    expect_by=T + 35 * SECOND) == 1
            assert tx.claim_attempt(x, "b", phase=Phase.ACTION, deadline=T + 15 * SECOND,
                                    expect_by=T + 20 * SECOND) == 1
            assert tx.claim_attempt(x, "b", phase=Phase.ACTION, deadline=T + 16 * SECOND,
                                    expect_by=T + 21 * SECOND) == 2
        assert stores.expected_by(x) == T + 35 * SECOND
        with stores.ledger.transaction() as tx:
            step = tx.lock_step(x, "b")
            assert step is not None and step.action_deadline == T + 16 * SECOND
        wait = T + timedelta(days=30)
        with stores.ledger.transaction() as tx:  # not locked before: it locks the row itself
            tx.expect_by(x, wait)  # a step starts waiting
        assert stores.expected_by(x) == wait
        with pytest.raises(RuntimeError), stores.ledger.transaction() as tx:
            tx.lock_execution(x)
            tx.expect_by(x, wait + timedelta(days=1))
            raise RuntimeError("rolled back")
        assert stores.expected_by(x) == wait
        # The wait ended early and the next step's attempt is admitted: the wait's moment
        # gives way, kept only as far as an attempt may still run past the new one.
        after = T + timedelta(hours=1)
        with stores.ledger.transaction() as tx:  # not locked before
            assert tx.claim_attempt(x, "c", phase=Phase.COMPENSATION, deadline=after,
                                    expect_by=after) == 1
        assert stores.expected_by(x) == after + expected_by.ATTEMPT_SPAN
        with stores.ledger.transaction() as tx:
            tx.lock_execution(x)
            tx.expect_by(x, after)  # within what an attempt may need: kept
        assert stores.expected_by(x) == after + expected_by.ATTEMPT_SPAN
        # Ended: nothing more is expected, and nothing is kept for it.
        stores.executions.transition(x, {ExecutionStatus.RUNNING}, ExecutionStatus.COMPLETED,
                                     event_types.SAGA_COMPLETED, {})
        assert stores.expected_by(x) is None
        with stores.ledger.transaction() as tx:
            tx.lock_execution(x)
            tx.expect_by(x, after)
        assert stores.expected_by(x) is None
        # An operator's compensation makes it active again: due at once.
        moved = stores.executions.transition(
            x, {ExecutionStatus.COMPLETED}, ExecutionStatus.COMPENSATING,
            event_types.COMPENSATION_STARTED, {}, by_operator=True)
        assert moved is not None
        again = stores.expected_by(x)
        assert again is not None and abs(again - datetime.now(UTC)) < timedelta(minutes=1)
        with stores.ledger.transaction() as tx:
            tx.expect_by(_id("none"), after)  # no such execution: nothing to do

    def test_a_step_run_ending_the_execution_clears_its_expected_moment(
            self, stores: Stores) -> None:
        saga = _store_saga(stores)
        x = _create(stores, saga).id
        with stores.ledger.transaction() as tx:
            tx.lock_execution(x)
            tx.lock_step(x, "a")
            assert tx.claim_attempt(x, "a", phase=Phase.ACTION, deadline=T,
                                    expect_by=T + timedelta(seconds=5)) == 1
            assert tx.set_execution_status(x, ExecutionStatus.FAILED, at=T) is True
            # Ended in this transaction: nothing more is kept.
            tx.expect_by(x, T + timedelta(days=1))
            assert tx.claim_attempt(x, "a", phase=Phase.COMPENSATION, deadline=T,
                                    expect_by=T + timedelta(days=1)) == 1
        assert stores.expected_by(x) is None

    def test_unsettled_lists_only_executions_past_their_expected_moment(
            self, stores: Stores) -> None:
        saga = _store_saga(stores)
        waiting, lost, lost_earlier, undoing, fresh, ended = (
            _create(stores, saga) for _ in range(6))
        for execution, seconds in ((waiting, 7200), (lost, 3600), (lost_earlier, 9000),
                                   (undoing, 5400), (ended, 9000)):
            stores.age(execution.id, seconds)
        # Unchanged for two hours, but waiting for a day more (a callback, a timer).
        with stores.ledger.transaction() as tx:
            tx.lock_execution(waiting.id)
            tx.expect_by(waiting.id, datetime.now(UTC) + timedelta(days=1))
        stores.executions.transition(undoing.id, {ExecutionStatus.RUNNING},
                                     ExecutionStatus.COMPENSATING,
                                     event_types.COMPENSATION_STARTED, {})
        stores.executions.transition(ended.id, {ExecutionStatus.RUNNING},
                                     ExecutionStatus.COMPLETED, event_types.SAGA_COMPLETED, {})
        ours = {e.id for e in (waiting, lost, lost_earlier, undoing, fresh, ended)}
        listed = [e.id for e in stores.executions.unsettled(600, 10_000) if e.id in ours]
        # The longest overdue first; the move to COMPENSATING kept the moment it had.
        assert listed == [lost_earlier.id, undoing.id, lost.id]
        assert [e.id for e in stores.executions.unsettled(4000, 10_000) if e.id in ours] == [
            lost_earlier.id, undoing.id]


@dataclass
class _Actions:
    """Each action answers {"by": its name}, or raises what `fail` says for it."""

    fail: dict[str, Exception]

    def resolve(self, name: str) -> Callable[[StepContext], dict[str, Any]]:
        def run(ctx: StepContext) -> dict[str, Any]:
            if name in self.fail:
                raise self.fail[name]
            return {"by": name}

        return run


class _Runtime:
    """The step runtime and the recorder over the stores' ledger, on a clock fixed at T."""

    def __init__(self, stores: Stores) -> None:
        self.actions = _Actions({})
        self.runtime = AttemptRunner(stores.ledger, stores.definitions, self.actions.resolve,
                                     clock=lambda: T, monotonic=lambda: 0.0,
                                     sleep=lambda seconds: None)
        self.recorder = OutcomeRecorder(stores.ledger, stores.definitions, clock=lambda: T)

    def deliver(self, execution_id: str, step_id: str, phase: Phase = Phase.ACTION, *,
                raises: type[Exception] | None = None, **extra: Any) -> None:
        payload = {"execution_id": execution_id, "step_id": step_id, "phase": phase.value,
                   **extra}
        if raises is None:
            run_step(self.runtime, payload)
            return
        with pytest.raises(raises):
            run_step(self.runtime, payload)

    def record(self, execution_id: str, outcome: ExecutionStatus) -> dict[str, Any]:
        return record_end(self.recorder, {"execution_id": execution_id,
                                          "outcome": outcome.value})
