"""An execution's history and the triage queue: the domain's rule, the history's entries, and
the service's history and listing filters over the in-memory ports."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from chalicelib.domain import event_types, events
from chalicelib.domain.errors import BadRequest, NotFound
from chalicelib.domain.executions import Execution, StepRun, StepStatus, Waiting, awaits_approval
from chalicelib.domain.history import BUCKET_EVENTS, entry, record, record_id
from chalicelib.domain.lifecycle import NEEDS_ATTENTION, ExecutionStatus, needs_attention
from chalicelib.domain.requests import ResolveRequest
from chalicelib.http.http_errors import http_status
from chalicelib.testing import (
    InMemoryDefinitionStore,
    InMemoryExecutionStore,
    InMemoryReadModel,
    ScriptedEngine,
)
from chalicelib.usecases.executions import ExecutionPolicy, ExecutionService
from chalicelib.usecases.ports import Actor, HistoryQuery, ReadModelDown


@pytest.mark.parametrize("status", list(ExecutionStatus))
def test_needs_attention_is_a_stuck_or_failed_compensation_no_one_has_resolved(
        status: ExecutionStatus) -> None:
    stuck = status in (ExecutionStatus.COMPENSATION_FAILED, ExecutionStatus.PARKED,
                       ExecutionStatus.TIMED_OUT)
    assert needs_attention(status, None) is stuck
    assert needs_attention(status, "ops") is False  # resolved: out of the queue
    assert (status in NEEDS_ATTENTION) is stuck


@pytest.mark.parametrize("status", list(ExecutionStatus))
def test_a_waiting_approval_puts_a_running_execution_and_only_a_running_one_in_the_queue(
        status: ExecutionStatus) -> None:
    waits = needs_attention(status, None, awaiting_approval=True)
    assert waits is (status is ExecutionStatus.RUNNING or status in NEEDS_ATTENTION)
    assert needs_attention(status, None, awaiting_approval=False) is (status in NEEDS_ATTENTION)


def test_only_an_approval_still_waiting_awaits_a_person() -> None:
    since = datetime(2026, 1, 1, tzinfo=UTC)
    wait = Waiting(kind="callback", since=since, until=since, callback_id="cb", approval=True)

    def step(status: StepStatus, waiting: Waiting | None) -> StepRun:
        return StepRun(step_id="ok", position=1, status=status, waiting=waiting)

    assert awaits_approval(step(StepStatus.WAITING, wait))
    assert not awaits_approval(step(StepStatus.WAITING, wait.model_copy(
        update={"approval": False})))  # a partner's callback
    assert not awaits_approval(step(StepStatus.WAITING, wait.model_copy(
        update={"completed_at": since})))  # decided, its step not yet moved on
    assert not awaits_approval(step(StepStatus.OUTCOME_UNKNOWN, wait))  # abandoned
    assert not awaits_approval(step(StepStatus.PENDING, None))


def test_an_executions_record_ids_are_one_range_in_sequence_order() -> None:
    """What the MongoDB history reads walk: ids from "<id>/" up to "<id>0" are exactly the
    execution's, in sequence order, whatever other (safe) ids sort beside them."""
    mine = [record_id("a", n) for n in (1, 2, 10, 123456)]
    others = [record_id(other, n) for other in ("a-b", "a.c", "ab", "a0", "A", "a_")
              for n in (1, 10)]
    walked = [i for i in sorted([*others, *mine]) if "a/" <= i < "a0"]
    assert walked == mine


def _envelope(event: events.Event, sequence: int) -> dict[str, object]:
    return events.envelope(event.type, key="x1", subject="execution/x1", sequence=sequence,
                           data=event.data, time=datetime(2026, 12, 7, 9, 30, 0, 123456, UTC))


def test_an_operator_decision_shows_who_and_why() -> None:
    resolved = entry(record(_envelope(
        events.saga_resolved(saga_id="pay", by="alice", reason="refunded by hand"), 9)))
    assert (resolved.type, resolved.sequence, resolved.actor, resolved.reason) == (
        event_types.SAGA_RESOLVED, 9, "alice", "refunded by hand")
    assert resolved.time == datetime(2026, 12, 7, 9, 30, 0, 123456, UTC)  # microseconds kept
    resumed = entry(record(_envelope(events.saga_resumed(
        saga_id="pay", status="RUNNING", by="bob", steps=[]), 10)))
    assert (resumed.actor, resumed.reason) == ("bob", "retry forward requested")


def test_a_step_failure_shows_its_step_attempt_and_error() -> None:
    attempt = events.StepAttempt("pay", "charge", 2, "action", datetime.now(UTC),
                                 datetime.now(UTC))
    failed = entry(record(_envelope(events.step_failed(
        attempt, error={"type": "Declined", "message": "no funds"}, outcome="failed",
        step={"status": "FAILED"}), 4)))
    assert (failed.step_id, failed.attempt, failed.phase, failed.actor) == (
        "charge", 2, "action", None)
    assert failed.error == {"type": "Declined", "message": "no funds"}


# -- the service ---------------------------------------------------------------------------------

@pytest.fixture
def service() -> tuple[ExecutionService, InMemoryExecutionStore, InMemoryReadModel]:
    definitions = InMemoryDefinitionStore()
    executions = InMemoryExecutionStore(definitions)
    reads = InMemoryReadModel()
    return (ExecutionService(definitions, executions, ScriptedEngine(),
                             ExecutionPolicy(faults_enabled=False), reads), executions, reads)


def _put(store: InMemoryExecutionStore, execution_id: str, status: ExecutionStatus) -> None:
    now = datetime.now(UTC)
    store.put(Execution(id=execution_id, saga_id="pay", revision=1, version="1.0.0",
                        status=status, input={}, started_at=now, updated_at=now))


def test_history_pages_an_executions_events_and_refuses_what_it_cannot_answer(
        service: tuple[ExecutionService, InMemoryExecutionStore, InMemoryReadModel]) -> None:
    svc, store, reads = service
    _put(store, "x1", ExecutionStatus.PARKED)
    reads.apply_batch([_envelope(events.Event(event_types.EXECUTION_STARTED, {
        "saga_id": "pay", "version": "1.0.0", "revision": 1, "steps": []}), 1), *[
        _envelope(events.saga_resolved(saga_id="pay", by="ops", reason=f"r{n}"), n)
        for n in range(2, 6)]])
    first = svc.history("x1", limit="3", cursor=None)
    assert [e.sequence for e in first.items] == [1, 2, 3] and first.next_cursor
    rest = svc.history("x1", limit="3", cursor=first.next_cursor)
    assert [e.sequence for e in rest.items] == [4, 5] and rest.next_cursor is None
    with pytest.raises(NotFound):
        svc.history("nope", limit=None, cursor=None)
    for limit, cursor in (("0", None), ("x", None), (None, "not-a-cursor")):
        with pytest.raises(BadRequest):
            svc.history("x1", limit=limit, cursor=cursor)
    reads.available = False
    with pytest.raises(ReadModelDown) as down:
        svc.history("x1", limit=None, cursor=None)
    assert http_status(down.value) == 503


def test_the_listing_filters_by_attention_and_resolution_from_either_model(
        service: tuple[ExecutionService, InMemoryExecutionStore, InMemoryReadModel]) -> None:
    svc, store, reads = service
    for execution_id, status in (("parked", ExecutionStatus.PARKED),
                                 ("timed-out", ExecutionStatus.TIMED_OUT),
                                 ("done", ExecutionStatus.COMPLETED),
                                 ("failed", ExecutionStatus.FAILED)):
        _put(store, execution_id, status)
    svc.resolve("timed-out", ResolveRequest(reason="checked by hand"), Actor("alice"))
    reads.available = False  # the write model answers the same filters

    def ids(**flags: str) -> set[str]:
        return {e.id for e in svc.list(saga_id=None, status=None, limit=None, cursor=None,
                                       **flags).items}

    assert ids(needs_attention="true") == {"parked"}
    assert ids(needs_attention="false") == {"timed-out", "done", "failed"}
    assert ids(resolved="true") == {"timed-out"}
    assert ids(resolved="false") == {"parked", "done", "failed"}
    resolved = store.get("timed-out")
    assert resolved is not None and resolved.resolved_at == resolved.updated_at
    with pytest.raises(BadRequest, match="needs_attention must be true or false"):
        ids(needs_attention="yes")


def test_a_long_batch_of_one_execution_is_bucketed_and_paged_across_its_buckets() -> None:
    reads = InMemoryReadModel()
    started = _envelope(events.Event(event_types.EXECUTION_STARTED, {
        "saga_id": "pay", "version": "1.0.0", "revision": 1, "steps": []}), 1)
    later = [_envelope(events.saga_resolved(saga_id="pay", by="ops", reason=f"r{n}"), n)
             for n in range(2, 31)]
    assert reads.apply_batch([*later[::-1], started]) == 30
    made = reads.history_buckets["x1"]
    assert [(b["first"], b["last"], len(b["events"])) for b in made.values()] == [
        (1, BUCKET_EVENTS, BUCKET_EVENTS), (BUCKET_EVENTS + 1, 2 * BUCKET_EVENTS, BUCKET_EVENTS),
        (2 * BUCKET_EVENTS + 1, 30, 30 - 2 * BUCKET_EVENTS)]
    seen, cursor = [], None
    for _ in range(10):
        page = reads.history(HistoryQuery("x1", 5, cursor))
        seen += [item.sequence for item in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == list(range(1, 31))
    assert reads.apply_batch([started, *later]) == 0  # replayed: no bucket doubled
    assert sum(len(b["events"]) for b in reads.history_buckets["x1"].values()) == 30
