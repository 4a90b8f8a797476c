"""The projection's fold (chalicelib.domain.projection), pure: a batch folded at once gives the
documents and counters that its events folded one at a time give; a fold never changes the
documents it is given; what it has applied it refuses again; its counters are the batch's
sums; a fan-out's items take their places after it."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib.domain import event_types, events
from chalicelib.domain.projection import Projection, by_execution, project
from tests.support.projection_streams import written

NOW = datetime(2026, 12, 8, 9, 0, tzinfo=UTC)
T0 = datetime(2026, 12, 8, 8, 0, 0, 123456, tzinfo=UTC)


def _fold(events: list[Mapping[str, Any]],
          current: Mapping[str, Mapping[str, Any]] | None = None) -> Projection:
    return project(by_execution(events), current or {}, NOW)


def _sums(projections: list[Projection]) -> dict[str, tuple[int, dict[str, int], datetime]]:
    """Each saga's counters moved by all the batches, zeros left out."""
    sums: dict[str, tuple[int, dict[str, int], datetime]] = {}
    for projection in projections:
        for saga_id, change in projection.summaries.items():
            started, by_status, last = sums.get(saga_id, (0, {}, change.last_at))
            for status, n in change.by_status.items():
                by_status[status] = by_status.get(status, 0) + n
            sums[saga_id] = (started + change.executions, by_status, max(last, change.last_at))
    return {saga: (n, {s: c for s, c in by.items() if c}, last)
            for saga, (n, by, last) in sums.items()}


def _event(event_type: str, key: str, sequence: int, seconds: float,
           **data: Any) -> dict[str, Any]:
    return events.envelope(event_type, key=key, subject=f"execution/{key}", sequence=sequence,
                           time=T0 + timedelta(seconds=seconds), data={"saga_id": "s", **data})


def test_a_batch_folded_at_once_equals_its_events_folded_one_at_a_time() -> None:
    run = written()
    whole = _fold(run.outbox)
    documents: dict[str, dict[str, Any]] = {}
    singles = []
    for event in run.outbox:
        single = _fold([event], documents)
        documents.update({key: p.document for key, p in single.documents.items()})
        singles.append(single)
    assert {key: p.document for key, p in whole.documents.items()} == documents
    assert _sums([whole]) == _sums(singles)
    assert whole.applied == [event for single in singles for event in single.applied]
    assert len(whole.applied) == len(run.applicable())


def test_the_documents_given_are_left_as_they_were_and_are_the_writes_guard() -> None:
    run = written()
    middle = len(run.outbox) // 2
    first = _fold(run.outbox[:middle])
    current = {key: p.document for key, p in first.documents.items()}
    kept = copy.deepcopy(current)
    second = _fold(run.outbox[middle:], current)
    assert current == kept
    for key, projected in second.documents.items():
        assert projected.read_sequence == (current[key]["sequence"] if key in current
                                           else None)
        assert projected.document["sequence"] > (projected.read_sequence or 0)
    assert all(p.read_sequence is None for p in first.documents.values())


def test_what_was_applied_is_refused_again_and_moves_no_counter() -> None:
    run = written()
    done = {key: p.document for key, p in _fold(run.outbox).documents.items()}
    again = _fold(run.outbox, done)
    assert (again.documents, again.summaries, again.applied) == ({}, {}, [])


def test_counters_are_the_batchs_sums_and_applied_events_keep_the_batchs_order() -> None:
    x, y = "x-1", "y-1"
    batch = [_event(event_types.EXECUTION_STARTED, x, 1, 0, steps=[]),
             _event(event_types.EXECUTION_STARTED, y, 1, 1, steps=[]),
             _event(event_types.SAGA_FAILED, y, 2, 2, status="FAILED"),
             _event(event_types.SAGA_COMPLETED, x, 2, 3, status="COMPLETED"),
             _event(event_types.DEFINITION_UPDATED, "s", 4, 4)]
    folded = _fold(batch)
    [change] = folded.summaries.values()
    assert (change.executions, change.by_status, change.last_at) == (
        2, {"RUNNING": 0, "COMPLETED": 1, "FAILED": 1}, T0 + timedelta(seconds=3))
    assert folded.applied == batch[:4]
    # Given out of order, an execution's events are applied in sequence order, and handed on
    # so, in the places the batch gave its events.
    assert _fold(batch[3::-1]).applied == [batch[0], batch[1], batch[2], batch[3]]
    assert _fold([batch[3], batch[0]]).documents[x].document["status"] == "COMPLETED"


def test_events_not_for_the_read_model_are_dropped_unread() -> None:
    assert by_execution([{"type": event_types.DEFINITION_CREATED},  # no key, no sequence
                         {"type": "saga.step.unknown"}, {}]) == {}


def test_a_fanouts_items_follow_it_once_and_its_own_end_is_no_attempt() -> None:
    x = "x-2"
    shape = [{"step_id": "create", "group": 1, "kind": "compensatable"},
             {"step_id": "reserve", "group": 2, "kind": "compensatable"},
             {"step_id": "notify", "group": 3, "kind": "compensatable"}]
    fanned = {"saga_id": "s", "step_id": "reserve", "attempt": 1, "phase": "action",
              "fanout": {"items": 2, "max_concurrency": 2, "tolerated": 0},
              "step": {"status": "RUNNING", "fanout": {"items": 2}, "item": None}}
    batch = [_event(event_types.EXECUTION_STARTED, x, 1, 0,
                    steps=["create", "reserve", "notify"], shape=shape),
             _event(event_types.STEP_FANNED_OUT, x, 2, 1, **fanned),
             _event(event_types.STEP_FANNED_OUT, x, 3, 2, **fanned),  # a repeated expand
             _event(event_types.STEP_SUCCEEDED, x, 4, 3, step_id="reserve[1]", attempt=1,
                    phase="action", result={"n": 1},
                    step={"status": "SUCCEEDED", "item": {"of": "reserve", "index": 1}}),
             _event(event_types.STEP_SUCCEEDED, x, 5, 4, step_id="reserve", attempt=1,
                    phase="action", result={"items": [None, {"n": 1}]},
                    step={"status": "SUCCEEDED", "fanout": {"items": 2}, "item": None})]
    doc = _fold(batch).documents[x].document
    steps = {step["step_id"]: step for step in doc["steps"]}
    assert [step["step_id"] for step in doc["steps"]] == [
        "create", "reserve", "reserve[0]", "reserve[1]", "notify"]
    assert (steps["reserve[0]"]["position"], steps["reserve[0]"]["group"],
            steps["reserve[0]"]["item"]) == (2, 2, {"of": "reserve", "index": 0})
    assert [a["outcome"] for a in steps["reserve[1]"]["attempts"]] == ["succeeded"]
    assert (steps["reserve"]["status"], steps["reserve"]["attempts"],
            steps["reserve"]["result"]) == ("SUCCEEDED", [], {"items": [None, {"n": 1}]})
