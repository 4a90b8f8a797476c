"""Open callbacks: the waiting callback steps of running executions that a caller may still
complete, as GET /callbacks lists them (approvals among them). Pure: the rule of which step
of a read model's document is one, its order, and the listing's models.

A callback is open while its execution is RUNNING, its step is WAITING for a callback that
nobody completed and its wait has not ended (a completion after `until` is refused). The
listing is oldest first: whoever has waited longest is first in line. The order is by the
wait's `since` as records carry it (ISO 8601 in UTC, "+00:00": text that sorts as time), then
by callback id; the read model's adapters compare that text as it is stored.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field

from chalicelib.domain.executions import Execution
from chalicelib.domain.lifecycle import ExecutionStatus, StepStatus, WaitKind


def record_time(at: datetime) -> str:
    """A time as a step's record writes it (Waiting.record): ISO 8601 in UTC."""
    return (at.astimezone(UTC) if at.tzinfo else at.replace(tzinfo=UTC)).isoformat()


def open_waits(document: Mapping[str, Any], *, now: datetime,
               approval: bool | None = None) -> Iterator[Mapping[str, Any]]:
    """The steps of a read model document (an execution) waiting on an open callback; only
    approvals (True), only the others (False), or both (None)."""
    if document.get("status") != ExecutionStatus.RUNNING.value:
        return
    moment = record_time(now)
    for step in document.get("steps") or []:
        wait = step.get("waiting") or {}
        if (step.get("status") == StepStatus.WAITING.value
                and wait.get("kind") == WaitKind.CALLBACK.value
                and wait.get("completed_at") is None and wait.get("callback_id")
                and str(wait.get("until") or "") > moment
                and (approval is None or bool(wait.get("approval")) is approval)):
            yield step


def document_of(execution: Execution) -> dict[str, Any]:
    """The parts of an execution's read model document that open_waits and OpenCallback.of
    read, from its view (each wait as its step's record has it)."""
    return {"_id": execution.id, "saga_id": execution.saga_id, "version": execution.version,
            "revision": execution.revision, "status": execution.status.value,
            "steps": [{"step_id": step.step_id, "status": step.status.value,
                       "waiting": step.waiting.record() if step.waiting else None}
                      for step in execution.steps]}


def sort_key(step: Mapping[str, Any]) -> tuple[str, str]:
    """Where a waiting step stands in the listing: its wait's start, then its callback."""
    wait = step["waiting"]
    return str(wait["since"]), str(wait["callback_id"])


def cursor_text(step: Mapping[str, Any]) -> str:
    """The inner cursor after this step: "since|callback id" (neither holds a '|')."""
    since, callback_id = sort_key(step)
    return f"{since}|{callback_id}"


def after_cursor(text: str) -> tuple[str, str]:
    """(since, callback id) of an inner cursor; ValueError for anything else."""
    since, separator, callback_id = text.partition("|")
    if not separator or not since or not callback_id or "|" in callback_id:
        raise ValueError("cursor is not one this API returned")
    return since, callback_id


class OpenCallback(BaseModel):
    """One open callback as GET /callbacks lists it."""

    callback_id: str
    execution_id: str
    saga_id: str
    version: str
    revision: int
    step_id: str
    # From the definition version the execution runs (None if that version is gone).
    step_name: str | None = None
    step_description: str | None = None
    since: datetime = Field(description="when the wait began")
    until: datetime = Field(description=(
        "the wait's deadline: a completion after it is refused"))
    approval: bool = Field(description=(
        "no action: a person (role approver or above) completes it"))
    input: dict[str, Any] | None = Field(default=None, description=(
        "the step's input as its wait keeps it: an approval's is what the person decides on, "
        "a partner's call what it was sent (null when too large to keep with the wait)"))

    @classmethod
    def of(cls, document: Mapping[str, Any], step: Mapping[str, Any]) -> OpenCallback:
        """From a read model document and one of its open_waits."""
        wait = step["waiting"]
        return cls(callback_id=wait["callback_id"], execution_id=document["_id"],
                   saga_id=document["saga_id"], version=document.get("version") or "",
                   revision=int(document.get("revision") or 0), step_id=step["step_id"],
                   since=wait["since"], until=wait["until"],
                   approval=bool(wait.get("approval")), input=wait.get("input"))


class OpenCallbackList(BaseModel):
    """A page of GET /callbacks: `count` on this page, `total` matching its filters in all
    (the console's header shows the open approvals' total)."""

    items: list[OpenCallback]
    next_cursor: str | None
    count: int = Field(description="on this page")
    total: int = Field(description="every open callback the filters match")


class OpenCallbackCount(BaseModel):
    """GET /callbacks/count: how many match, without listing them."""

    total: int
