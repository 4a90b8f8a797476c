"""The projector: applies events to the MongoDB read model.

Idempotent: an execution's document remembers the last sequence applied, and an event at or
below it changes nothing, so redelivery is harmless. Events of one execution arrive in order
(one key, one partition); events of different executions may interleave freely. An execution's
document and its saga's counters change in one MongoDB transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, MongoClient
from pymongo.client_session import ClientSession
from pymongo.database import Database

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

EXECUTIONS = "executions"
SUMMARIES = "saga_summaries"

_TOUCHES_EXECUTION = {event_types.SAGA_RESOLVED, event_types.RUN_STARTED}
# The event types the read model applies: an execution's start, the events of its own row,
# and every event the lifecycle gives a status or a step's phase (definitions' are not here).
APPLIED: frozenset[str] = frozenset({event_types.EXECUTION_STARTED, *_TOUCHES_EXECUTION,
                                     *STATUS_OF_EVENT, *PHASE_OF_EVENT})


def ensure_indexes(db: Database) -> None:
    """One index per query the API makes of the read model."""
    db[EXECUTIONS].create_index([("saga_id", ASCENDING), ("started_at", DESCENDING),
                                 ("_id", DESCENDING)])
    db[EXECUTIONS].create_index([("status", ASCENDING), ("started_at", DESCENDING),
                                 ("_id", DESCENDING)])
    db[EXECUTIONS].create_index([("started_at", DESCENDING), ("_id", DESCENDING)])


# Events that carry the step's record and end no attempt: copied as they are.
_RECORD_ONLY: frozenset[str] = frozenset({*WAIT_EVENTS, event_types.STEP_SKIPPED,
                                          event_types.STEP_FANNED_OUT})


def _blank_step(step_id: str, position: int | None, group: int | None,
                kind: str | None) -> dict[str, Any]:
    """A step (or a fan-out's item) before anything happened to it."""
    return {"step_id": step_id, "position": position, "group": group, "kind": kind,
            "status": StepStatus.PENDING.value, "result": None, "error": None,
            "action_attempts": 0, "compensation_attempts": 0, "started_at": None,
            "ended_at": None, "compensated_at": None, "waiting": None, "condition": None,
            "fanout": None, "item": None, "attempts": []}


def _time(event: Mapping[str, Any]) -> datetime:
    return datetime.fromisoformat(event["time"])


class Projector:
    def __init__(self, client: MongoClient, db: Database,
                 on_applied: Callable[[Mapping[str, Any]], None] | None = None) -> None:
        self.client = client
        self.db = db
        self.on_applied = on_applied

    def apply(self, event: Mapping[str, Any]) -> bool:
        """Apply one event; False when it was already applied (or is not for the read model)."""
        if event.get("type") not in APPLIED:
            return False
        with self.client.start_session() as session:
            applied = session.with_transaction(lambda s: self._apply(s, event))
        if applied and self.on_applied is not None:
            self.on_applied(event)
        return applied

    def _apply(self, session: ClientSession, event: Mapping[str, Any]) -> bool:
        executions = self.db[EXECUTIONS]
        execution_id, sequence = event["key"], event["sequence"]
        data = event["data"]
        now = datetime.now(UTC)
        if event["type"] == event_types.EXECUTION_STARTED:
            shape = {s["step_id"]: s for s in data.get("shape") or []}
            doc = {
                "_id": execution_id, "saga_id": data["saga_id"], "version": data.get("version"),
                "revision": data.get("revision"), "status": ExecutionStatus.RUNNING.value,
                "input": data.get("input", {}), "faults": data.get("faults", []),
                "state_machine_arn": data.get("state_machine_arn"),
                "sfn_execution_arn": None, "resolved_by": None, "resolution": None,
                "error": None, "output": None, "output_error": None,
                "steps": [_blank_step(step_id, i + 1, shape.get(step_id, {}).get("group"),
                                      shape.get(step_id, {}).get("kind"))
                          for i, step_id in enumerate(data.get("steps", []))],
                "started_at": _time(event), "updated_at": _time(event), "ended_at": None,
                # BSON dates keep milliseconds: the exact times ride along for the API.
                "times": {"started_at": event["time"], "updated_at": event["time"],
                          "ended_at": None},
                "sequence": sequence, "projected_at": now,
            }
            # Look first: a duplicate-key error would abort the whole transaction.
            if executions.find_one({"_id": execution_id}, {"_id": 1}, session=session):
                return False
            executions.insert_one(doc, session=session)
            self._count(session, data["saga_id"], None, ExecutionStatus.RUNNING.value,
                        _time(event))
            return True
        current = executions.find_one({"_id": execution_id}, {"status": 1, "sequence": 1,
                                                             "saga_id": 1}, session=session)
        if current is None or current["sequence"] >= sequence:
            return False  # seen already, or its start is not projected yet (rebuild fixes it)
        update: dict[str, Any] = {"$set": {"sequence": sequence, "projected_at": now}}
        brought = STATUS_OF_EVENT.get(event["type"])
        new_status = data.get("status") or (brought.value if brought else None)
        if new_status or event["type"] in _TOUCHES_EXECUTION:
            # As the write model: only a change of the execution's own row moves updated_at.
            update["$set"].update({"updated_at": _time(event), "times.updated_at": event["time"]})
        if new_status:
            update["$set"]["status"] = new_status
            ended = event["time"] if ExecutionStatus(new_status).is_final else None
            update["$set"].update({"ended_at": _time(event) if ended else None,
                                   "times.ended_at": ended})
        if "execution_error" in data:
            update["$set"]["error"] = data["execution_error"]
        if "output" in data:  # saga.completed
            update["$set"]["output"] = data["output"]
        if "output_error" in data:  # saga.completed, when its output mapping failed
            update["$set"]["output_error"] = data["output_error"]
        if event["type"] == event_types.SAGA_RESOLVED:
            update["$set"].update(resolved_by=data.get("by"), resolution=data.get("reason"))
        if event["type"] == event_types.RUN_STARTED:
            update["$set"].update(state_machine_arn=data.get("state_machine_arn"),
                                  sfn_execution_arn=data.get("run_arn"))
        step_id = data.get("step_id")
        if step_id and event["type"] in _RECORD_ONLY:
            self._wait_update(update, event, data)
        elif step_id and event["type"] != event_types.STEP_STARTED:
            self._step_update(update, event, data)
        filters = [{"s.step_id": step_id}] if "$push" in update or any(
            "steps.$[s]" in key for key in update["$set"]) else None
        if event["type"] == event_types.SAGA_RESUMED:
            # A retry forward: the parked steps as the write model reset them.
            filters = []
            for index, record in enumerate(data.get("steps") or []):
                update["$set"].update({f"steps.$[r{index}].{key}": value
                                       for key, value in record.items() if key != "step_id"})
                filters.append({f"r{index}.step_id": record["step_id"]})
            filters = filters or None
        if event["type"] == event_types.STEP_FANNED_OUT:
            self._add_items(session, execution_id, sequence, data)
        executions.update_one({"_id": execution_id, "sequence": {"$lt": sequence}}, update,
                              array_filters=filters, session=session)
        if new_status and new_status != current["status"]:
            self._count(session, current["saga_id"], current["status"], new_status,
                        _time(event))
        return True

    @staticmethod
    def _step_update(update: dict[str, Any], event: Mapping[str, Any],
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
                   "duration_ms": data.get("duration_ms")}
        record = data.get("step")
        if status is not None and isinstance(record, Mapping):
            # The step as the write model recorded it with this event: copied, not re-derived.
            update["$set"].update({f"steps.$[s].{key}": value for key, value in record.items()})
        elif status is not None:  # an aborted attempt is not counted, as in the write model
            update["$set"]["steps.$[s].status"] = status.value
            update["$set"][f"steps.$[s].{phase.value}_attempts"] = data.get("attempt")
            update["$set"]["steps.$[s].error"] = error if outcome is not Outcome.SUCCEEDED \
                else None
        if event["type"] == event_types.STEP_SUCCEEDED or (
                "result" in data and outcome is Outcome.UNKNOWN):
            # A step's result is its action's (a late success's, kept for its compensation).
            update["$set"]["steps.$[s].result"] = data.get("result")
        update["$push"] = {"steps.$[s].attempts": attempt}

    def _add_items(self, session: ClientSession, execution_id: str, sequence: int,
                   data: Mapping[str, Any]) -> None:
        """A fan-out started its items: each gets a step of its own ("<step id>[<index>]"),
        after the fan-out and in item order, as the write model added their runs."""
        step_id, count = data["step_id"], int((data.get("fanout") or {}).get("items") or 0)
        found = self.db[EXECUTIONS].find_one(
            {"_id": execution_id, "sequence": {"$lt": sequence}}, {"steps": 1},
            session=session)
        steps = (found or {}).get("steps") or []
        own = next((step for step in steps if step["step_id"] == step_id), None)
        known = {step["step_id"] for step in steps}
        if own is None or not count:
            return
        items = [{**_blank_step(item_run_id(step_id, index), own.get("position"),
                                own.get("group"), own.get("kind")),
                  "item": {"of": step_id, "index": index}}
                 for index in range(count) if item_run_id(step_id, index) not in known]
        at = next(i for i, step in enumerate(steps) if step["step_id"] == step_id) + 1
        self.db[EXECUTIONS].update_one(
            {"_id": execution_id, "sequence": {"$lt": sequence}},
            {"$push": {"steps": {"$each": items, "$position": at}}}, session=session)

    @staticmethod
    def _wait_update(update: dict[str, Any], event: Mapping[str, Any],
                     data: Mapping[str, Any]) -> None:
        """A wait began, was kept alive by a heartbeat, was completed, or its timer fired: the
        step as the write model recorded it with the event (its status and its wait among the
        rest), and the callback call's answer when the event carries one. No attempt ends
        here: the step's succeeded or failed event that follows ends it."""
        record = data.get("step")
        if isinstance(record, Mapping):
            update["$set"].update({f"steps.$[s].{key}": value for key, value in record.items()})
        elif event["type"] == event_types.STEP_WAITING:  # an event without its step's record
            update["$set"]["steps.$[s].status"] = StepStatus.WAITING.value
        if "result" in data:
            update["$set"]["steps.$[s].result"] = data["result"]

    def _count(self, session: ClientSession, saga_id: str, old: str | None, new: str,
               at: datetime) -> None:
        inc: dict[str, int] = {f"by_status.{new}": 1}
        if old is None:
            inc["executions"] = 1
        else:
            inc[f"by_status.{old}"] = -1
        self.db[SUMMARIES].update_one(
            {"_id": saga_id}, {"$inc": inc, "$max": {"last_execution_at": at}},
            upsert=True, session=session)
