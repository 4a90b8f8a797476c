"""An execution's history: every event it published, in sequence, as the read model keeps it
(one record an event, beside the execution's document) and as the API shows it (who acted
and why, which step and attempt, what went wrong, and the event's own data). Pure.

A record is keyed by its execution and sequence, so an event applied twice is one record.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from chalicelib.domain.read_documents import event_time

# Wide enough for any sequence an execution reaches: ids sort as (execution, sequence) do.
_SEQUENCE_DIGITS = 12


def record_id(execution_id: str, sequence: int) -> str:
    """A record's key: the same event applied again maps to the same record."""
    return f"{execution_id}/{sequence:0{_SEQUENCE_DIGITS}d}"


def record(event: Mapping[str, Any]) -> dict[str, Any]:
    """The record the read model keeps of one of an execution's events (an outbox envelope).
    `at` is the event's time as a date (what retention counts from); `time` its exact text."""
    return {"_id": record_id(event["key"], event["sequence"]), "execution_id": event["key"],
            "sequence": event["sequence"], "event_id": event.get("id"), "type": event["type"],
            "time": event["time"], "at": event_time(event), "data": event.get("data") or {}}


class HistoryEntry(BaseModel):
    """One event of an execution, as GET /executions/{id}/history lists it."""

    model_config = ConfigDict(frozen=True)

    sequence: int
    id: str | None
    type: str
    time: datetime
    step_id: str | None = None
    attempt: int | None = None
    phase: str | None = None
    # Who acted: an operator (compensate, retries, resolve) or a callback's completer.
    actor: str | None = None
    reason: str | None = None
    # A step's error, else the execution's (why it will not complete).
    error: dict[str, Any] | None = None
    data: dict[str, Any]


def entry(stored: Mapping[str, Any]) -> HistoryEntry:
    """A record as the API shows it: the fields an operator scans, read from its data."""
    data: dict[str, Any] = dict(stored.get("data") or {})
    error = data.get("error") or data.get("execution_error")
    attempt = data.get("attempt")
    return HistoryEntry(
        sequence=stored["sequence"], id=stored.get("event_id"), type=stored["type"],
        time=datetime.fromisoformat(stored["time"]), step_id=data.get("step_id"),
        attempt=attempt if isinstance(attempt, int) else None, phase=data.get("phase"),
        actor=_text(data.get("by")), reason=_text(data.get("reason")),
        error=error if isinstance(error, Mapping) else None, data=data)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None
