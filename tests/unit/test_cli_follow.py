"""What `saga run --follow` prints for a shaped saga: the shape when it starts, a line naming
a parallel group when its first step ends, the parked and resumed events, a step's wait
(what it waits for and until when, heartbeats, who completed it, the timer firing), a skipped
step's condition and what it read, and a fan-out's items (a line per item event, indented
under their step, and their count by status when the step ends). And the other views of an
execution and a saga: `executions show`, `sagas show`, `stats`."""

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


CONDITION = {"when": '$.input.kind != "digital"', "value": False,
             "operands": {"$.input.kind": "digital"}}


def _told(event: Any) -> str | None:
    return describe({"type": event.type, "key": "e-1", "data": event.data})


def test_a_skip_says_its_condition_and_what_it_read() -> None:
    from datetime import UTC, datetime

    from chalicelib.domain import events

    at = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
    skipped = events.step_skipped(saga_id="order", step_id="ship", at=at, condition=CONDITION,
                                  step={"status": "SKIPPED", "condition": CONDITION})
    assert _told(skipped) == ('  ⤼ ship skipped: when $.input.kind != "digital" was false; '
                              'it read $.input.kind = "digital"')
    absent = events.step_skipped(saga_id="order", step_id="notify", at=at, step={},
                                 condition={"when": "$.input.email", "value": False,
                                            "operands": {}})
    assert _told(absent) == ("  ⤼ notify skipped: when $.input.email was false; it read "
                             "nothing it names was present")


def test_a_fan_out_is_told_as_it_starts_its_items_indented_and_counted_when_it_ends() -> None:
    from datetime import UTC, datetime

    from chalicelib.domain import events
    from infra.cli_service import ItemTally

    at = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
    tally = ItemTally()
    told: list[str] = []

    def follow(event: events.Event) -> None:
        envelope = {"type": event.type, "key": "e-1", "data": event.data}
        told.extend(line for line in (describe(envelope), tally.summary(envelope)) if line)

    follow(events.step_fanned_out(saga_id="order", step_id="reserve", at=at,
                                  plan={"items": 3, "max_concurrency": 2, "tolerated": 1},
                                  step={"status": "RUNNING"}))
    for index, ok in [(0, True), (2, False), (1, True)]:
        attempt = events.StepAttempt(saga_id="order", step_id=f"reserve[{index}]", attempt=1,
                                     phase="action", started=at, ended=at)
        item = {"of": "reserve", "index": index}
        follow(events.step_succeeded(attempt, result={"r": index},
                                     step={"status": "SUCCEEDED", "item": item}) if ok else
               events.step_failed(attempt, error={"type": "OutOfStock", "message": "none"},
                                  outcome="failed", step={"status": "FAILED", "item": item}))
    whole = events.StepAttempt(saga_id="order", step_id="reserve", attempt=1, phase="action",
                               started=at, ended=at)
    follow(events.step_succeeded(whole, result={"items": [{"r": 0}, {"r": 1}, None]},
                                 step={"status": "SUCCEEDED"}))
    assert told == [
        "  ⫴ reserve fans out over 3 items, at most 2 at once, 1 may fail",
        "    ✓ reserve[0] succeeded (attempt 1, 0 ms)",
        "    ✗ reserve[2] failed for good (attempt 1): OutOfStock: none",
        "    ✓ reserve[1] succeeded (attempt 1, 0 ms)",
        "  ✓ reserve succeeded (attempt 1, 0 ms)",
        "  ⫴ reserve: 3 items: 2 succeeded, 1 failed"]


def test_items_that_never_started_are_counted_as_pending() -> None:
    from infra.cli_service import ItemTally, item_counts

    tally = ItemTally()
    assert tally.summary({"type": "saga.step.fanned_out", "key": "e-1", "data": {
        "step_id": "reserve", "fanout": {"items": 4}}}) is None
    tally.summary({"type": "saga.step.failed", "key": "e-1", "data": {
        "step_id": "reserve[0]", "phase": "action", "step": {"status": "FAILED"}}})
    assert tally.summary({"type": "saga.step.failed", "key": "e-1", "data": {
        "step_id": "reserve", "phase": "action", "step": {"status": "FAILED"}}}) == (
        "  ⫴ reserve: 4 items: 3 pending, 1 failed")
    assert item_counts([]) == "none"


def test_executions_show_a_skip_and_a_fan_out_with_an_item_a_line() -> None:
    from infra.cli_service import _timeline

    def item(index: int, status: str, **more: Any) -> dict[str, Any]:
        return {"position": 3, "step_id": f"reserve[{index}]", "status": status, "group": 3,
                "kind": "compensatable", "item": {"of": "reserve", "index": index},
                "action_attempts": 1, "attempts": [{"phase": "action", "attempt": 1,
                                                     "outcome": "succeeded"}], **more}

    execution = {"id": "e-1", "saga_id": "order", "version": "1", "status": "COMPLETED",
                 "started_at": "2026-12-07T14:31:20.882469+00:00",
                 "ended_at": "2026-12-07T15:31:21", "sfn_execution_arn": "arn:run/e-1",
                 "steps": [
                     {"position": 2, "step_id": "ship", "status": "SKIPPED", "group": 2,
                      "kind": "compensatable", "condition": CONDITION, "attempts": []},
                     {"position": 3, "step_id": "reserve", "status": "SUCCEEDED", "group": 3,
                      "kind": "compensatable", "result": {"items": [{"r": 1}, None]},
                      "fanout": {"items": 2, "max_concurrency": 4, "tolerated": 1},
                      "attempts": []},
                     item(0, "SUCCEEDED"),
                     item(1, "FAILED", error={"type": "OutOfStock", "message": "none"})]}
    # Times in ISO 8601 with their zone (one without a zone is UTC), and the engine's run.
    assert _timeline(execution).splitlines()[1] == (
        "  started 2026-12-07T14:31:20Z, ended 2026-12-07T15:31:21Z; engine run arn:run/e-1")
    assert _timeline(execution).splitlines()[2:] == [
        "  2. ship                     SKIPPED              group 2",
        '       skipped: when $.input.kind != "digital" was false; it read '
        '$.input.kind = "digital"',
        "  3. reserve                  SUCCEEDED            group 3",
        "       fan-out: 2 items, at most 4 at once, 1 may fail: 1 succeeded, 1 failed",
        '       result: {"items": [{"r": 1}, null]}',
        "       [0] SUCCEEDED            1 attempt(s)",
        "       [1] FAILED               1 attempt(s)  OutOfStock: none"]


def test_sagas_show_says_which_steps_branch_and_fan_out() -> None:
    from infra.cli_service import branch_lines

    assert branch_lines([
        {"id": "create"},
        {"id": "ship", "when": '$.input.kind != "digital"'},
        {"id": "reserve", "for_each": "$.input.lines", "max_concurrency": 4,
         "tolerated_failures": "10%"},
        {"id": "notify", "for_each": "$.results.reserve.items"}]) == [
        '  ship runs only when $.input.kind != "digital" (else it is SKIPPED)',
        "  reserve runs once per item of $.input.lines, at most 4 at once, 10% may fail",
        "  notify runs once per item of $.results.reserve.items"]


def test_a_saga_says_what_runs_its_forward_path_and_why() -> None:
    from infra.cli_service import workflow_line

    assert workflow_line({"workflow": "auto", "workflow_type": "express",
                          "workflow_reason": "the forward path takes at most 30 s, within 240 s",
                          "forward_worst_case_s": 30}) == (
        "workflow: express (auto: the forward path takes at most 30 s, within 240 s), "
        "forward path at most 30 s")
    assert workflow_line({"workflow": "standard", "workflow_type": "standard",
                          "forward_worst_case_s": None}) == "workflow: standard"
    # A version stored before sagas had a workflow.
    assert workflow_line({}) == "workflow: standard"
    # With a deadline for the whole saga.
    assert workflow_line({"workflow_type": "standard", "deadline": "24h"}) == (
        "workflow: standard; deadline 24h")


def test_saga_stats_say_how_many_steps_branch_and_fan_out(
        capsys: Any) -> None:
    import argparse

    from infra.cli_service import stats

    class _Api:
        def call(self, method: str, path: str) -> dict[str, Any]:
            assert (method, path) == ("GET", "/sagas/order/stats")
            return {"saga_id": "order", "version": "1.0.0", "steps": 3, "versions": 1,
                    "conditional_steps": 1, "fanout_steps": 1,
                    "executions": {"executions": 2, "by_status": {"COMPLETED": 2},
                                   "success_rate": 1.0}}

    assert stats(argparse.Namespace(saga_id="order", json=False), _Api()) == 0  # type: ignore[arg-type]
    assert capsys.readouterr().out == (
        "order 1.0.0: 3 steps (1 conditional, 1 fan-out), 1 version(s); 2 executions "
        "(2 COMPLETED), success rate 100.0 %\n")
