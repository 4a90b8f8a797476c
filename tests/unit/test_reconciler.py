"""What the reconciler concludes from the engine's view of a run."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from chalicelib.domain import lifecycle
from chalicelib.domain.executions import Execution, ExecutionStatus, StepRun, StepStatus
from chalicelib.usecases.ports import RunRef, RunState
from chalicelib.usecases.reconciler import Reconciler, verdict

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _execution(*step_statuses: StepStatus) -> Execution:
    return Execution(id="e", saga_id="s", revision=1, version="1.0.0",
                     status=ExecutionStatus.RUNNING, input={}, started_at=NOW, updated_at=NOW,
                     steps=[StepRun(step_id=f"s{i}", position=i, status=status)
                            for i, status in enumerate(step_statuses)])


@pytest.mark.parametrize(("run", "expected"), [
    (RunState("SUCCEEDED"), ExecutionStatus.COMPLETED),
    (RunState("MISSING"), ExecutionStatus.FAILED),
    (RunState("TIMED_OUT"), ExecutionStatus.TIMED_OUT),
    (RunState("FAILED", "Saga.Compensated"), ExecutionStatus.COMPENSATED),
    (RunState("FAILED", "Saga.CompensationFailed"), ExecutionStatus.COMPENSATION_FAILED),
    (RunState("FAILED", "Saga.Failed"), ExecutionStatus.FAILED),
])
def test_each_end_of_a_run_maps_to_a_status(run: RunState, expected: ExecutionStatus) -> None:
    found = verdict(_execution(StepStatus.SUCCEEDED), run)
    assert found is not None and found[0] is expected


def test_a_run_still_going_is_left_alone() -> None:
    assert verdict(_execution(StepStatus.SUCCEEDED), RunState("RUNNING")) is None


def test_a_broken_run_with_effects_needs_a_person_and_one_without_simply_failed() -> None:
    broken = RunState("FAILED", "States.Runtime", "bad path")
    with_effects = verdict(_execution(StepStatus.SUCCEEDED, StepStatus.PENDING), broken)
    assert with_effects is not None and with_effects[0] is ExecutionStatus.COMPENSATION_FAILED
    without = verdict(_execution(StepStatus.FAILED, StepStatus.PENDING), RunState("ABORTED"))
    assert without is not None and without[0] is ExecutionStatus.FAILED


class _Store:
    def __init__(self, executions: list[Execution]) -> None:
        self.rows = executions

    def unsettled(self, older_than_seconds: float, limit: int) -> list[Execution]:
        return [e for e in self.rows if e.status is ExecutionStatus.RUNNING][:limit]

    def get(self, execution_id: str) -> Execution | None:
        return next(e for e in self.rows if e.id == execution_id)

    def transition(self, execution_id: str, *args: object, **kwargs: object) -> object:
        return None


class _Engine:
    keeps_history = True

    def __init__(self) -> None:
        self.described: list[str | None] = []

    def describe(self, run: RunRef) -> RunState:
        self.described.append(run.run)
        return RunState("RUNNING")


def test_a_run_spends_at_most_its_describe_budget_oldest_first_and_goes_on_next_run() -> None:
    rows = [Execution(id=f"e{i:02}", saga_id="s", revision=1, version="1.0.0",
                      status=ExecutionStatus.RUNNING, input={}, started_at=NOW,
                      updated_at=NOW, sfn_execution_arn=f"arn:e{i:02}", steps=[])
            for i in range(25)]
    engine = _Engine()
    reconciler = Reconciler(_Store(rows), engine, grace_seconds=0,  # type: ignore[arg-type]
                            describe_budget=10)
    reconciler.run()
    assert engine.described == [f"arn:e{i:02}" for i in range(10)]
    reconciler.run()
    reconciler.run()
    assert engine.described[10:] == [f"arn:e{i:02}" for i in range(10, 25)]
    reconciler.run()  # all looked at: a new round from the oldest
    assert engine.described[25:] == [f"arn:e{i:02}" for i in range(10)]


@pytest.mark.parametrize("source", [ExecutionStatus.RUNNING, ExecutionStatus.COMPENSATING])
@pytest.mark.parametrize("run", [
    RunState("SUCCEEDED"), RunState("MISSING"), RunState("TIMED_OUT"), RunState("ABORTED"),
    RunState("FAILED", "States.Runtime"),
    *(RunState("FAILED", end.error) for end in lifecycle.ENDS)])
def test_every_ended_run_closes_its_execution_whatever_path_it_took(
        source: ExecutionStatus, run: RunState) -> None:
    """A run that ended Saga.Compensated while the write model still says RUNNING (every undo
    skipped, or the recorder never ran) was once refused: RUNNING -> COMPENSATED was not in
    the table. Every ending is reachable from every status still going, so the execution
    store's guarded move always lands."""
    execution = _execution(StepStatus.SUCCEEDED).model_copy(update={"status": source})
    found = verdict(execution, run)
    assert found is not None
    target, event_type, _ = found
    if source is ExecutionStatus.COMPENSATING and target in (ExecutionStatus.COMPLETED,
                                                             ExecutionStatus.PARKED):
        return  # an undo never succeeds nor parks: only forward runs do
    assert lifecycle.can_transition(source, target), (source, target)
    assert lifecycle.EVENT_OF[target] == event_type
