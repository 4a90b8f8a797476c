"""Steps that wait, driven through the in-memory step ledger and the scripted engine: a
callback opened before its call, the call's answer kept while it waits, completions (early,
late, repeated, forged, concurrent), approvals, heartbeats, and timers."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from chalicelib.domain import event_types
from chalicelib.domain.callbacks import CallbackState
from chalicelib.domain.errors import Conflict, NotFound
from chalicelib.domain.lifecycle import (
    CALLBACK_COMPLETED,
    CALLBACK_FAILED,
    ExecutionStatus,
    StepStatus,
)
from chalicelib.domain.mapping import Scope
from chalicelib.domain.models import Step
from chalicelib.domain.requests import FailRequest, SucceedRequest
from chalicelib.domain.step_context import PermanentError, StepContext
from chalicelib.testing.orchestrator import ScriptedEngine
from chalicelib.usecases.steps.callbacks import CallbackService, Caller, SecretRefused
from chalicelib.usecases.steps.revisions import StepDefinitions
from chalicelib.usecases.steps.waits import TimerRunner, engine_timestamp, timer_moment
from tests.support.step_world import PARTICIPANT, World, build_world

SAGA = {
    "id": "pay-confirm", "name": "Pay", "description": "reserve, confirm, ship",
    "version": "1.0.0",
    "steps": [
        {"id": "reserve", "name": "Reserve", "description": "stock", "order": 1,
         "action": "reserve_stock", "compensation": "release_stock", "max_retries": 0,
         "timeout": "30s"},
        {"id": "confirm", "name": "Confirm", "description": "the provider confirms",
         "order": 2, "kind": "callback", "action": PARTICIPANT, "compensation": PARTICIPANT,
         "timeout": "15m", "call_timeout": "10s", "heartbeat": "1m"},
        {"id": "approve", "name": "Approve", "description": "a person approves", "order": 3,
         "kind": "callback", "timeout": "1h"},
        {"id": "hold", "name": "Hold", "description": "a timer", "order": 4, "kind": "wait",
         "wait": "15m"},
        {"id": "ship", "name": "Ship", "description": "ship it", "order": 5,
         "action": "send_note", "compensation": "retract_note", "max_retries": 0,
         "timeout": "10s"},
    ]}
TOKEN = "token-of-confirm"


@pytest.fixture
def world() -> World:
    return build_world(SAGA)


def _service(world: World, engine: ScriptedEngine | None = None) -> CallbackService:
    return CallbackService(world.ledger, engine or ScriptedEngine(), world.runtime.outcomes,
                           StepDefinitions(world.definitions), clock=world.clock.now)


def _open(world: World, step_id: str = "confirm", token: str = TOKEN) -> dict[str, Any]:
    """Deliver the callback step's Task; returns what its participant was sent."""
    sent: list[StepContext] = []
    world.actions.script[PARTICIPANT] = sent.append
    world.deliver(step_id, task_token=token)
    return dict(sent[0].callback) if sent else {}


def _secret(link: str) -> str:
    return parse_qs(urlsplit(link).query)["secret"][0]


def test_a_callback_is_committed_before_its_call_and_the_step_waits_with_its_answer(
        world: World) -> None:
    world.deliver("reserve")
    committed_before_call: list[bool] = []

    def call(ctx: StepContext) -> None:
        assert ctx.callback is not None
        callback = world.store.callbacks.get(ctx.callback["id"])
        committed_before_call.append(callback is not None and not world.ledger.locked)

    world.actions.script[PARTICIPANT] = call
    answer = world.deliver("confirm", task_token=TOKEN)
    assert committed_before_call == [True]
    assert answer["result"]["status"] == StepStatus.WAITING.value
    step = world.step("confirm")
    assert step.status is StepStatus.WAITING
    assert step.result == {"by": PARTICIPANT, "attempt": 1}  # kept for its compensation
    assert step.waiting is not None and step.waiting.kind == "callback"
    assert step.waiting.until - step.waiting.since == timedelta(minutes=15)
    callback = world.store.callbacks[step.waiting.callback_id or ""]
    assert callback.task_token == TOKEN and callback.heartbeat_s == 60
    assert callback.secret_sha256 not in str(world.store.events)  # the secret's hash stays
    assert TOKEN not in str(world.store.events)  # the token never leaves the write model
    assert world.event_types()[-2:] == [event_types.STEP_STARTED, event_types.STEP_WAITING]


def test_the_participant_is_sent_links_that_complete_its_callback(world: World) -> None:
    info = _open(world)
    assert set(info) >= {"id", "succeed_url", "fail_url", "heartbeat_url", "expires_at"}
    assert info["succeed_url"].startswith(f"/callbacks/{info['id']}/succeed?secret=")
    assert _secret(info["succeed_url"]) == _secret(info["fail_url"])
    # The call itself is bounded by call_timeout, not by the whole wait.
    assert world.step("confirm").action_deadline == world.clock.wall + timedelta(seconds=10)


def test_succeed_records_the_result_and_tells_the_engine(world: World) -> None:
    engine = ScriptedEngine()
    engine.waiting.add(TOKEN)
    info = _open(world)
    done = _service(world, engine).succeed(
        info["id"], SucceedRequest(result={"payment_id": "p-1"}),
        Caller(secret=_secret(info["succeed_url"])))
    assert (done.step_status, done.sent_to_engine) == (StepStatus.SUCCEEDED, True)
    assert [(a.token, a.kind) for a in engine.answers] == [(TOKEN, "succeeded")]
    step = world.step("confirm")
    assert step.status is StepStatus.SUCCEEDED and step.result == {"payment_id": "p-1"}
    assert step.waiting is not None and step.waiting.completed_by == "callback-secret"
    # One attempt, counted once, keeping what its call was sent (the wait kept it).
    assert step.action_attempts == 1 and [a.attempt for a in step.attempts] == [1]
    assert step.attempts[0].input == world.execution().input
    assert world.event_types()[-2:] == [event_types.STEP_CALLBACK_RECEIVED,
                                        event_types.STEP_SUCCEEDED]
    assert world.store.events[-1]["data"]["input"] == world.execution().input
    assert world.store.callbacks[info["id"]].state is CallbackState.SUCCEEDED


def test_a_completion_before_the_call_answers_ends_the_task_from_the_lambda(
        world: World) -> None:
    """The webhook wins the race with the participant's own answer: the completion is kept,
    nothing is sent to the engine, and the call's Lambda ends its Task as succeeded."""
    engine = ScriptedEngine()
    service = _service(world, engine)
    outcomes: list[Any] = []

    def webhook_first(ctx: StepContext) -> None:
        assert ctx.callback is not None
        outcomes.append(service.succeed(ctx.callback["id"], SucceedRequest(result={"early": 1}),
                                        Caller(secret=_secret(ctx.callback["succeed_url"]))))

    world.actions.script[PARTICIPANT] = webhook_first
    with pytest.raises(Exception) as ended:
        world.deliver("confirm", task_token=TOKEN)
    assert type(ended.value).__name__ == CALLBACK_COMPLETED
    assert outcomes[0].sent_to_engine is False and not engine.answers
    step = world.step("confirm")
    assert step.status is StepStatus.SUCCEEDED and step.result == {"early": 1}
    assert world.event_types().count(event_types.STEP_STARTED) == 1  # reserve never ran
    assert event_types.STEP_WAITING not in world.event_types()


def test_fail_is_a_failure_for_good_and_never_retried(world: World) -> None:
    engine = ScriptedEngine()
    engine.waiting.add(TOKEN)
    info = _open(world)
    done = _service(world, engine).fail(
        info["id"], FailRequest(error="PaymentDeclined", reason="card declined"),
        Caller(secret=_secret(info["fail_url"])))
    assert done.step_status is StepStatus.FAILED
    assert [(a.kind, a.error) for a in engine.answers] == [("failed", CALLBACK_FAILED)]
    step = world.step("confirm")
    assert step.status is StepStatus.FAILED and step.error == {"type": "PaymentDeclined",
                                                               "message": "card declined"}
    execution = world.execution()
    assert execution.error is not None and execution.error.type == "PaymentDeclined"
    assert [a.input for a in step.attempts] == [execution.input]  # what its call was sent


@pytest.mark.parametrize("case", ["unknown", "wrong_secret", "other_secret", "reused",
                                  "late", "superseded", "moved_on", "no_heartbeat"])
def test_hostile_completions_are_refused_and_change_nothing(world: World, case: str) -> None:
    engine = ScriptedEngine()
    engine.waiting.add(TOKEN)
    info = _open(world)
    service = _service(world, engine)
    secret = _secret(info["succeed_url"])
    callback_id = info["id"]
    expected: type[Exception] = Conflict
    if case == "unknown":
        callback_id, secret, expected = "cb_nothing", "", NotFound
    elif case == "wrong_secret":
        secret, expected = "guess", SecretRefused
    elif case == "other_secret":  # another callback's secret completes nothing here
        other = _open(world, token="token-of-a-second-attempt")
        secret, expected = _secret(other["succeed_url"]), SecretRefused
    elif case == "reused":
        service.succeed(callback_id, SucceedRequest(), Caller(secret=secret))
    elif case == "late":
        world.clock.sleep(15 * 60)
    elif case == "superseded":
        _open(world, token="token-of-a-second-attempt")
    elif case == "moved_on":
        world.set_status(ExecutionStatus.COMPENSATING)
    before = (world.execution().model_dump(), len(world.store.events), list(engine.answers))
    with pytest.raises(expected):
        if case == "no_heartbeat":  # the confirm step has heartbeat; the approval has none
            approval = world.deliver("approve", task_token="token-of-approve")
            service.heartbeat(approval["result"]["callback_id"], Caller(subject="alice"))
        else:
            service.succeed(callback_id, SucceedRequest(result={"x": 1}),
                            Caller(secret=secret or None))
    if case != "no_heartbeat":
        assert (world.execution().model_dump(), len(world.store.events),
                list(engine.answers)) == before


def test_eight_concurrent_completions_complete_a_callback_once(world: World) -> None:
    engine = ScriptedEngine()
    engine.waiting.add(TOKEN)
    info = _open(world)
    service = _service(world, engine)
    results: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def complete(n: int) -> None:
        start.wait(5)
        try:
            service.succeed(info["id"], SucceedRequest(result={"n": n}),
                            Caller(secret=_secret(info["succeed_url"])))
            outcome = "ok"
        except Conflict:
            outcome = "conflict"
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=complete, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert sorted(results) == ["conflict"] * 7 + ["ok"]
    assert len(engine.answers) == 1
    assert world.event_types().count(event_types.STEP_CALLBACK_RECEIVED) == 1


def test_an_approval_waits_at_once_and_an_approver_completes_it(world: World) -> None:
    engine = ScriptedEngine()
    engine.waiting.add("token-of-approve")
    answer = world.deliver("approve", task_token="token-of-approve")
    assert answer["result"]["status"] == StepStatus.WAITING.value
    assert world.actions.calls == []  # nobody is called
    callback_id = answer["result"]["callback_id"]
    done = _service(world, engine).succeed(callback_id, SucceedRequest(result={"ok": True}),
                                           Caller(subject="alice"))
    assert done.step_status is StepStatus.SUCCEEDED
    waiting = world.step("approve").waiting
    assert waiting is not None and waiting.completed_by == "caller:alice"


def test_a_heartbeat_is_recorded_and_sent(world: World) -> None:
    engine = ScriptedEngine()
    engine.waiting.add(TOKEN)
    info = _open(world)
    world.clock.sleep(30)
    _service(world, engine).heartbeat(info["id"], Caller(secret=_secret(info["heartbeat_url"])))
    waiting = world.step("confirm").waiting
    assert waiting is not None and waiting.heartbeat_at == world.clock.wall
    assert [a.kind for a in engine.answers] == ["heartbeat"]
    assert world.event_types()[-1] == event_types.STEP_HEARTBEAT


def test_a_completion_the_engine_no_longer_waits_for_is_a_conflict(world: World) -> None:
    engine = ScriptedEngine()  # the token is not (any longer) waited on
    info = _open(world)
    with pytest.raises(Conflict, match="compensated"):
        _service(world, engine).succeed(info["id"], SucceedRequest(result={"late": 1}),
                                        Caller(secret=_secret(info["succeed_url"])))
    # What was recorded stands: the step's compensation undoes it with this result.
    assert world.step("confirm").result == {"late": 1}


def test_a_callback_task_without_a_token_fails_for_good(world: World) -> None:
    with pytest.raises(PermanentError, match="no token"):
        world.deliver("confirm")


# -- timers ---------------------------------------------------------------------------------

def _timers(world: World, max_wait_s: int = 30 * 24 * 3600) -> TimerRunner:
    return TimerRunner(world.ledger, world.definitions, world.runtime.outcomes,
                       world.clock.now, max_wait_s=max_wait_s, sleep=world.clock.sleep)


def test_a_timer_is_set_once_then_fires_and_succeeds(world: World) -> None:
    timers = _timers(world)
    request = {"execution_id": "e1", "step_id": "hold", "phase": "action"}
    from chalicelib.domain.decisions import StepRequest

    started = timers.run(StepRequest.model_validate({**request, "timer": "start"}))
    assert started == {"until": engine_timestamp(world.clock.wall + timedelta(minutes=15))}
    # A repeated delivery answers the same moment, and sets nothing new.
    world.clock.sleep(5)
    again = timers.run(StepRequest.model_validate({**request, "timer": "start"}))
    assert again == started and world.event_types().count(event_types.STEP_WAITING) == 1
    world.clock.sleep(15 * 60)
    fired = timers.run(StepRequest.model_validate({**request, "timer": "fired"}))
    step = world.step("hold")
    assert step.status is StepStatus.SUCCEEDED and fired["result"] == step.result
    assert step.waiting is not None and step.waiting.completed_by == "timer"
    assert step.action_attempts == len(step.attempts) == 1
    assert world.event_types()[-2:] == [event_types.STEP_TIMER_FIRED,
                                        event_types.STEP_SUCCEEDED]


def test_a_timer_the_engine_ends_early_waits_out_the_rest(world: World) -> None:
    from chalicelib.domain.decisions import StepRequest

    timers = _timers(world)
    base = {"execution_id": "e1", "step_id": "hold", "phase": "action"}
    timers.run(StepRequest.model_validate({**base, "timer": "start"}))
    world.clock.sleep(15 * 60 - 0.8)  # LocalStack drops the fraction: up to a second early
    timers.run(StepRequest.model_validate({**base, "timer": "fired"}))
    waiting = world.step("hold").waiting
    assert waiting is not None and waiting.completed_at is not None
    assert waiting.completed_at >= waiting.until


def _step(**fields: Any) -> Step:
    return Step(id="hold", order=1, action=None, compensation=None, max_retries=0,
                timeout="30s", active=True, kind="wait", **fields)


NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(("value", "expected"), [
    ("2026-03-01T13:00:00Z", NOW + timedelta(hours=1)),
    ("2026-03-01T14:00:00+01:00", NOW + timedelta(hours=1)),
    ("2026-03-01T13:00:00", NOW + timedelta(hours=1)),  # no zone: UTC
])
def test_until_reads_iso_timestamps_with_or_without_a_zone(value: str,
                                                           expected: datetime) -> None:
    scope = Scope("e1", {"deliver_by": value}, {})
    assert timer_moment(_step(until="$.input.deliver_by"), now=NOW, scope=scope,
                        max_wait_s=86400) == expected


@pytest.mark.parametrize(("value", "message"), [
    ("tomorrow", "not an ISO 8601"), (None, "until"), ("2027-01-01T00:00:00Z", "max_wait")])
def test_an_until_that_cannot_be_a_timer_fails_the_step_for_good(value: Any,
                                                                 message: str) -> None:
    scope = Scope("e1", {} if value is None else {"deliver_by": value}, {})
    with pytest.raises(PermanentError, match=message):
        timer_moment(_step(until="$.input.deliver_by"), now=NOW, scope=scope,
                     max_wait_s=86400)


def test_the_engine_reads_a_whole_second_in_utc_rounded_up() -> None:
    moment = datetime(2026, 3, 1, 13, 0, 0, 1, tzinfo=UTC)
    assert engine_timestamp(moment) == "2026-03-01T13:00:01Z"
    assert engine_timestamp(moment.replace(microsecond=0)) == "2026-03-01T13:00:00Z"
