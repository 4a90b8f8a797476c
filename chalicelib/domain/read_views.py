"""The read model's documents as the API shows them: an execution's document as an Execution,
a saga's counters as its summary. Pure: shared by the MongoDB read model and its fake."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from chalicelib.domain.executions import Execution
from chalicelib.domain.lifecycle import ACTIVE, ExecutionStatus

_ACTIVE = tuple(status.value for status in ACTIVE)


def utc(value: Any) -> Any:
    """A date as stored, UTC-aware (a client may hand them back naive)."""
    return value.replace(tzinfo=UTC) if isinstance(value, datetime) and value.tzinfo is None \
        else value


def to_execution(doc: Mapping[str, Any]) -> Execution:
    steps = [{**step, "attempts": [
        {**attempt, "started_at": attempt.get("started_at") or attempt["ended_at"],
         "duration_ms": attempt.get("duration_ms") or 0} for attempt in step["attempts"]]}
        for step in doc["steps"]]
    return Execution.model_validate({
        **{key: utc(value) for key, value in doc.items()
           if key not in ("_id", "steps", "times")},
        # Microseconds, as the write model has them (BSON dates stop at milliseconds).
        **{key: value for key, value in (doc.get("times") or {}).items()
           if key in doc and (value is not None or doc[key] is None)},
        "id": doc["_id"], "steps": steps,
        "consistency": {"source": "read_model", "sequence": doc["sequence"],
                        "projected_at": utc(doc["projected_at"])}})


def summary(doc: Mapping[str, Any]) -> dict[str, Any]:
    """A saga's counters as its summary (an empty one for a saga never run)."""
    by_status = {status: n for status, n in doc.get("by_status", {}).items() if n}
    finished = sum(n for status, n in by_status.items() if status not in _ACTIVE)
    return {"executions": doc.get("executions", 0), "by_status": by_status,
            "running": sum(by_status.get(status, 0) for status in _ACTIVE),
            "success_rate": round(by_status.get(ExecutionStatus.COMPLETED, 0) / finished, 4)
            if finished else None,
            "last_execution_at": _iso(doc.get("last_execution_at"))}


def totals(docs: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Every saga's counters added up, as one summary."""
    by_status: dict[str, int] = {}
    executions = 0
    for doc in docs:
        executions += doc.get("executions", 0)
        for status, count in doc.get("by_status", {}).items():
            by_status[status] = by_status.get(status, 0) + count
    return summary({"executions": executions, "by_status": by_status})


def _iso(value: Any) -> str | None:
    return utc(value).isoformat() if isinstance(value, datetime) else None
