"""The read side of steps that wait, without servers: the projector takes the four wait events
and the push feed sends them to the execution's and the saga's subscribers like any step event;
a step's record carries its wait with ISO-8601 UTC times (the MySQL adapter's and the in-memory
store's alike); and the comparison of the two views names a wait that differs. (The projector
on MongoDB, against MariaDB's write model: tests/integration/test_wait_projection.py.)"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

from chalicelib.adapters.mysql.executions import waiting_record
from chalicelib.adapters.push.subscriptions import ALL, topics_of
from chalicelib.domain import events
from chalicelib.domain.executions import (
    Execution,
    ExecutionStatus,
    StepKind,
    StepRun,
    StepStatus,
    Waiting,
)
from chalicelib.domain.lifecycle import WAIT_EVENTS, WaitKind
from chalicelib.domain.read_documents import APPLIED
from chalicelib.testing.executions import step_record
from tests.support.records import differences

T = datetime(2026, 12, 7, 12, 0, 0, 250000, tzinfo=UTC)
WAIT = Waiting(kind=WaitKind.CALLBACK, since=T, until=T + timedelta(minutes=5),
               callback_id="cb_1", heartbeat_at=T + timedelta(seconds=30))
RECORD = {"kind": "callback", "since": "2026-12-07T12:00:00.250000+00:00",
          "until": "2026-12-07T12:05:00.250000+00:00", "callback_id": "cb_1",
          "heartbeat_at": "2026-12-07T12:00:30.250000+00:00", "completed_by": None,
          "completed_at": None, "approval": False, "input": None}


def test_the_projector_applies_and_so_pushes_every_wait_event() -> None:
    assert len(WAIT_EVENTS) == 4
    assert WAIT_EVENTS <= APPLIED  # what it applies, it hands on to the push


def test_a_wait_event_goes_to_its_execution_and_its_saga() -> None:
    attempt = events.StepAttempt(saga_id="pay", step_id="confirm", attempt=1, phase="action",
                                 started=T, ended=T)
    built = [events.step_waiting(attempt, step={"waiting": RECORD}),
             events.step_heartbeat(saga_id="pay", step_id="confirm", attempt=1, step={}),
             events.step_callback_received(saga_id="pay", step_id="confirm", attempt=1,
                                           outcome="succeeded", by="callback:secret", step={}),
             events.step_timer_fired(saga_id="pay", step_id="confirm", attempt=1, step={})]
    assert {event.type for event in built} == WAIT_EVENTS
    for event in built:
        envelope = events.envelope(event.type, key="x-1", subject="execution/x-1", sequence=2,
                                   data=event.data)
        assert topics_of(envelope) == [ALL, "saga:pay", "execution:x-1"]


def test_a_stored_wait_is_read_with_utc_times_whatever_its_json_wrote() -> None:
    assert waiting_record(None) is None
    as_pydantic = json.dumps(WAIT.model_dump(mode="json"))  # "...Z"
    assert waiting_record(as_pydantic) == RECORD
    naive = {**WAIT.model_dump(mode="json"), "since": "2026-12-07 12:00:00.250000"}
    assert waiting_record(json.dumps(naive)) == RECORD  # a time without a zone is UTC
    elsewhere = timezone(timedelta(hours=2))
    shifted = WAIT.model_copy(update={"since": T.astimezone(elsewhere)})
    assert waiting_record(shifted.model_dump(mode="json")) == RECORD


def test_the_in_memory_store_records_a_wait_as_mysql_does() -> None:
    step = StepRun(step_id="confirm", position=1, kind=StepKind.CALLBACK,
                   status=StepStatus.WAITING, waiting=WAIT)
    assert step_record(step)["waiting"] == RECORD
    assert step_record(step.model_copy(update={"waiting": None}))["waiting"] is None


def test_the_two_views_differ_when_a_wait_does() -> None:
    def execution(waiting: Waiting | None) -> Execution:
        return Execution(id="x-1", saga_id="pay", revision=1, version="1", input={},
                         status=ExecutionStatus.RUNNING, started_at=T, updated_at=T,
                         steps=[StepRun(step_id="confirm", position=1,
                                        status=StepStatus.WAITING, waiting=waiting)])

    assert differences(execution(WAIT), execution(WAIT)) == []
    done = WAIT.model_copy(update={"completed_by": "timer", "completed_at": T})
    found = differences(execution(WAIT), execution(done))
    assert len(found) == 1 and found[0].startswith("steps[confirm].waiting: ")
    assert differences(execution(None), execution(WAIT))[0].startswith("steps[confirm].waiting")
