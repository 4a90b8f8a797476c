"""An execution's history: every event it published, in sequence, as the read model keeps it
(beside the execution's document) and as the API shows it (who acted and why, which step and
attempt, what went wrong, and the event's own data). Pure.

The read model keeps an execution's events in buckets: the events of one execution that one
batch applied, at most BUCKET_EVENTS to a bucket, keyed by the execution and the first
sequence it holds (so a bucket written twice is refused, never doubled). A batch of a thousand
events of a hundred executions is then a hundred documents to write, not a thousand.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from chalicelib.domain.read_documents import event_time

# Wide enough for any sequence an execution reaches: ids sort as (execution, sequence) do.
_SEQUENCE_DIGITS = 12
# Events to a bucket, at most: an event is at most Kafka's 1 MiB, a document MongoDB's 16 MiB.
BUCKET_EVENTS = 12


def record_id(execution_id: str, sequence: int) -> str:
    """A bucket's key: its execution and its first sequence. An execution's ids sort in
    sequence order, and lie from "<id>/" up to "<id>0" (an execution id holds no "/")."""
    return f"{execution_id}/{sequence:0{_SEQUENCE_DIGITS}d}"


def record(event: Mapping[str, Any]) -> dict[str, Any]:
    """One event as the history keeps it (from its outbox envelope): `time` its exact text."""
    return {"sequence": event["sequence"], "id": event.get("id"), "type": event["type"],
            "time": event["time"], "data": event.get("data") or {}}


def buckets(applied: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The buckets a batch's applied events make: by execution, in sequence order, at most
    BUCKET_EVENTS each. `first` and `last` are its sequences; `at` its last event's time as a
    date (retention counts from it: no event goes before its time plus the retention)."""
    mine: dict[str, list[Mapping[str, Any]]] = {}
    for event in applied:
        mine.setdefault(event["key"], []).append(event)
    made = []
    for execution_id, events in mine.items():
        events.sort(key=lambda event: event["sequence"])
        for start in range(0, len(events), BUCKET_EVENTS):
            chunk = events[start:start + BUCKET_EVENTS]
            made.append({"_id": record_id(execution_id, chunk[0]["sequence"]),
                         "execution_id": execution_id, "first": chunk[0]["sequence"],
                         "last": chunk[-1]["sequence"], "at": event_time(chunk[-1]),
                         "events": [record(event) for event in chunk]})
    return made


def unwound(kept: Iterable[Mapping[str, Any]], after: int,
            limit: int) -> tuple[list[HistoryEntry], bool]:
    """At most `limit` entries past sequence `after` from buckets in sequence order, and
    whether more follow."""
    entries: list[HistoryEntry] = []
    for bucket in kept:
        for event in bucket["events"]:
            if event["sequence"] <= after:
                continue
            if len(entries) == limit:
                return entries, True
            entries.append(entry(event))
    return entries, False



class HistoryEntry(BaseModel):
    """One event of an execution, as GET /executions/{id}/history lists it."""

    model_config = ConfigDict(frozen=True)

    sequence: int = Field(description="its place in the execution's events, from 1")
    id: str | None
    type: str = Field(description="the event's type, such as saga.step.succeeded")
    time: datetime
    step_id: str | None = None
    attempt: int | None = None
    phase: str | None = None
    # An operator acts through compensate, retries and resolve.
    actor: str | None = Field(default=None, description=(
        "who acted: an operator, or a callback's completer"))
    reason: str | None = None
    error: dict[str, Any] | None = Field(default=None, description=(
        "the step's error, else the execution's (why it will not complete)"))
    data: dict[str, Any] = Field(description="the event's data as published")


def entry(stored: Mapping[str, Any]) -> HistoryEntry:
    """A kept event as the API shows it: the fields an operator scans, read from its data."""
    data: dict[str, Any] = dict(stored.get("data") or {})
    error = data.get("error") or data.get("execution_error")
    attempt = data.get("attempt")
    return HistoryEntry(
        sequence=stored["sequence"], id=stored.get("id"), type=stored["type"],
        time=datetime.fromisoformat(stored["time"]), step_id=data.get("step_id"),
        attempt=attempt if isinstance(attempt, int) else None, phase=data.get("phase"),
        actor=_text(data.get("by")), reason=_text(data.get("reason")),
        error=error if isinstance(error, Mapping) else None, data=data)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None
