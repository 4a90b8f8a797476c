"""The step runtime driven through the in-memory step ledger: deliveries, duplicates, late
deliveries, participants' two transactions, failures with their attempts, compensation and the
recorder, with no server."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from chalicelib.domain import event_types
from chalicelib.domain.lifecycle import (
    COMPENSATION_RETRY,
    TASK_TIMEOUT,
    ExecutionStatus,
    Outcome,
    Phase,
    StepStatus,
)
from chalicelib.domain.step_context import PermanentError, RetryableError, StepContext
from chalicelib.roots.step_handler import record_end, run_step
from chalicelib.usecases.steps.failures import StepAborted
from chalicelib.usecases.steps.recorder import OutcomeRecorder
from tests.support.step_world import PARTICIPANT, World, build_world

SAGA = {
    "id": "shop", "name": "Shop", "description": "reserve, pay, notify", "version": "1.0.0",
    "steps": [
        {"id": "reserve", "name": "Reserve", "description": "stock", "order": 1,
         "action": "reserve_stock", "compensation": "release_stock", "max_retries": 2,
         "timeout": "30s"},
        {"id": "pay", "name": "Pay", "description": "a participant", "order": 2,
         "action": PARTICIPANT, "compensation": PARTICIPANT, "max_retries": 1,
         "timeout": "30s"},
        {"id": "notify", "name": "Notify", "description": "mail", "order": 3,
         "action": "send_note", "compensation": "retract_note", "max_retries": 0,
         "timeout": "10s"},
    ]}


def _world(*, faults: list[dict[str, Any]] | None = None) -> World:
    return build_world(SAGA, faults=faults)


@pytest.fixture
def world() -> World:
    return _world()


def _fail(error: Exception, times: int = 1) -> Callable[[StepContext], None]:
    left = [times]

    def run(ctx: StepContext) -> None:
        if left[0] > 0:
            left[0] -= 1
            raise error

    return run


# -- deliveries -------------------------------------------------------------------------------

def test_a_first_delivery_runs_its_action_and_records_it_in_the_same_transaction(
        world: World) -> None:
    answer = world.deliver("reserve")
    assert answer == {"status": "ok", "result": {"by": "reserve_stock", "attempt": 1}}
    # A built-in action runs inside the ledger's one transaction, with the locks held.
    assert world.actions.calls == [("reserve_stock", Phase.ACTION, 1, True)]
    assert world.ledger.transactions == 1
    assert world.ledger.effects == [("INSERT INTO effects VALUES (%s, %s)",
                                     ("reserve_stock", "reserve"))]
    step = world.step("reserve")
    assert step.status is StepStatus.SUCCEEDED
    assert step.result == {"by": "reserve_stock", "attempt": 1}
    assert step.action_attempts == 1 and step.ended_at == world.clock.wall
    assert [(a.phase, a.attempt, a.outcome) for a in step.attempts] == [
        (Phase.ACTION, 1, Outcome.SUCCEEDED)]
    assert world.event_types() == [event_types.EXECUTION_STARTED, event_types.STEP_STARTED,
                                   event_types.STEP_SUCCEEDED]
    succeeded = world.events_of(event_types.STEP_SUCCEEDED)[0]
    assert [e["sequence"] for e in world.store.events] == [1, 2, 3]
    assert succeeded["data"]["step"]["status"] == StepStatus.SUCCEEDED
    assert succeeded["data"]["step"]["action_attempts"] == 1
    assert succeeded["data"]["result"] == {"by": "reserve_stock", "attempt": 1}
    assert world.execution().status is ExecutionStatus.RUNNING  # steps never complete it


def test_a_repeated_delivery_of_a_completed_step_is_a_duplicate_and_does_not_run(
        world: World) -> None:
    world.deliver("reserve")
    before = (list(world.store.events), list(world.ledger.effects))
    assert world.deliver("reserve") == {"status": StepStatus.SUCCEEDED.value, "duplicate": True}
    assert world.actions.ran("reserve_stock") == 1
    assert (world.store.events, world.ledger.effects) == before
    assert len(world.step("reserve").attempts) == 1


def test_the_second_attempt_after_a_retry_does_not_start_the_step_again(world: World) -> None:
    world.actions.script["reserve_stock"] = _fail(RetryableError("stock service busy"))
    with pytest.raises(RetryableError):
        world.deliver("reserve")
    world.deliver("reserve")
    assert world.event_types().count(event_types.STEP_STARTED) == 0  # only a first attempt says so
    assert world.step("reserve").status is StepStatus.SUCCEEDED
    assert [(a.attempt, a.outcome) for a in world.step("reserve").attempts] == [
        (1, Outcome.FAILED), (2, Outcome.SUCCEEDED)]


@pytest.mark.parametrize("ended", [ExecutionStatus.FAILED, ExecutionStatus.COMPENSATED,
                                   ExecutionStatus.COMPENSATING])
def test_a_late_delivery_after_the_execution_moved_on_is_refused(
        world: World, ended: ExecutionStatus) -> None:
    world.set_status(ended)
    before = world.event_types()
    with pytest.raises(StepAborted, match="cannot run: it is pending"):
        world.deliver("reserve")
    assert world.actions.calls == [] and world.ledger.effects == []
    step = world.step("reserve")
    assert step.status is StepStatus.PENDING and step.action_attempts == 0
    assert world.execution().status is ended
    if ended.is_final:
        # Final is final: a late attempt is logged, not recorded; no event follows the end.
        assert step.attempts == [] and world.event_types() == before
        return
    # While it is being undone the refused attempt is on record, and told, but changes no
    # status.
    assert [(a.outcome, a.error_type) for a in step.attempts] == [
        (Outcome.FAILED, StepAborted.__name__)]
    assert world.event_types()[-1] == event_types.STEP_ABORTED


def test_an_action_whose_step_was_compensated_first_is_refused(world: World) -> None:
    world.set_status(ExecutionStatus.COMPENSATING, {"reserve": StepStatus.COMPENSATED})
    with pytest.raises(StepAborted, match="was compensated before it could run"):
        world.deliver("reserve")
    assert world.actions.calls == []
    assert world.step("reserve").status is StepStatus.COMPENSATED


def test_an_action_that_outlived_its_timeout_is_rolled_back(world: World) -> None:
    def slow(ctx: StepContext) -> None:
        world.clock.mono += 31  # past the step's 30 s

    world.actions.script["reserve_stock"] = slow
    with pytest.raises(RetryableError, match="outlived its timeout of 30s"):
        world.deliver("reserve")
    assert world.actions.ran("reserve_stock") == 1
    assert world.ledger.effects == []  # its effect went with the rollback
    # It did nothing, so it fails like any attempt and is retried (max_retries 2).
    step = world.step("reserve")
    assert step.status is StepStatus.RUNNING and step.result is None
    assert [(a.attempt, a.outcome) for a in step.attempts] == [(1, Outcome.FAILED)]


def test_unknown_executions_and_steps_are_permanent_errors(world: World) -> None:
    with pytest.raises(PermanentError, match="no execution 'nope'"):
        run_step(world.runtime,
                 {"execution_id": "nope", "step_id": "reserve", "phase": "action"})
    with pytest.raises(PermanentError, match="has no step 'ghost'"):
        world.deliver("ghost")
    assert world.actions.calls == []


# -- participants -----------------------------------------------------------------------------

def test_a_participant_is_claimed_then_recorded_in_two_transactions(world: World) -> None:
    world.deliver("reserve")
    committed = world.ledger.transactions

    def no_cursor(ctx: StepContext) -> None:
        with pytest.raises(RuntimeError, match="outside the step's transaction"):
            ctx.cursor.execute("SELECT 1")

    world.actions.script[PARTICIPANT] = no_cursor
    answer = world.deliver("pay")
    assert answer == {"status": "ok", "result": {"by": PARTICIPANT, "attempt": 1}}
    # Called with no lock held, between the claim and the record.
    assert world.actions.calls[-1] == (PARTICIPANT, Phase.ACTION, 1, False)
    assert world.ledger.transactions == committed + 2
    step = world.step("pay")
    assert step.status is StepStatus.SUCCEEDED and step.result == answer["result"]
    assert [(a.attempt, a.outcome) for a in step.attempts] == [(1, Outcome.SUCCEEDED)]
    assert world.event_types()[-2:] == [event_types.STEP_STARTED, event_types.STEP_SUCCEEDED]


def test_a_participants_success_after_the_execution_ended_is_undone_with_its_result(
        world: World) -> None:
    # Another writer ends the execution while the participant is being called (no lock).
    def ended_meanwhile(ctx: StepContext) -> None:
        if ctx.phase == Phase.ACTION:
            world.set_status(ExecutionStatus.FAILED)

    world.actions.script[PARTICIPANT] = ended_meanwhile
    before = world.event_types()
    with pytest.raises(StepAborted):
        world.deliver("pay")
    # The late success is compensated at once, sent its own result.
    assert [(name, phase) for name, phase, _, _ in world.actions.calls] == [
        (PARTICIPANT, Phase.ACTION), (PARTICIPANT, Phase.COMPENSATION)]
    step = world.step("pay")
    assert step.status is StepStatus.PENDING and step.result is None
    # Final is final: logged, not recorded, and no event follows the execution's end.
    assert step.attempts == [] and world.event_types() == before
    assert world.execution().status is ExecutionStatus.FAILED


def test_a_repeated_delivery_that_recorded_the_participant_meanwhile_wins(
        world: World) -> None:
    inner: list[dict[str, Any]] = []

    def redelivered(ctx: StepContext) -> None:
        if not inner:  # the first call: a second delivery overtakes it and records
            inner.append({})
            inner[0] = world.deliver("pay")

    world.actions.script[PARTICIPANT] = redelivered
    outer = world.deliver("pay")
    assert inner[0]["status"] == "ok"
    assert outer == {"status": StepStatus.SUCCEEDED.value, "duplicate": True}
    step = world.step("pay")
    # Each delivery was numbered as it was admitted: the overtaking one is the second.
    assert [(a.attempt, a.outcome) for a in step.attempts] == [(2, Outcome.SUCCEEDED)]
    assert world.event_types().count(event_types.STEP_SUCCEEDED) == 1


# -- failures ---------------------------------------------------------------------------------

def test_a_failure_is_rolled_back_and_recorded_with_its_attempt(world: World) -> None:
    world.actions.script["reserve_stock"] = _fail(RetryableError("stock service busy\nTrace"))
    with pytest.raises(RetryableError):
        world.deliver("reserve")
    assert world.ledger.effects == []  # the attempt's own write was rolled back
    step = world.step("reserve")
    assert step.status is StepStatus.RUNNING  # retried: max_retries is 2
    assert step.action_attempts == 1
    assert step.error == {"type": "RetryableError", "message": "stock service busy"}
    assert [(a.attempt, a.outcome, a.error_type, a.error_message) for a in step.attempts] == [
        (1, Outcome.FAILED, "RetryableError", "stock service busy")]
    retried = world.events_of(event_types.STEP_RETRIED)[0]["data"]
    assert retried["attempt"] == 1 and retried["phase"] == Phase.ACTION
    assert "execution_error" not in retried
    assert world.execution().error is None


def test_the_last_failed_attempt_fails_the_step_and_says_why_the_execution_will_not_complete(
        world: World) -> None:
    world.actions.script["reserve_stock"] = _fail(RetryableError("stock service busy"), 3)
    for _ in range(3):
        with pytest.raises(RetryableError):
            world.deliver("reserve")
    step = world.step("reserve")
    assert step.status is StepStatus.FAILED
    assert [a.attempt for a in step.attempts] == [1, 2, 3]
    assert world.event_types()[-3:] == [event_types.STEP_RETRIED, event_types.STEP_RETRIED,
                                        event_types.STEP_FAILED]
    failed = world.events_of(event_types.STEP_FAILED)[0]["data"]
    cause = {"step_id": "reserve", "phase": Phase.ACTION.value, "type": "RetryableError",
             "message": "stock service busy"}
    assert failed["execution_error"] == cause and failed["step"]["status"] == StepStatus.FAILED
    error = world.execution().error
    assert error is not None and error.model_dump() == cause
    # A delivery after that is refused.
    with pytest.raises(StepAborted):
        world.deliver("reserve")


def test_a_permanent_error_is_not_retried(world: World) -> None:
    world.actions.script["reserve_stock"] = _fail(PermanentError("unknown SKU"))
    with pytest.raises(PermanentError):
        world.deliver("reserve")
    assert world.step("reserve").status is StepStatus.FAILED
    assert world.event_types()[-1] == event_types.STEP_FAILED


def test_an_injected_fault_fails_before_the_action_runs(world: World) -> None:
    faulty = _world(faults=[{"step_id": "reserve", "error": "StockDown", "times": 1,
                             "delay": "2s"}])
    start = faulty.clock.mono
    with pytest.raises(Exception, match="injected StockDown on attempt 1") as raised:
        faulty.deliver("reserve")
    assert type(raised.value).__name__ == "StockDown"  # Lambda reports the class name
    assert faulty.clock.mono - start == 2  # the delay was slept first
    assert faulty.actions.calls == []
    assert faulty.step("reserve").attempts[0].error_type == "StockDown"
    assert faulty.deliver("reserve")["status"] == "ok"
    assert faulty.actions.ran("reserve_stock") == 1


# -- compensation -----------------------------------------------------------------------------

def _failed_at_notify(world: World) -> None:
    world.deliver("reserve")
    world.deliver("pay")
    world.actions.script["send_note"] = _fail(PermanentError("mailbox gone"))
    with pytest.raises(PermanentError):
        world.deliver("notify")


def test_the_compensation_phase_undoes_in_reverse_and_ends_the_execution(
        world: World) -> None:
    _failed_at_notify(world)
    marker = len(world.store.events)
    undo_pay = world.deliver("pay", Phase.COMPENSATION)
    assert undo_pay["status"] == "ok"
    assert world.actions.calls[-1] == (PARTICIPANT, Phase.COMPENSATION, 1, False)
    # The first undo of a forward run starts compensating, with the failing step's cause.
    execution = world.execution()
    assert execution.status is ExecutionStatus.COMPENSATING
    started = world.events_of(event_types.COMPENSATION_STARTED)[0]["data"]
    assert started["cause"]["step_id"] == "notify"
    assert started["cause"]["message"] == "mailbox gone"
    world.deliver("reserve", Phase.COMPENSATION, last=True)
    assert world.actions.calls[-1] == ("release_stock", Phase.COMPENSATION, 1, True)
    assert [e["type"] for e in world.store.events[marker:]] == [
        event_types.COMPENSATION_STARTED, event_types.STEP_COMPENSATED,
        event_types.STEP_COMPENSATED, event_types.SAGA_COMPENSATED]
    execution = world.execution()
    assert execution.status is ExecutionStatus.COMPENSATED and execution.ended_at is not None
    for step_id in ("reserve", "pay"):
        step = world.step(step_id)
        assert step.status is StepStatus.COMPENSATED and step.compensation_attempts == 1
        assert step.compensated_at == world.clock.wall
        assert step.attempts[-1].phase == Phase.COMPENSATION
    assert world.step("notify").status is StepStatus.FAILED
    # A repeated last undo is skipped, and ends nothing twice.
    assert world.deliver("reserve", Phase.COMPENSATION, last=True) == {
        "status": StepStatus.COMPENSATED.value, "skipped": True}
    assert world.actions.ran("release_stock") == 1
    assert world.event_types().count(event_types.SAGA_COMPENSATED) == 1


def test_a_compensation_only_run_skips_steps_that_never_ran(world: World) -> None:
    world.deliver("reserve")
    world.set_status(ExecutionStatus.COMPENSATING)  # an operator's compensate
    answer = world.deliver("pay", Phase.COMPENSATION, skip_undone=True)
    assert answer == {"status": StepStatus.PENDING.value, "skipped": True}
    assert world.actions.ran(PARTICIPANT) == 0
    world.deliver("reserve", Phase.COMPENSATION, skip_undone=True, last=True)
    assert world.execution().status is ExecutionStatus.COMPENSATED
    assert event_types.COMPENSATION_STARTED not in world.event_types()  # the operator's said so


@pytest.mark.parametrize(("error", "blamed"), [(TASK_TIMEOUT, "reserve"),
                                               ("Lambda.Unknown", "pay")])
def test_an_undo_with_no_recorded_failure_blames_the_machines_error(
        world: World, error: str, blamed: str) -> None:
    # The step after the one undone crashed (nothing recorded), or this one timed out.
    world.deliver("reserve")
    world.deliver("reserve", Phase.COMPENSATION, error={"Error": error, "Cause": "gone"})
    cause = world.events_of(event_types.COMPENSATION_STARTED)[0]["data"]["cause"]
    assert cause == {"step_id": blamed, "phase": Phase.ACTION.value, "type": error,
                     "message": "gone"}
    assert world.execution().error is not None
    assert world.execution().error.step_id == blamed  # type: ignore[union-attr]


def test_a_failing_compensation_is_retried_then_fails_for_good(world: World) -> None:
    world.deliver("reserve")
    world.set_status(ExecutionStatus.COMPENSATING)
    attempts = COMPENSATION_RETRY.retries + 1
    world.actions.script["release_stock"] = _fail(RetryableError("stock service down"),
                                                  attempts)
    for _ in range(attempts):
        with pytest.raises(RetryableError):
            world.deliver("reserve", Phase.COMPENSATION, last=True)
    step = world.step("reserve")
    assert step.status is StepStatus.COMPENSATION_FAILED
    assert step.compensation_attempts == attempts
    assert world.ledger.effects == [("INSERT INTO effects VALUES (%s, %s)",
                                     ("reserve_stock", "reserve"))]  # no undo committed
    kinds = world.event_types()
    assert kinds.count(event_types.STEP_RETRIED) == attempts - 1
    assert kinds[-1] == event_types.STEP_COMPENSATION_FAILED
    error = world.execution().error
    assert error is not None and error.phase == Phase.COMPENSATION.value
    assert world.execution().status is ExecutionStatus.COMPENSATING  # the recorder ends it


# -- the recorder -----------------------------------------------------------------------------

def test_the_recorder_records_an_end_once_and_refuses_to_rewrite_a_final_one(
        world: World) -> None:
    recorder = OutcomeRecorder(world.ledger, clock=world.clock.now)
    done = {"execution_id": "e1", "outcome": ExecutionStatus.COMPLETED.value}
    assert record_end(recorder, done) == {"status": ExecutionStatus.COMPLETED.value}
    assert record_end(recorder, done) == {"status": ExecutionStatus.COMPLETED.value,
                                          "duplicate": True}
    assert world.event_types().count(event_types.SAGA_COMPLETED) == 1
    assert world.execution().ended_at == world.clock.wall
    refused = record_end(recorder, {"execution_id": "e1",
                                    "outcome": ExecutionStatus.FAILED.value,
                                    "error": {"Error": "Saga.Failed", "Cause": "x"}})
    assert refused == {"status": ExecutionStatus.COMPLETED.value,
                       "refused": ExecutionStatus.FAILED.value}
    with pytest.raises(PermanentError):
        record_end(recorder, {"execution_id": "nope", "outcome": ExecutionStatus.FAILED.value})


def test_the_recorder_keeps_the_failing_steps_cause(world: World) -> None:
    world.actions.script["reserve_stock"] = _fail(PermanentError("unknown SKU"))
    with pytest.raises(PermanentError):
        world.deliver("reserve")
    record_end(OutcomeRecorder(world.ledger), {
        "execution_id": "e1", "outcome": ExecutionStatus.FAILED.value,
        "error": {"Error": "Saga.Failed", "Cause": "the machine's"}})
    failed = world.events_of(event_types.SAGA_FAILED)[0]["data"]
    assert failed["execution_error"]["message"] == "unknown SKU"
    assert world.execution().status is ExecutionStatus.FAILED


def test_a_chain_of_one_undo_starts_and_ends_the_compensation(world: World) -> None:
    # The first undo of a forward run is also its last: it starts compensating and ends
    # COMPENSATED in the same transaction (not FAILED: something was undone).
    world.deliver("reserve")
    world.actions.script[PARTICIPANT] = _fail(PermanentError("card declined"))
    with pytest.raises(PermanentError):
        world.deliver("pay")
    world.deliver("reserve", Phase.COMPENSATION, last=True)
    assert world.execution().status is ExecutionStatus.COMPENSATED
    assert world.event_types()[-3:] == [event_types.COMPENSATION_STARTED,
                                        event_types.STEP_COMPENSATED,
                                        event_types.SAGA_COMPENSATED]


def test_a_chain_of_one_undo_after_a_crash_keeps_the_cause_in_both_models(
        world: World) -> None:
    # The failing step recorded nothing (its Lambda was killed): the only undo says why the
    # saga compensates, and the end event must not clear that (the read model copies it).
    world.deliver("reserve")
    world.deliver("reserve", Phase.COMPENSATION, last=True,
                  error={"Error": "Runtime.ExitError", "Cause": "signal 9", "step_id": "pay"})
    execution = world.execution()
    assert execution.status is ExecutionStatus.COMPENSATED
    assert execution.error is not None and execution.error.type == "Runtime.ExitError"
    ended = world.events_of(event_types.SAGA_COMPENSATED)[-1]["data"]
    assert "execution_error" not in ended or ended["execution_error"] == \
        execution.error.model_dump()
