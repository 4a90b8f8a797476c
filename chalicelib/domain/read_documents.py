"""An execution as the read model keeps it: a document (a plain dict), made from its start
event and changed by each later event, field by field as the write model changed with it.

Pure: no store is touched. The projection (chalicelib.domain.projection) folds a batch's
events onto each execution's document with these, and an adapter writes the result.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from chalicelib.domain import event_types
from chalicelib.domain.fanout import item_run_id
from chalicelib.domain.lifecycle import (
    PHASE_OF_EVENT,
    STATUS_OF_EVENT,
    STEP_EVENT_RESULT,
    WAIT_EVENTS,
    ExecutionStatus,
    Outcome,
    Phase,
    StepStatus,
    step_transition,
)

_TOUCHES_EXECUTION = {event_types.SAGA_RESOLVED, event_types.RUN_STARTED}
# The event types the read model applies: an execution's start, the events of its own row,
# and every event the lifecycle gives a status or a step's phase (definitions' are not here).
APPLIED: frozenset[str] = frozenset({event_types.EXECUTION_STARTED, *_TOUCHES_EXECUTION,
                                     *STATUS_OF_EVENT, *PHASE_OF_EVENT})
# Events that carry the step's record and end no attempt: copied as they are.
_RECORD_ONLY: frozenset[str] = frozenset({*WAIT_EVENTS, event_types.STEP_SKIPPED,
                                          event_types.STEP_FANNED_OUT})


def event_time(event: Mapping[str, Any]) -> datetime:
    return datetime.fromisoformat(event["time"])


def _blank_step(step_id: str, position: int | None, group: int | None,
                kind: str | None) -> dict[str, Any]:
    """A step (or a fan-out's item) before anything happened to it."""
    return {"step_id": step_id, "position": position, "group": group, "kind": kind,
            "status": StepStatus.PENDING.value, "result": None, "error": None,
            "action_attempts": 0, "compensation_attempts": 0, "started_at": None,
            "ended_at": None, "compensated_at": None, "waiting": None, "condition": None,
            "fanout": None, "item": None, "child": None, "attempts": []}


def started_document(event: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """The document an execution's start event makes."""
    data = event["data"]
    shape = {s["step_id"]: s for s in data.get("shape") or []}
    return {
        "_id": event["key"], "saga_id": data["saga_id"], "version": data.get("version"),
        "revision": data.get("revision"), "status": ExecutionStatus.RUNNING.value,
        "input": data.get("input", {}), "faults": data.get("faults", []),
        "parent": data.get("parent"), "depth": data.get("depth") or 0,
        "state_machine_arn": data.get("state_machine_arn"),
        "sfn_execution_arn": None, "resolved_by": None, "resolution": None,
        "resolved_at": None,
        "error": None, "output": None, "output_error": None,
        "steps": [_blank_step(step_id, i + 1, shape.get(step_id, {}).get("group"),
                              shape.get(step_id, {}).get("kind"))
                  for i, step_id in enumerate(data.get("steps", []))],
        "started_at": event_time(event), "updated_at": event_time(event), "ended_at": None,
        # BSON dates keep milliseconds: the exact times ride along for the API.
        "times": {"started_at": event["time"], "updated_at": event["time"],
                  "ended_at": None, "resolved_at": None},
        "sequence": event["sequence"], "projected_at": now,
    }


def own_copy(document: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of the parts a fold changes (the document, its times, its steps), so the one
    given stays as it was; what events replace whole (inputs, results, records) is shared."""
    copied = dict(document)
    if isinstance(document.get("times"), Mapping):
        copied["times"] = dict(document["times"])
    copied["steps"] = [dict(step) for step in document.get("steps") or []]
    return copied


def apply_event(doc: dict[str, Any], event: Mapping[str, Any], now: datetime) -> str | None:
    """Change `doc` (a fold's own copy) by one event after its start; the status the event
    brings, if any. The caller has checked that the event is newer than the document."""
    data = event["data"]
    doc["sequence"], doc["projected_at"] = event["sequence"], now
    brought = STATUS_OF_EVENT.get(event["type"])
    new_status = data.get("status") or (brought.value if brought else None)
    if new_status or event["type"] in _TOUCHES_EXECUTION:
        # As the write model: only a change of the execution's own row moves updated_at.
        doc["updated_at"] = event_time(event)
        _times(doc)["updated_at"] = event["time"]
    if new_status:
        doc["status"] = new_status
        ended = event["time"] if ExecutionStatus(new_status).is_final else None
        doc["ended_at"] = event_time(event) if ended else None
        _times(doc)["ended_at"] = ended
    if "execution_error" in data:
        doc["error"] = data["execution_error"]
    if "output" in data:  # saga.completed
        doc["output"] = data["output"]
    if "output_error" in data:  # saga.completed, when its output mapping failed
        doc["output_error"] = data["output_error"]
    if event["type"] == event_types.SAGA_RESOLVED:
        doc.update(resolved_by=data.get("by"), resolution=data.get("reason"),
                   resolved_at=event_time(event))
        _times(doc)["resolved_at"] = event["time"]
    if event["type"] == event_types.RUN_STARTED:
        doc.update(state_machine_arn=data.get("state_machine_arn"),
                   sfn_execution_arn=data.get("run_arn"))
    step_id = data.get("step_id")
    if event["type"] == event_types.STEP_FANNED_OUT:
        _add_items(doc, data)
    if step_id and event["type"] in _RECORD_ONLY:
        _wait_change(doc, step_id, event, data)
    elif step_id and event["type"] != event_types.STEP_STARTED:
        _step_change(doc, step_id, event, data)
    if event["type"] == event_types.SAGA_RESUMED:
        # A retry forward: the parked steps as the write model reset them.
        for record in data.get("steps") or []:
            _set_step(doc, record["step_id"],
                      {key: value for key, value in record.items() if key != "step_id"})
    return new_status


def _times(doc: dict[str, Any]) -> dict[str, Any]:
    times: dict[str, Any] = doc.setdefault("times", {})
    return times


def _set_step(doc: dict[str, Any], step_id: str, fields: Mapping[str, Any]) -> None:
    """Set fields of the step (every step) with this id; none: nothing changes."""
    for step in doc["steps"]:
        if step["step_id"] == step_id:
            step.update(fields)


def _push_attempt(doc: dict[str, Any], step_id: str, attempt: Mapping[str, Any]) -> None:
    for step in doc["steps"]:
        if step["step_id"] == step_id:
            step["attempts"] = [*step.get("attempts", []), attempt]  # the old list is shared


def _step_change(doc: dict[str, Any], step_id: str, event: Mapping[str, Any],
                 data: Mapping[str, Any]) -> None:
    phase = Phase(data.get("phase") or PHASE_OF_EVENT[event["type"]])
    status: StepStatus | None
    if event["type"] == event_types.STEP_ABORTED:
        # The step keeps the status its undo gave it.
        status, outcome = None, Outcome.FAILED
    elif event["type"] == event_types.STEP_RETRIED:
        # An attempt whose outcome is unknown says so; older events were plain failures.
        retried = step_transition(phase, Outcome(data.get("outcome") or Outcome.FAILED),
                                  final=False)
        status, outcome = retried.target, retried.outcome
    else:
        status, outcome = STEP_EVENT_RESULT[event["type"]]
    error = data.get("error") or {}
    attempt = {"phase": phase.value, "attempt": data.get("attempt"),
               "outcome": outcome.value,
               "error_type": error.get("type"), "error_message": error.get("message"),
               "started_at": data.get("started_at"), "ended_at": event["time"],
               "duration_ms": data.get("duration_ms"), "input": data.get("input")}
    fields: dict[str, Any] = {}
    record = data.get("step")
    if status is not None and isinstance(record, Mapping):
        # The step as the write model recorded it with this event: copied, not re-derived.
        fields.update(record)
    elif status is not None:  # an aborted attempt is not counted, as in the write model
        fields["status"] = status.value
        fields[f"{phase.value}_attempts"] = data.get("attempt")
        fields["error"] = error if outcome is not Outcome.SUCCEEDED else None
    if event["type"] == event_types.STEP_SUCCEEDED or (
            "result" in data and outcome is Outcome.UNKNOWN):
        # A step's result is its action's (a late success's, kept for its compensation).
        fields["result"] = data.get("result")
    _set_step(doc, step_id, fields)
    if not _fans_out(record):
        _push_attempt(doc, step_id, attempt)


def _fans_out(record: Any) -> bool:
    """A fan-out step's own record: its end (succeeded, failed, undone) is its items' work,
    and the write model records no attempt of its own for it."""
    return isinstance(record, Mapping) and bool(record.get("fanout")) \
        and not record.get("item")


def _add_items(doc: dict[str, Any], data: Mapping[str, Any]) -> None:
    """A fan-out started its items: each gets a step of its own ("<step id>[<index>]"),
    after the fan-out and in item order, as the write model added their runs."""
    step_id, count = data["step_id"], int((data.get("fanout") or {}).get("items") or 0)
    steps = doc["steps"]
    at = next((i for i, step in enumerate(steps) if step["step_id"] == step_id), None)
    if at is None or not count:
        return
    own, known = steps[at], {step["step_id"] for step in steps}
    items = [{**_blank_step(item_run_id(step_id, index), own.get("position"),
                            own.get("group"), own.get("kind")),
              "item": {"of": step_id, "index": index}}
             for index in range(count) if item_run_id(step_id, index) not in known]
    steps[at + 1:at + 1] = items


def _wait_change(doc: dict[str, Any], step_id: str, event: Mapping[str, Any],
                 data: Mapping[str, Any]) -> None:
    """A wait began, was kept alive by a heartbeat, was completed, or its timer fired (or a
    step was skipped, or fanned out): the step as the write model recorded it with the event
    (its status and its wait among the rest), and the callback call's answer when the event
    carries one. No attempt ends here: the step's succeeded or failed event that follows
    ends it."""
    fields: dict[str, Any] = {}
    record = data.get("step")
    if isinstance(record, Mapping):
        fields.update(record)
    elif event["type"] == event_types.STEP_WAITING:  # an event without its step's record
        fields["status"] = StepStatus.WAITING.value
    if "result" in data:
        fields["result"] = data["result"]
    _set_step(doc, step_id, fields)
