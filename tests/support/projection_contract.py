"""The read model's contract, written once: a projector (ReadModelProjector) and the reads it
keeps (ExecutionReadModel), fed the events of executions that end every way, run side by side
through the in-memory stores (tests/support/projection_streams.py).

A test module subclasses ProjectionContract and gives it a `read_side` fixture, fresh for each
test (the in-memory fake in the unit suite, MongoDB in the integration suite), so the fake the
services' unit tests run on is held to what the MongoDB projector does.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest

from chalicelib.adapters.kafka.consumer import apply_all
from chalicelib.domain import event_types, events
from chalicelib.domain.executions import awaits_approval
from chalicelib.domain.lifecycle import STATUS_OF_EVENT, needs_attention
from chalicelib.domain.read_documents import APPLIED
from chalicelib.usecases.ports import (
    CallbackQuery,
    ExecutionQuery,
    ExecutionReadModel,
    HistoryQuery,
    OpenCallbackReads,
    ReadModelProjector,
)
from tests.support.callback_streams import Waits, moment_after, written_waits
from tests.support.projection_streams import ENDINGS, Written, written
from tests.support.records import differences


@dataclass
class ReadSide:
    """One implementation: the projector, and the reads over what it keeps (its executions,
    and its open callbacks)."""

    projector: ReadModelProjector
    reads: ExecutionReadModel
    callbacks: OpenCallbackReads


class Sink:
    def __init__(self) -> None:
        self.letters: list[tuple[str, str, str, int]] = []

    def add(self, stage: str, envelope: str | bytes, reason: str, attempts: int) -> int:
        self.letters.append((stage, str(envelope), reason, attempts))
        return len(self.letters)


def _started(execution_id: str, saga_input: dict[str, Any]) -> dict[str, Any]:
    return events.envelope(event_types.EXECUTION_STARTED, key=execution_id,
                           subject=f"execution/{execution_id}", sequence=1,
                           data={"saga_id": "poison", "input": saga_input, "steps": ["a"]})


class ProjectionContract:
    """Every test runs on the `read_side` fixture its subclass provides."""

    def _same_as_written(self, side: ReadSide, run: Written) -> None:
        for execution_id in run.ids:
            assert differences(run.write_view(execution_id),
                               side.reads.get(execution_id)) == [], execution_id

    def _views(self, side: ReadSide, run: Written) -> tuple[list[Any], list[Any]]:
        sagas = sorted({run.write_view(i).saga_id for i in run.ids})
        return ([side.reads.get(i) for i in run.ids],
                [side.reads.summary(saga_id) for saga_id in sagas])

    def test_one_batch_of_interleaved_executions_is_the_write_model_field_by_field(
            self, read_side: ReadSide) -> None:
        run = written()
        assert read_side.projector.apply_batch(run.outbox) == len(run.applicable())
        self._same_as_written(read_side, run)
        views = [run.write_view(i) for i in run.ids]
        for saga_id in {view.saga_id for view in views}:
            mine = [view for view in views if view.saga_id == saga_id]
            by_status = Counter(view.status.value for view in mine)
            # When the last of its executions started or changed status.
            last = max(datetime.fromisoformat(event["time"]) for event in run.outbox
                       if event["key"] in {view.id for view in mine} and event["type"] in
                       {event_types.EXECUTION_STARTED, *STATUS_OF_EVENT})
            assert read_side.reads.summary(saga_id) == {
                "executions": len(mine), "by_status": dict(by_status), "running": 0,
                "success_rate": round(by_status["COMPLETED"] / len(mine), 4),
                # BSON dates keep milliseconds.
                "last_execution_at": last.replace(
                    microsecond=last.microsecond // 1000 * 1000).isoformat()}
        assert read_side.reads.totals()["executions"] == len(run.ids)

    def test_batches_of_any_size_and_redelivered_events_give_the_same_read_model(
            self, read_side: ReadSide) -> None:
        run = written()
        shuffled = random.Random(31)
        applied, start = 0, 0
        while start < len(run.outbox):
            size = shuffled.choice([1, 2, 3, 7, 20])
            # Each batch begins up to 3 events back: redelivered, as after a lost commit.
            begin = max(0, start - shuffled.choice([0, 0, 1, 3]))
            applied += read_side.projector.apply_batch(run.outbox[begin:start + size])
            start += size
        assert applied == len(run.applicable())
        self._same_as_written(read_side, run)

    def test_a_replayed_batch_changes_nothing(self, read_side: ReadSide) -> None:
        run = written()
        read_side.projector.apply_batch(run.outbox)
        before = self._views(read_side, run)  # projected_at included: nothing rewritten
        assert read_side.projector.apply_batch(run.outbox) == 0
        assert read_side.projector.apply_batch(run.outbox[::-1]) == 0
        assert [read_side.projector.apply(event) for event in run.outbox] == \
            [False] * len(run.outbox)
        assert self._views(read_side, run) == before

    def test_an_executions_events_apply_in_sequence_order_and_never_go_back(
            self, read_side: ReadSide) -> None:
        run = written(1)
        [execution_id] = run.ids
        mine = [event for event in run.applicable() if event["key"] == execution_id]
        start, rest = mine[0], mine[1:]
        # Before its start nothing applies (a rebuild from the outbox brings it later).
        assert read_side.projector.apply_batch(rest) == 0
        assert read_side.reads.get(execution_id) is None
        # Out of order within a batch: applied in sequence order all the same.
        assert read_side.projector.apply_batch([*rest[:3][::-1], start]) == 4
        # Older than what the read model holds: refused, in a batch or alone.
        assert read_side.projector.apply_batch([rest[1], rest[0]]) == 0
        assert read_side.projector.apply(start) is False
        assert read_side.projector.apply_batch(rest[3:]) == len(rest) - 3
        self._same_as_written(read_side, run)

    def test_events_not_for_the_read_model_are_skipped(self, read_side: ReadSide) -> None:
        run = written(1)
        skipped = [event for event in run.outbox if event["type"] not in APPLIED]
        assert skipped and all(e["type"] in event_types.DEFINITION_EVENTS for e in skipped)
        unknown = {**run.applicable()[0], "type": "saga.step.unknown"}
        assert read_side.projector.apply_batch([*skipped, unknown]) == 0
        assert read_side.reads.get(run.ids[0]) is None
        assert read_side.reads.totals()["executions"] == 0

    def test_a_document_the_store_refuses_fails_its_batch_and_is_dead_lettered_alone(
            self, read_side: ReadSide) -> None:
        run = written(len(ENDINGS))
        poison = _started("poison-1", {"bad\x00key": 1})
        batch = [*run.outbox[:len(run.outbox) // 2], poison, *run.outbox[len(run.outbox) // 2:]]
        with pytest.raises(Exception):  # noqa: B017  (each store refuses it its own way)
            read_side.projector.apply_batch(batch)
        assert all(read_side.reads.get(i) is None for i in run.ids)  # all or nothing
        assert read_side.reads.totals()["executions"] == 0
        sink = Sink()
        assert apply_all(read_side.projector, batch, sink, pause_s=0) == len(run.applicable())
        [(stage, envelope, _, attempts)] = sink.letters
        assert (stage, attempts) == ("projector", 3) and "poison-1" in envelope
        assert read_side.reads.get("poison-1") is None
        self._same_as_written(read_side, run)
        assert read_side.reads.summary("poison")["executions"] == 0

    def test_counters_move_once_per_change_whatever_the_batches(
            self, read_side: ReadSide) -> None:
        run = written()
        halves = (run.outbox[:len(run.outbox) // 2], run.outbox[len(run.outbox) // 2:])
        for half in halves:
            read_side.projector.apply_batch(half)
            read_side.projector.apply_batch(half)  # again: counted once
        counted = Counter(run.write_view(i).status.value for i in run.ids)
        totals: Mapping[str, Any] = read_side.reads.totals()
        assert (totals["executions"], totals["by_status"]) == (len(run.ids), dict(counted))

    # -- an execution's history, and the triage queue ----------------------------------------

    def _history(self, side: ReadSide, execution_id: str, limit: int) -> list[Any]:
        """Every page of the execution's history, following next_cursor."""
        entries, cursor = [], None
        for _ in range(1000):
            page = side.reads.history(HistoryQuery(execution_id, limit, cursor))
            assert len(page.items) <= limit
            entries += page.items
            if page.next_cursor is None:
                return entries
            cursor = page.next_cursor
        raise AssertionError("the history's pages never ended")

    def test_the_history_is_each_executions_events_field_by_field_never_doubled(
            self, read_side: ReadSide) -> None:
        run = written()
        shuffled = random.Random(7)
        start = 0
        while start < len(run.outbox):  # redelivered batches, as after a lost commit
            size = shuffled.choice([1, 4, 9])
            read_side.projector.apply_batch(run.outbox[max(0, start - 2):start + size])
            start += size
        read_side.projector.apply_batch(run.outbox)  # the whole outbox replayed
        for execution_id in run.ids:
            published = [e for e in run.outbox if e["key"] == execution_id]
            entries = self._history(read_side, execution_id, limit=4)
            assert [(e.id, e.type, e.sequence, e.time, e.data) for e in entries] == [
                (p["id"], p["type"], p["sequence"], datetime.fromisoformat(p["time"]),
                 p["data"]) for p in published], execution_id
            for got, event in zip(entries, published, strict=True):
                data = event["data"]
                assert (got.step_id, got.attempt, got.actor, got.reason) == (
                    data.get("step_id"), data.get("attempt"), data.get("by"),
                    data.get("reason")), event["type"]
        assert read_side.reads.history(HistoryQuery("never-ran", 10)).items == []

    def test_operator_decisions_carry_who_and_why_in_the_history(
            self, read_side: ReadSide) -> None:
        run = written(len(ENDINGS))
        read_side.projector.apply_batch(run.outbox)
        decided = {}
        for execution_id in run.ids:
            for got in self._history(read_side, execution_id, limit=100):
                if got.type in (event_types.SAGA_RESOLVED, event_types.SAGA_RESUMED):
                    decided[got.type] = (execution_id, got)
        execution_id, resolved = decided[event_types.SAGA_RESOLVED]
        assert resolved.actor and resolved.reason
        view = read_side.reads.get(execution_id)
        assert view is not None and view.resolved_at == resolved.time
        assert (view.resolved_by, view.resolution) == (resolved.actor, resolved.reason)
        resumed = decided[event_types.SAGA_RESUMED][1]
        assert resumed.actor and resumed.reason

    def test_needs_attention_and_resolved_filter_the_listing_as_the_lifecycle_says(
            self, read_side: ReadSide) -> None:
        run = written()
        read_side.projector.apply_batch(run.outbox)
        views = [run.write_view(i) for i in run.ids]

        def listed(**flags: bool) -> set[str]:
            return {e.id for e in read_side.reads.list(ExecutionQuery(limit=100, **flags)).items}

        queue = {v.id for v in views if needs_attention(v.status, v.resolved_by)}
        resolved = {v.id for v in views if v.resolved_by}
        assert queue and resolved  # the streams end both ways
        assert listed(needs_attention=True) == queue
        assert listed(needs_attention=False) == set(run.ids) - queue
        assert listed(resolved=True) == resolved
        assert listed(resolved=False) == set(run.ids) - resolved
        assert listed(needs_attention=True, resolved=True) == set()

    def test_a_search_finds_an_execution_by_its_id_and_a_sagas_executions_by_the_sagas(
            self, read_side: ReadSide) -> None:
        run = written()
        read_side.projector.apply_batch(run.outbox)
        views = [run.write_view(i) for i in run.ids]

        def found(text: str) -> set[str]:
            return {e.id for e in read_side.reads.list(ExecutionQuery(limit=100, q=text)).items}

        one = views[0]
        assert found(one.id) == {one.id}
        assert found(one.saga_id) == {v.id for v in views if v.saga_id == one.saga_id}
        assert found(one.id[:8]) == set()  # exact ids only: no prefix, no pattern

    # -- open callbacks ----------------------------------------------------------------------

    def _listed(self, side: ReadSide, query: CallbackQuery) -> list[Any]:
        """Every page of the listing, followed by its cursors."""
        items, pages = [], 0
        while True:
            page = side.callbacks.open_callbacks(query)
            items += page.items
            pages += 1
            assert pages < 20
            if page.next_cursor is None:
                return items
            query = CallbackQuery(**{**query.__dict__, "cursor": page.next_cursor})

    def _waits(self, side: ReadSide) -> Waits:
        waits = written_waits()
        side.projector.apply_batch(waits.outbox)
        return waits

    def test_the_triage_queue_holds_the_running_executions_whose_approval_waits(
            self, read_side: ReadSide) -> None:
        waits = self._waits(read_side)
        sagas = [saga.id for saga in waits.sagas.values()]

        def listed(flag: bool) -> set[str]:
            return {e.id for saga_id in sagas for e in read_side.reads.list(ExecutionQuery(
                limit=100, saga_id=saga_id, needs_attention=flag)).items}

        queue = {*waits.open_approvals, *waits.quick}
        assert listed(True) == queue
        assert listed(False) == {*waits.open_partner, *waits.closed}
        for execution_id in [*queue, *waits.open_partner, *waits.closed]:
            view = waits.view(execution_id)  # the write model's, by the lifecycle's rule
            assert needs_attention(view.status, view.resolved_by, awaiting_approval=any(
                awaits_approval(step) for step in view.steps)) is (execution_id in queue)

    def test_open_callbacks_are_the_waiting_ones_of_running_executions_oldest_first(
            self, read_side: ReadSide) -> None:
        waits = self._waits(read_side)
        now = moment_after(waits)
        listed = read_side.callbacks.open_callbacks(CallbackQuery(limit=50, now=now)).items
        expected = sorted([*waits.open_approvals, *waits.open_partner, *waits.quick],
                          key=lambda x: waits.view(x).started_at)
        assert [item.execution_id for item in listed] == expected
        for item in listed:
            view = waits.view(item.execution_id)
            step_id = "confirm" if item.execution_id in waits.open_partner else "approve"
            wait = waits.wait_of(item.execution_id, step_id)
            assert item.model_dump() == {
                "callback_id": wait.callback_id, "execution_id": view.id,
                "saga_id": view.saga_id, "version": "1.2.0", "revision": view.revision,
                "step_id": step_id, "step_name": None, "step_description": None,
                "since": wait.since, "until": wait.until, "approval": wait.approval,
                "input": wait.input}
            assert item.approval is (step_id == "approve")
        amounts = {item.execution_id: item.input for item in listed if item.approval}
        assert amounts[waits.open_approvals[0]] == {"amount": "0.00",
                                                    "reserved": "act.reserve"}
        assert read_side.callbacks.count_open_callbacks(CallbackQuery(limit=1, now=now)) == \
            len(expected)

    def test_open_callbacks_filter_by_approval_and_saga_and_leave_out_ended_waits(
            self, read_side: ReadSide) -> None:
        waits = self._waits(read_side)
        now = moment_after(waits)

        def ids(**filters: Any) -> list[str]:
            query = CallbackQuery(limit=50, now=filters.pop("now", now), **filters)
            found = [item.execution_id for item in
                     read_side.callbacks.open_callbacks(query).items]
            assert read_side.callbacks.count_open_callbacks(query) == len(found)
            return found

        approvals = set(waits.open_approvals) | set(waits.quick)
        assert set(ids(approval=True)) == approvals
        assert ids(approval=False) == waits.open_partner
        assert ids(saga_id=waits.sagas["partner"].id) == waits.open_partner
        assert ids(saga_id=waits.sagas["approvals"].id, approval=False) == []
        assert ids(saga_id="no-such-saga") == []
        # Past the short wait's end: a completion would be refused, so it is not open.
        later = now + timedelta(minutes=2)
        assert set(ids(approval=True, now=later)) == set(waits.open_approvals)
        assert not set(ids(now=later)) & set(waits.closed)

    def test_open_callbacks_page_by_cursor_as_one_listing(self, read_side: ReadSide) -> None:
        waits = self._waits(read_side)
        now = moment_after(waits)
        whole = read_side.callbacks.open_callbacks(CallbackQuery(limit=50, now=now)).items
        for limit in (1, 2, 3):
            paged = self._listed(read_side, CallbackQuery(limit=limit, now=now))
            assert [item.callback_id for item in paged] == \
                [item.callback_id for item in whole]
        first = read_side.callbacks.open_callbacks(CallbackQuery(limit=len(whole), now=now))
        assert first.next_cursor is None  # exactly one page: no cursor to an empty one
        for forged in ("not-a-cursor", "eyJhZnRlciI6ICJ4In0="):  # {"after": "x"}
            with pytest.raises(ValueError):
                read_side.callbacks.open_callbacks(CallbackQuery(limit=2, now=now,
                                                                 cursor=forged))
