"""The in-memory engine keeps the Engine port's contract as the Step Functions one does: run
names, refs a store can keep and describe later, and waiting steps answered by token."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from chalicelib.domain.lifecycle import RunStatus
from chalicelib.domain.models import StoredSaga
from chalicelib.testing import ScriptedEngine
from chalicelib.testing.orchestrator import Answer, EngineDown
from chalicelib.usecases.ports import RunKind, RunRef, RunState, WaitGone

AT = datetime(2026, 1, 1, tzinfo=UTC)
SAGA = StoredSaga(id="pay", name="Pay", description="pay for it", version="1.0.0", revision=2,
                  steps=[], active=True, created_at=AT, updated_at=AT, version_created_at=AT)


def test_runs_are_named_like_the_real_ones_and_found_from_their_kept_parts() -> None:
    engine = ScriptedEngine(script={"e-1": RunState(RunStatus.SUCCEEDED)})
    forward = engine.start(SAGA, "e-1", RunKind.FORWARD)
    undo = engine.start(SAGA, "e-1", RunKind.COMPENSATION)
    resumed = engine.start(SAGA, "e-1", RunKind.RESUME, at_step="ship")
    assert [s.run_name for s in engine.starts] == ["e-1", "e-1-c2", "e-1-f3"]
    assert engine.plan(SAGA, "e-1") == RunRef("e-1", forward.where)
    assert undo.where != forward.where == resumed.where
    assert engine.describe(forward) == RunState(RunStatus.SUCCEEDED)
    # A ref without its run (the start not recorded) is the forward run.
    assert engine.describe(RunRef("e-1", forward.where)) == RunState(RunStatus.SUCCEEDED)
    assert engine.describe(undo) == engine.default
    assert engine.describe(RunRef("never", forward.where)).status is RunStatus.MISSING


def test_a_child_run_records_its_parent() -> None:
    engine = ScriptedEngine()
    parent = engine.start(SAGA, "p-1", RunKind.FORWARD)
    engine.start(SAGA, "c-1", RunKind.FORWARD, parent=parent)
    assert engine.starts[-1].parent == parent


def test_starts_and_prepares_fail_when_told() -> None:
    engine = ScriptedEngine(fail_start=1, fail_prepare=True)
    with pytest.raises(EngineDown):
        engine.start(SAGA, "e-1", RunKind.FORWARD)
    with pytest.raises(EngineDown):
        engine.prepare(SAGA)
    assert engine.start(SAGA, "e-1", RunKind.FORWARD).run is not None


def test_a_waiting_step_hears_heartbeats_then_one_end_and_nothing_after() -> None:
    engine = ScriptedEngine()
    ok, bad = engine.wait("t-ok"), engine.wait("t-bad")
    engine.heartbeat(ok)
    engine.complete_step(ok, {"paid": True})
    engine.fail_step(bad, "Saga.Failed", "refused")
    assert engine.answers == [Answer(ok, "heartbeat"),
                              Answer(ok, "succeeded", output={"paid": True}),
                              Answer(bad, "failed", error="Saga.Failed", cause="refused")]
    for late in (lambda: engine.heartbeat(ok), lambda: engine.complete_step(bad, {}),
                 lambda: engine.fail_step("unknown", "Saga.Failed", "x")):
        with pytest.raises(WaitGone):
            late()


def test_an_engine_without_history_refuses_to_describe() -> None:
    engine = ScriptedEngine(keeps_history=False)
    run = engine.start(SAGA, "e-1", RunKind.FORWARD)
    with pytest.raises(AssertionError):
        engine.describe(run)
