"""The Reconciler against the in-memory store and a scripted engine: what it repairs, what it
leaves, and the events its repairs write."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from chalicelib.domain import event_types
from chalicelib.domain.executions import Execution, StepRun
from chalicelib.domain.lifecycle import ExecutionStatus, RunStatus, StepStatus
from chalicelib.domain.models import StoredSaga
from chalicelib.testing import InMemoryExecutionStore, ScriptedEngine
from chalicelib.usecases.ports import RunKind, RunState
from chalicelib.usecases.reconciler import Reconciler

OLD = datetime.now(UTC) - timedelta(minutes=10)
PAY = StoredSaga(id="pay", name="Pay", description="pay for it", version="1.0.0", revision=1,
                 steps=[], active=True, created_at=OLD, updated_at=OLD, version_created_at=OLD)


def _stale(store: InMemoryExecutionStore, engine: ScriptedEngine,
           execution_id: str, *, started: bool = True, recorded: bool = True,
           status: ExecutionStatus = ExecutionStatus.RUNNING,
           steps: tuple[StepStatus, ...] = ()) -> None:
    run = engine.start(PAY, execution_id, RunKind.FORWARD) if started else None
    store.put(Execution(
        id=execution_id, saga_id="pay", revision=1, version="1.0.0", status=status, input={},
        state_machine_arn=run.where if run else None,
        sfn_execution_arn=run.run if run and recorded else None,
        started_at=OLD, updated_at=OLD,
        steps=[StepRun(step_id=f"s{i}", position=i, status=s)
               for i, s in enumerate(steps, start=1)]))


def test_each_way_a_run_ends_is_recorded_and_a_running_one_is_left() -> None:
    store, engine = InMemoryExecutionStore(), ScriptedEngine()
    engine.script = {
        "done": RunState(RunStatus.SUCCEEDED),
        "undone": RunState(RunStatus.FAILED, "Saga.Compensated"),
        "late": RunState(RunStatus.TIMED_OUT),
        "broken": RunState(RunStatus.ABORTED),
        "going": RunState(RunStatus.RUNNING),
    }
    for name in engine.script:
        _stale(store, engine, name, steps=(StepStatus.SUCCEEDED,),
               status=ExecutionStatus.COMPENSATING if name == "undone"
               else ExecutionStatus.RUNNING)
    _stale(store, engine, "never", started=False)
    _stale(store, engine, "unrecorded", recorded=False)  # started, its ARN not stored
    engine.script["unrecorded"] = RunState(RunStatus.SUCCEEDED)
    repairs = {r.execution_id: r.now for r in Reconciler(store, engine,
                                                         grace_seconds=60).run()}
    assert repairs == {
        "done": ExecutionStatus.COMPLETED, "undone": ExecutionStatus.COMPENSATED,
        "late": ExecutionStatus.TIMED_OUT, "broken": ExecutionStatus.COMPENSATION_FAILED,
        "never": ExecutionStatus.FAILED, "unrecorded": ExecutionStatus.COMPLETED}
    assert store.get("going").status is ExecutionStatus.RUNNING  # type: ignore[union-attr]
    kinds = {e["key"]: e["type"] for e in store.events}
    assert kinds["done"] == event_types.SAGA_COMPLETED
    assert kinds["late"] == event_types.SAGA_FAILED
    assert kinds["broken"] == event_types.COMPENSATION_FAILED
    never = store.get("never")
    assert never is not None and never.error is not None and never.ended_at is not None
    assert "never started" in never.error.message
    assert all(e["data"]["reconciled"] for e in store.events if e["key"] == "done")


def test_recent_executions_are_left_alone_and_a_second_run_repairs_nothing() -> None:
    store, engine = InMemoryExecutionStore(), ScriptedEngine(
        default=RunState(RunStatus.SUCCEEDED))
    _stale(store, engine, "old")
    assert Reconciler(store, engine, grace_seconds=3600).run() == []
    reconciler = Reconciler(store, engine, grace_seconds=60)
    assert [r.execution_id for r in reconciler.run()] == ["old"]
    assert reconciler.run() == []


def test_an_engine_without_history_is_never_asked() -> None:
    store, engine = InMemoryExecutionStore(), ScriptedEngine(keeps_history=False)
    _stale(store, engine, "old")
    assert Reconciler(store, engine, grace_seconds=60).run() == []
    assert engine.described == []
    assert store.get("old").status is ExecutionStatus.RUNNING  # type: ignore[union-attr]


def _at(store: InMemoryExecutionStore, execution_id: str, expected_by: datetime, *,
        run: str | None = None) -> None:
    """A RUNNING execution of PAY unchanged for 10 minutes, next expected to move then."""
    store.put(Execution(
        id=execution_id, saga_id="pay", revision=1, version="1.0.0",
        status=ExecutionStatus.RUNNING, input={}, state_machine_arn="fake:pay-r1",
        sfn_execution_arn=run or f"fake:pay-r1:run:{execution_id}", started_at=OLD,
        updated_at=OLD, expected_by=expected_by))


def test_waiting_executions_cost_no_describe_and_lost_ones_are_found() -> None:
    """10,000 executions wait (a callback's partner, a timer) and have not changed for ten
    minutes: a pass describes none of them, only the three whose expected moment passed."""
    store, engine = InMemoryExecutionStore(), ScriptedEngine(
        default=RunState(RunStatus.SUCCEEDED))
    now = datetime.now(UTC)
    for n in range(10_000):
        _at(store, f"wait-{n:05d}", now + timedelta(days=1, seconds=n))
    lost = {f"lost-{n}": now - timedelta(minutes=10 + n) for n in range(3)}
    for execution_id, expected_by in lost.items():
        _at(store, execution_id, expected_by,
            run=engine.start(PAY, execution_id, RunKind.FORWARD).run)
    reconciler = Reconciler(store, engine, grace_seconds=60, describe_budget=2)
    # The longest overdue first, within the budget; the rest on the next pass.
    assert [r.execution_id for r in reconciler.run()] == ["lost-2", "lost-1"]
    assert [r.execution_id for r in reconciler.run()] == ["lost-0"]
    assert reconciler.run() == []
    assert sorted(run.execution_id for run in engine.described) == sorted(lost)
    assert store.get("wait-00000").status is ExecutionStatus.RUNNING  # type: ignore[union-attr]
