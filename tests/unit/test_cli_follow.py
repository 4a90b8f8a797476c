"""What `saga run --follow` prints for a shaped saga: the shape when it starts, a line naming
a parallel group when its first step ends, the parked and resumed events, and a step's wait
(what it waits for and until when, heartbeats, who completed it, the timer firing)."""

from __future__ import annotations

from typing import Any

from infra.cli_service import GroupHeaders, describe, shape_line

SHAPE = [{"step_id": "create-order", "group": 1, "kind": "compensatable"},
         {"step_id": "reserve-stock", "group": 2, "kind": "compensatable"},
         {"step_id": "authorize-payment", "group": 2, "kind": "compensatable"},
         {"step_id": "capture-payment", "group": 3, "kind": "pivot"},
         {"step_id": "ship", "group": 4, "kind": "retriable"},
         {"step_id": "notify", "group": 4, "kind": "retriable"}]


def _event(kind: str, **data: Any) -> dict[str, Any]:
    return {"type": kind, "key": "e-1", "data": data}


def test_the_start_prints_the_shape() -> None:
    assert shape_line(SHAPE) == ("create-order → reserve-stock ∥ authorize-payment → "
                                 "capture-payment (pivot) → ship ∥ notify (retriable)")
    line = describe(_event("saga.execution.started", saga_id="fulfil", version="1.0.0",
                           steps=[s["step_id"] for s in SHAPE], shape=SHAPE))
    assert line == ("▶ fulfil 1.0.0: 6 steps: create-order → reserve-stock ∥ "
                    "authorize-payment → capture-payment (pivot) → ship ∥ notify (retriable)")


def test_a_group_is_named_once_per_phase_before_its_steps() -> None:
    headers = GroupHeaders()
    assert headers.header(_event("saga.execution.started", shape=SHAPE)) is None

    def step(step_id: str, group: int, phase: str = "action") -> dict[str, Any]:
        return _event("saga.step.succeeded", step_id=step_id, phase=phase,
                      step={"group": group})

    assert headers.header(step("create-order", 1)) is None  # a group of one
    assert headers.header(step("authorize-payment", 2)) == (
        "  ∥ group 2, running in parallel: reserve-stock, authorize-payment")
    assert headers.header(step("reserve-stock", 2)) is None
    assert headers.header(step("reserve-stock", 2, "compensation")) == (
        "  ∥ group 2, compensating in parallel: reserve-stock, authorize-payment")


def test_parking_and_retrying_forward_are_told() -> None:
    parked = describe(_event("saga.parked", status="PARKED", execution_error={
        "step_id": "ship", "type": "CarrierDown", "message": "no carrier"}))
    assert parked == ("  ⏸ parked after the pivot: ship CarrierDown: no carrier; retry it "
                      "forward (`saga executions retry-forward e-1`) or resolve it")
    assert describe(_event("saga.resumed", by="ops")) == "▶ retried forward by ops"


def test_an_unknown_outcome_says_the_step_will_be_undone() -> None:
    line = describe(_event("saga.step.outcome_unknown", step_id="book", attempt=2, error={
        "type": "Saga.OutcomeUnknown", "message": "no answer by its deadline"}))
    assert line == ("  ? book may have done its work (attempt 2): Saga.OutcomeUnknown: no "
                    "answer by its deadline; it will be compensated")


def test_a_wait_is_told_in_words_from_its_events() -> None:
    from datetime import UTC, datetime

    from chalicelib.domain import events

    since = datetime(2026, 12, 7, 11, 58, 5, 120000, tzinfo=UTC)
    wait = {"kind": "callback", "since": since.isoformat(),
            "until": "2026-12-07T12:03:05.120000+00:00", "callback_id": "cb_9f2c41",
            "heartbeat_at": None, "completed_by": None, "completed_at": None}

    def told(event: events.Event) -> str | None:
        return describe({"type": event.type, "key": "e-1", "data": event.data})

    attempt = events.StepAttempt(saga_id="pay", step_id="payment-confirmed", attempt=1,
                                 phase="action", started=since, ended=since)
    assert told(events.step_waiting(attempt, step={"status": "WAITING", "waiting": wait},
                                    result={"ticket": 1})) == (
        "  ⏳ payment-confirmed waiting for callback cb_9f2c41 until 12:03:05")
    beat = {**wait, "heartbeat_at": "2026-12-07T12:00:00+00:00"}
    assert told(events.step_heartbeat(saga_id="pay", step_id="payment-confirmed", attempt=1,
                                      step={"waiting": beat})) == (
        "  ♥ payment-confirmed heartbeat at 12:00:00")
    assert told(events.step_callback_received(
        saga_id="pay", step_id="payment-confirmed", attempt=1, outcome="succeeded",
        by="callback:secret", step={"waiting": beat})) == (
        "  ✉ payment-confirmed callback received (succeeded) by callback:secret")
    timer = {**wait, "kind": "timer", "callback_id": None,
             "until": "2026-12-08T00:00:30+00:00"}  # another day: with its date
    assert told(events.step_waiting(attempt, step={"waiting": timer})) == (
        "  ⏳ payment-confirmed waiting: timer until 2026-12-08 00:00:30")
    assert told(events.step_timer_fired(saga_id="pay", step_id="cool-off", attempt=1,
                                        step={"waiting": timer})) == "  ⏰ cool-off timer fired"


def test_executions_show_says_what_a_step_waited_for() -> None:
    from infra.cli_service import _timeline

    wait = {"kind": "callback", "since": "2026-12-07T11:58:05+00:00",
            "until": "2026-12-07T12:03:05+00:00", "callback_id": "cb_1",
            "heartbeat_at": "2026-12-07T12:00:00+00:00", "completed_by": "callback:secret",
            "completed_at": "2026-12-07T12:01:00+00:00"}
    execution = {"id": "e-1", "saga_id": "pay", "version": "1", "status": "COMPLETED",
                 "steps": [{"position": 1, "step_id": "confirm", "status": "SUCCEEDED",
                            "kind": "callback", "group": 1, "waiting": wait, "attempts": []}]}
    assert _timeline(execution).splitlines()[-1] == (
        "       waited since 11:58:05 for callback cb_1 until 12:03:05, last heartbeat "
        "12:00:00, completed by callback:secret at 12:01:00")


def test_a_wait_s_times_are_read_as_utc_even_without_a_zone() -> None:
    from infra.cli_service import _clock

    assert _clock("2026-12-07T12:03:05") == "12:03:05"
    assert _clock("2026-12-07T14:03:05+02:00", "2026-12-07T11:00:00Z") == "12:03:05"
    assert _clock("2026-12-08T00:00:01Z", "2026-12-07T23:59:00") == "2026-12-08 00:00:01"
    assert _clock("soon") == "soon"
