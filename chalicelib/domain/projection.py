"""A batch of events projected onto the read model, in memory: what to write, not the writing.

Each execution's events are applied in sequence order onto its document as read once, each
only if newer than what the document holds, so a redelivered or replayed event changes
nothing; executions are independent of each other, so their events may interleave freely.
The result: each changed document (with the sequence it was read at), each saga's counters
moved by the batch, summed, and the events applied, in the batch's order (an execution's in
sequence order).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from chalicelib.domain import event_types
from chalicelib.domain.lifecycle import ExecutionStatus
from chalicelib.domain.read_documents import (
    APPLIED,
    apply_event,
    event_time,
    own_copy,
    started_document,
)

# An event with its place in the batch (the order the applied ones are handed on in).
Placed = tuple[int, Mapping[str, Any]]


@dataclass(frozen=True)
class Projected:
    document: dict[str, Any]
    # The sequence the document had when read; None: it is new.
    read_sequence: int | None


@dataclass
class SummaryChange:
    """How a batch moves one saga's counters: executions started, executions by status (a
    move takes one from the old status and gives it to the new), and the latest move's time."""

    last_at: datetime
    executions: int = 0
    by_status: dict[str, int] = field(default_factory=dict)

    def move(self, old: str | None, new: str, at: datetime) -> None:
        self.by_status[new] = self.by_status.get(new, 0) + 1
        if old is None:
            self.executions += 1
        else:
            self.by_status[old] = self.by_status.get(old, 0) - 1
        self.last_at = max(self.last_at, at)


@dataclass
class Projection:
    documents: dict[str, Projected] = field(default_factory=dict)
    summaries: dict[str, SummaryChange] = field(default_factory=dict)
    applied: list[Mapping[str, Any]] = field(default_factory=list)

    def count(self, saga_id: str, old: str | None, new: str, at: datetime) -> None:
        self.summaries.setdefault(saga_id, SummaryChange(at)).move(old, new, at)


def by_execution(events: Iterable[Mapping[str, Any]]) -> dict[str, list[Placed]]:
    """The events the read model applies, by execution id, each execution's in sequence
    order (a duplicate keeps its place after the first). Others are dropped unread."""
    grouped: dict[str, list[Placed]] = {}
    for index, event in enumerate(events):
        if event.get("type") in APPLIED:
            grouped.setdefault(event["key"], []).append((index, event))
    for placed in grouped.values():
        placed.sort(key=lambda pair: pair[1]["sequence"])
    return grouped


def project(grouped: Mapping[str, list[Placed]], current: Mapping[str, Mapping[str, Any]],
            now: datetime) -> Projection:
    """Fold each execution's events onto its current document (absent: not projected yet).
    The documents given are not changed."""
    projection = Projection()
    applied: list[Placed] = []
    for execution_id, placed in grouped.items():
        stored = current.get(execution_id)
        doc, mine = _fold(projection, stored, placed, now)
        if doc is not None and mine:
            projection.documents[execution_id] = Projected(
                doc, None if stored is None else stored["sequence"])
            # Handed on in the batch's order, an execution's own in sequence order still.
            slots = sorted(index for index, _ in mine)
            applied += zip(slots, (event for _, event in mine), strict=True)
    projection.applied = [event for _, event in sorted(applied, key=lambda pair: pair[0])]
    return projection


def _fold(projection: Projection, stored: Mapping[str, Any] | None, placed: list[Placed],
          now: datetime) -> tuple[dict[str, Any] | None, list[Placed]]:
    """One execution's events onto its document: the document and the events applied."""
    doc = None if stored is None else own_copy(stored)
    applied: list[Placed] = []
    for pair in placed:
        event = pair[1]
        if event["type"] == event_types.EXECUTION_STARTED:
            if doc is not None:
                continue  # started already
            doc = started_document(event, now)
            projection.count(doc["saga_id"], None, ExecutionStatus.RUNNING.value,
                             event_time(event))
        elif doc is None or doc["sequence"] >= event["sequence"]:
            continue  # seen already, or its start is not projected yet (a rebuild fixes it)
        else:
            before = doc["status"]
            status = apply_event(doc, event, now)
            if status and status != before:
                projection.count(doc["saga_id"], before, status, event_time(event))
        applied.append(pair)
    return doc, applied
