"""`saga sagas|run|executions|callbacks|stats`: driving the service from a terminal.

Exit codes (infra.exit_codes.Exit, shared with every `saga` command): 0 done (for `run`: the
saga COMPLETED), 1 the saga did not complete, 2 the request was refused (4xx) or the command
was misused, 3 the service could not be reached or failed, 4 `--follow` timed out.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.parse
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from chalicelib.domain import event_types
from chalicelib.domain.fanout import split_run_id
from chalicelib.domain.lifecycle import STATUS_OF_EVENT, ExecutionStatus, StepStatus, WaitKind
from infra.api_client import ApiClient, ApiError
from infra.cli_callbacks import add_actions as add_callback_actions
from infra.cli_callbacks import callbacks
from infra.cli_format import by_status, error_text, inline_json, more, rate, when
from infra.cli_history import history
from infra.cli_io import emit as _emit
from infra.cli_io import load as _load
from infra.exit_codes import Exit, exit_codes_help
from infra.text_table import format_table

# The events that end an execution, and the status they bring.
FINAL = {kind: status for kind, status in STATUS_OF_EVENT.items() if status.is_final}


def _input(value: str) -> Any:
    """--input and --faults: inline JSON (a value starting with `{` or `[`), - for standard
    input, or a JSON or YAML file's path."""
    try:
        inline = inline_json(value)
    except ValueError as error:
        raise ApiError(-2, str(error)) from None
    return inline if inline is not None else _load(value)


# -- sagas ----------------------------------------------------------------------

def workflow_line(saga: dict[str, Any]) -> str:
    """What runs the version's forward path, as chosen when it was stored, and why."""
    chosen = saga.get("workflow_type", "standard")
    asked = saga.get("workflow", chosen)
    why = f" ({asked}: {saga.get('workflow_reason')})" if asked != chosen else ""
    worst = saga.get("forward_worst_case_s")
    bound = f", forward path at most {worst} s" if worst is not None else ""
    deadline = f"; deadline {saga['deadline']}" if saga.get("deadline") else ""
    return f"workflow: {chosen}{why}{bound}{deadline}"


def sagas(args: argparse.Namespace, api: ApiClient) -> int:
    if args.action == "create":
        saga = api.call("POST", "/sagas", _load(args.file))
        _emit(args, saga, f"stored {saga['id']} {saga['version']} (revision {saga['revision']},"
                          f" {len(saga['steps'])} steps)\n{workflow_line(saga)}"
              + "".join(f"\nwarning: {text}" for text in saga.get("warnings", [])))
    elif args.action == "list":
        query = urllib.parse.urlencode([(k, v) for k, v in (
            ("active", args.active), ("type", args.type), ("limit", args.limit),
            ("cursor", args.cursor)) if v])
        page = api.call("GET", f"/sagas?{query}")
        rows = [[s["id"], s["version"], "yes" if s["active"] else "no", len(s["steps"]),
                 s.get("type") or "-"] for s in page["items"]]
        _emit(args, page, format_table(rows, ["SAGA", "VERSION", "ACTIVE", "STEPS", "TYPE"])
              + more(page.get("next_cursor"), "saga sagas list"))
    elif args.action == "versions":
        listed = api.call("GET", f"/sagas/{_id(args)}/versions")
        rows = [[v["version"], v["revision"], v.get("workflow_type") or "standard",
                 when(v.get("created_at")), v.get("created_by") or "-"]
                for v in listed["versions"]]
        _emit(args, listed, format_table(rows, ["VERSION", "REVISION", "WORKFLOW", "CREATED",
                                                "BY"]))
    elif args.action == "show":
        saga = api.call("GET", f"/sagas/{_id(args)}"
                        + (f"?version={args.version}" if args.version else ""))
        # Steps that share an order form a parallel group.
        steps = [[s["order"], s["id"], s.get("kind") or "compensatable", s["action"],
                  s.get("compensation") or "-", _or_dash(s.get("max_retries")),
                  s.get("timeout") or "-", "yes" if s["active"] else "no"]
                 for s in saga["steps"]]
        _emit(args, saga, f"{saga['id']} {saga['version']} (revision {saga['revision']}, "
                          f"{'active' if saga['active'] else 'inactive'})\n{saga['description']}\n"
                          f"{workflow_line(saga)}\n"
              + format_table(steps, ["#", "STEP", "KIND", "ACTION", "COMPENSATION", "RETRIES",
                                     "TIMEOUT", "ACTIVE"])
              + "".join(f"\n{line}" for line in branch_lines(saga["steps"])))
    elif args.action == "delete":
        api.call("DELETE", f"/sagas/{_id(args)}")
        _emit(args, {"deleted": args.id}, f"deleted {args.id}")
    else:  # activate / deactivate
        saga = api.call("PUT", f"/sagas/{_id(args)}/active",
                        {"active": args.action == "activate"})
        _emit(args, saga, f"{saga['id']} is {'active' if saga['active'] else 'inactive'}")
    return Exit.OK


def branch_lines(steps: list[dict[str, Any]]) -> list[str]:
    """What a definition's steps that branch and fan out do, a line each (none for a line of
    plain steps): `ship runs only when ...`, `reserve runs once per item of ...`."""
    lines = []
    for step in steps:
        if step.get("when") is not None:
            lines.append(f"  {step['id']} runs only when {step['when']} (else it is SKIPPED)")
        if step.get("for_each") is not None:
            lines.append(f"  {step['id']} runs once per item of {step['for_each']}"
                         + _fanout_bounds(step.get("max_concurrency"),
                                          step.get("tolerated_failures")))
    return lines


def _fanout_bounds(at_once: Any, tolerated: Any) -> str:
    """", at most 4 at once, 1 may fail": a fan-out's bounds, as far as they are known."""
    said = f", at most {at_once} at once" if at_once is not None else ""
    if tolerated not in (None, 0, "0%"):
        said += f", {tolerated} may fail"
    return said


def _or_dash(value: Any) -> Any:
    return "-" if value is None else value


def _id(args: argparse.Namespace) -> str:
    if not args.id:
        raise ApiError(-2, f"sagas {args.action} needs a saga id")
    return str(args.id)


# -- run ----------------------------------------------------------------------

def run(args: argparse.Namespace, api: ApiClient) -> int:
    body: dict[str, Any] = {"input": _input(args.input) if args.input else {},
                            "execution_id": args.execution_id or str(uuid.uuid4())}
    if args.faults:
        body["faults"] = _input(args.faults)
    if not args.follow:
        execution = api.call("POST", f"/sagas/{args.saga_id}/execute", body)
        _emit(args, execution, f"{execution['id']} {execution['status']}")
        return Exit.OK
    return _follow(args, api, lambda: api.call("POST", f"/sagas/{args.saga_id}/execute", body),
                   body["execution_id"])


def _follow(args: argparse.Namespace, api: ApiClient, start: Any, execution_id: str) -> int:
    """Subscribe, then start (or look at) the execution, then print its events until it ends.
    start() answers the execution: one that has already ended (a repeated execution id, an
    execution attached to after its end) is told at once, as `executions show` tells it."""
    started = time.monotonic()
    events = api.events(execution_id=execution_id, timeout_s=args.timeout)
    next(events)  # subscribed: from here on nothing of this execution can be missed
    execution = start()
    status = ExecutionStatus((execution or {}).get("status") or ExecutionStatus.RUNNING)
    if status.is_final:
        _emit(args, execution, _timeline(execution))
        return Exit.OK if status is ExecutionStatus.COMPLETED else Exit.FAILED
    if not args.json:
        print(f"execution {execution_id}")
    groups, items = GroupHeaders(), ItemTally()
    for event in events:
        if args.json:
            print(json.dumps(event), flush=True)
        else:
            for line in (groups.header(event), describe(event), items.summary(event)):
                if line:
                    print(line, flush=True)
        if event["type"] in FINAL:
            data = event.get("data") or {}
            status = ExecutionStatus(data.get("status") or FINAL[event["type"]])
            if not args.json:
                if data.get("output") is not None:
                    print(f"  output: {json.dumps(data['output'], sort_keys=True)}")
                if data.get("output_error"):
                    print(f"  {_output_problem(data['output_error'])}")
                print(f"{status} in {time.monotonic() - started:.1f}s")
            return Exit.OK if status is ExecutionStatus.COMPLETED else Exit.FAILED
    print(f"saga: no end of {execution_id} within {args.timeout:.0f}s; see "
          f"`saga executions show {execution_id}`", file=sys.stderr)
    return Exit.TIMED_OUT


def shape_line(shape: list[dict[str, Any]]) -> str:
    """validate → reserve ∥ authorize → capture (pivot) → ship ∥ notify (retriable)."""
    groups: dict[Any, list[dict[str, Any]]] = {}
    for step in shape:
        groups.setdefault(step.get("group"), []).append(step)
    return " → ".join(
        " ∥ ".join(s["step_id"] for s in members)
        + (f" ({members[0]['kind']})" if members[0].get("kind") not in (None, "compensatable")
           else "")
        for members in groups.values())


class GroupHeaders:
    """While following: a line naming a parallel group when the first of its steps ends, so
    a group is printed together, its steps below it as they end."""

    def __init__(self) -> None:
        self.members: dict[Any, list[str]] = {}
        self.shown: set[tuple[Any, str]] = set()

    def header(self, event: dict[str, Any]) -> str | None:
        data = event.get("data", {})
        if event["type"] == "saga.execution.started":
            for step in data.get("shape") or []:
                self.members.setdefault(step.get("group"), []).append(step["step_id"])
            return None
        group = (data.get("step") or {}).get("group")
        phase = data.get("phase", "action")
        if len(self.members.get(group, [])) < 2 or (group, phase) in self.shown:
            return None
        self.shown.add((group, phase))
        verb = "running" if phase == "action" else "compensating"
        return f"  ∥ group {group}, {verb} in parallel: {', '.join(self.members[group])}"


class ItemTally:
    """While following: a fan-out's items by status as their events arrive, told in one line
    when the fan-out itself ends ("⫴ reserve: 12 items: 11 succeeded, 1 failed")."""

    def __init__(self) -> None:
        self.items: dict[str, dict[int, str]] = {}  # fan-out step id -> index -> status

    def summary(self, event: dict[str, Any]) -> str | None:
        data = event.get("data", {})
        step_id, record = data.get("step_id"), data.get("step") or {}
        if not step_id:
            return None
        if event["type"] == event_types.STEP_FANNED_OUT:
            count = int((data.get("fanout") or {}).get("items") or 0)
            self.items[step_id] = dict.fromkeys(range(count), StepStatus.PENDING.value)
            return None
        of, index = split_run_id(step_id)
        if index is not None and of in self.items and record.get("status"):
            self.items[of][index] = record["status"]
            return None
        ended = event["type"] in (event_types.STEP_SUCCEEDED, event_types.STEP_FAILED) \
            and data.get("phase", "action") == "action"
        if index is None and ended and step_id in self.items:
            statuses = self.items[step_id]
            return f"  ⫴ {step_id}: {_items(len(statuses))}: {item_counts(statuses.values())}"
        return None


def _items(count: int) -> str:
    return f"{count} item{'' if count == 1 else 's'}"


def item_counts(statuses: Any) -> str:
    """"11 succeeded, 1 failed": items by status, in the lifecycle's order of statuses."""
    listed = list(statuses)
    counts = [(status, listed.count(status.value)) for status in StepStatus]
    return ", ".join(f"{n} {status.value.lower().replace('_', ' ')}"
                     for status, n in counts if n) or "none"


def _read(operands: dict[str, Any] | None) -> str:
    """What a condition read: `$.input.kind = "digital", $.results.a.n = 3`."""
    if not operands:
        return "nothing it names was present"
    return ", ".join(f"{reference} = {json.dumps(value, sort_keys=True)[:200]}"
                     for reference, value in operands.items())


def _skip_text(condition: dict[str, Any]) -> str:
    """`when $.input.kind != "digital" was false; it read $.input.kind = "digital"`."""
    value = json.dumps(condition.get("value", False))
    return (f"when {condition.get('when')} was {value}; it read "
            f"{_read(condition.get('operands'))}")


def describe(event: dict[str, Any]) -> str | None:
    """One line a person reads for an event (None for the ones not worth a line); an item of a
    fan-out's lines are indented under their step's."""
    line = _describe(event)
    step_id = (event.get("data") or {}).get("step_id")
    if line and step_id and split_run_id(str(step_id))[1] is not None:
        return f"  {line}"
    return line


def _describe(event: dict[str, Any]) -> str | None:
    data = event.get("data", {})
    step = data.get("step_id")
    attempt = f"attempt {data.get('attempt')}"
    error = data.get("error") or {}
    why = f"{error.get('type')}: {error.get('message')}" if error else ""
    took = f", {data['duration_ms']} ms" if data.get("duration_ms") is not None else ""
    fanout = data.get("fanout") or {}
    lines = {
        "saga.execution.started": f"▶ {data.get('saga_id')} {data.get('version')}: "
                                  f"{len(data.get('steps', []))} steps"
                                  + (f": {shape_line(data['shape'])}" if data.get("shape")
                                     else ""),
        "saga.step.succeeded": f"  ✓ {step} succeeded ({attempt}{took})",
        "saga.step.retried": (f"  ↻ {step} failed ({attempt}): {why}; retrying"
                              if data.get("phase", "action") == "action"
                              else f"  ↻ undo of {step} failed ({attempt}): {why}; retrying"),
        "saga.step.failed": f"  ✗ {step} failed for good ({attempt}): {why}",
        "saga.step.outcome_unknown": f"  ? {step} may have done its work ({attempt}): {why}; "
                                     "it will be compensated",
        "saga.compensation.started": "  ↩ compensating the completed steps",
        "saga.step.compensated": f"  ↩ {step} compensated ({attempt}{took})",
        "saga.step.compensation_failed": f"  ✗ undo of {step} failed for good: {why}",
        "saga.step.aborted": f"  · a late attempt of {step} was stopped",
        "saga.resolved": f"  resolved by {data.get('by')}: {data.get('reason')}",
        "saga.parked": f"  ⏸ parked after the pivot: {_why(data.get('execution_error'))}; "
                       f"retry it forward (`saga executions retry-forward {event.get('key')}`) "
                       "or resolve it",
        "saga.resumed": f"▶ retried forward by {data.get('by')}",
        event_types.STEP_SKIPPED: f"  ⤼ {step} skipped: "
                                  f"{_skip_text(data.get('condition') or {})}",
        event_types.STEP_FANNED_OUT: f"  ⫴ {step} fans out over "
                                     f"{_items(int(fanout.get('items') or 0))}"
                                     + _fanout_bounds(fanout.get("max_concurrency"),
                                                      fanout.get("tolerated")),
        **_wait_lines(step, data),
    }
    return lines.get(event["type"])


def _utc_time(value: Any) -> datetime | None:
    """An ISO time in UTC (one without a zone is UTC); None when it is no time."""
    try:
        at = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).astimezone(UTC)


def _clock(value: Any, since: Any = None) -> str:
    """An ISO time as the wall clock reads it in UTC (12:03:05), with its date when it is not
    the day of `since`; the text as it came when it is no time."""
    at = _utc_time(value)
    if at is None:
        return str(value)
    start = _utc_time(since) if since is not None else None
    whole = since is not None and (start is None or start.date() != at.date())
    return at.strftime("%Y-%m-%d %H:%M:%S" if whole else "%H:%M:%S")


def _wait_lines(step: Any, data: dict[str, Any]) -> dict[str, str]:
    """The lines of a step's wait (its record's `waiting`): what it waits for and until
    when, a heartbeat, who completed it, the timer's end."""
    wait = (data.get("step") or {}).get("waiting") or {}
    since = wait.get("since")
    if wait.get("kind") == WaitKind.TIMER:
        waiting = f"  ⏳ {step} waiting: timer until {_clock(wait.get('until'), since)}"
    else:
        waiting = (f"  ⏳ {step} waiting for callback {wait.get('callback_id') or '?'}"
                   + (f" until {_clock(wait['until'], since)}" if wait.get("until") else ""))
    beat = wait.get("heartbeat_at")
    return {
        event_types.STEP_WAITING: waiting,
        event_types.STEP_HEARTBEAT: f"  ♥ {step} heartbeat"
                                    + (f" at {_clock(beat, since)}" if beat else ""),
        event_types.STEP_CALLBACK_RECEIVED: f"  ✉ {step} callback received "
                                            f"({data.get('outcome')}) by {data.get('by')}",
        event_types.STEP_TIMER_FIRED: f"  ⏰ {step} timer fired",
    }


# -- executions, stats ----------------------------------------------------------------------

def executions(args: argparse.Namespace, api: ApiClient) -> int:
    if args.action == "list":
        query = urllib.parse.urlencode([(k, v) for k, v in (
            ("saga_id", args.saga), ("status", args.status), ("started_after", args.after),
            ("started_before", args.before),
            ("needs_attention", "true" if args.needs_attention else None),
            ("limit", args.limit), ("cursor", args.cursor)) if v])
        page = api.call("GET", f"/executions?{query}")
        rows = [[e["id"], e["saga_id"], e["version"], e["status"], when(e["started_at"])]
                for e in page["items"]]
        _emit(args, page, format_table(rows, ["EXECUTION", "SAGA", "VERSION", "STATUS", "STARTED"])
              + more(page.get("next_cursor"), "saga executions list"))
        return Exit.OK
    if not args.id:
        raise ApiError(-2, f"executions {args.action} needs an execution id")
    if args.action == "history":
        return history(args, api)
    if args.action == "follow" or (args.action == "show" and args.follow):
        return _follow(args, api, lambda: _attached(args, api), args.id)
    if args.action == "show":
        execution = api.call("GET", f"/executions/{args.id}")
        _emit(args, execution, _timeline(execution))
        return Exit.OK
    if args.action == "compensate":
        # The API compensates by saga (its latest COMPLETED execution, or the one named).
        saga_id = api.call("GET", f"/executions/{args.id}")["saga_id"]
        path = f"/sagas/{urllib.parse.quote(saga_id, safe='')}/compensate"
        body = {"execution_id": args.id}
        if args.follow:
            return _follow(args, api, lambda: api.call("POST", path, body), args.id)
        execution = api.call("POST", path, body)
        _emit(args, execution, f"{execution['id']} {execution['status']}")
        return Exit.OK
    if args.action in ("retry-compensation", "retry-forward"):
        path = f"/executions/{args.id}/{args.action}"
        if args.follow:
            return _follow(args, api, lambda: api.call("POST", path), args.id)
        execution = api.call("POST", path)
        _emit(args, execution, f"{execution['id']} {execution['status']}")
        return Exit.OK
    execution = api.call("POST", f"/executions/{args.id}/resolve", {"reason": args.reason})
    _emit(args, execution, f"{execution['id']} resolved: {execution['resolution']}")
    return Exit.OK


def _attached(args: argparse.Namespace, api: ApiClient) -> dict[str, Any]:
    """Following an execution that already runs: where it is now, then its events."""
    execution = dict(api.call("GET", f"/executions/{args.id}"))
    if not args.json and not ExecutionStatus(execution["status"]).is_final:
        print(_timeline(execution), flush=True)
    return execution


def _why(error: dict[str, Any] | None) -> str:
    if not error:
        return "a retriable step ran out of attempts"
    return f"{error.get('step_id')} {error.get('type')}: {error.get('message')}"


def _output_problem(error: dict[str, Any]) -> str:
    """A completed execution whose output mapping failed: which field, and why."""
    return (f"no output: field {error.get('field')!r} ({error.get('reference')}): "
            f"{error.get('message')}")


def _timeline(execution: dict[str, Any]) -> str:
    lines = [f"{execution['id']}  {execution['saga_id']} {execution['version']}  "
             f"{execution['status']}"]
    lines.append(f"  started {when(execution.get('started_at'))}"
                 + (f", ended {when(execution['ended_at'])}" if execution.get("ended_at")
                    else "")
                 + (f"; engine run {execution['sfn_execution_arn']}"
                    if execution.get("sfn_execution_arn") else ""))
    if execution.get("parent"):  # a child execution: `saga executions show <parent>`
        parent = execution["parent"]
        lines.append(f"  child of {parent['execution_id']} (its step {parent['step_id']})"
                     + (f", depth {execution['depth']}" if execution.get("depth", 0) > 1
                        else ""))
    if execution.get("error"):
        lines.append(f"  error: {error_text(execution['error'])}")
    if execution.get("output") is not None:
        lines.append(f"  output: {json.dumps(execution['output'], sort_keys=True)[:1000]}")
    if execution.get("output_error"):
        lines.append(f"  {_output_problem(execution['output_error'])}")
    if execution.get("resolution"):
        lines.append(f"  resolved by {execution['resolved_by']}"
                     + (f" at {when(execution['resolved_at'])}"
                        if execution.get("resolved_at") else "")
                     + f": {execution['resolution']}")
    items: dict[str, list[dict[str, Any]]] = {}  # a fan-out's items, under it
    for step in execution["steps"]:
        if step.get("item"):
            items.setdefault(step["item"]["of"], []).append(step)
    for step in execution["steps"]:
        if step.get("item"):
            continue
        shape = f"group {step['group']}" if step.get("group") is not None else ""
        if step.get("kind") not in (None, "compensatable"):
            shape += f", {step['kind']}"
        lines.append(f"  {step['position']}. {step['step_id']:<24} {step['status']:<20} "
                     f"{shape}".rstrip())
        if step.get("condition"):
            lines.append(f"       skipped: {_skip_text(step['condition'])}")
        if step.get("child"):  # a child step: its child's own timeline is one command away
            lines.append(f"       child: {step['child']} (saga executions show "
                         f"{step['child']})")
        if step.get("fanout") or step["step_id"] in items:
            lines.append(f"       {_fanout_summary(step, items.get(step['step_id'], []))}")
        sent = next((a["input"] for a in reversed(step.get("attempts") or [])
                     if a.get("input") is not None), None)
        if sent is not None:  # what its latest attempt was sent (its input mapping resolved)
            lines.append(f"       sent: {json.dumps(sent, sort_keys=True)[:500]}")
        if step.get("result") is not None:
            lines.append(f"       result: {json.dumps(step['result'], sort_keys=True)[:500]}")
        if step.get("waiting"):
            lines.append(f"       {_wait_summary(step['waiting'])}")
        lines += _attempt_lines(step, "       ")
        for item in items.get(step["step_id"], []):
            lines.append(f"       [{item['item']['index']}] {item['status']:<20} "
                         f"{_item_detail(item)}".rstrip())
    return "\n".join(lines)


def _attempt_lines(step: dict[str, Any], indent: str) -> list[str]:
    lines = []
    for a in step["attempts"]:
        outcome = a["outcome"] + (f" {a['error_type']}: {a['error_message']}"
                                  if a.get("error_type") else "")
        lines.append(f"{indent}{a['phase']:<12} #{a['attempt']}  {when(a.get('started_at'))}"
                     f"  {outcome}  ({a.get('duration_ms', 0)} ms)")
    return lines


def _fanout_summary(step: dict[str, Any], items: list[dict[str, Any]]) -> str:
    """fan-out: 12 items, at most 4 at once, 1 may fail: 11 succeeded, 1 failed."""
    plan = step.get("fanout") or {}
    count = plan.get("items", len(items))
    return (f"fan-out: {_items(count)}"
            + _fanout_bounds(plan.get("max_concurrency"), plan.get("tolerated"))
            + f": {item_counts(item['status'] for item in items)}")


def _item_detail(item: dict[str, Any]) -> str:
    """An item on one line: its attempts (and undo), and why it failed."""
    said = f"{item.get('action_attempts', 0)} attempt(s)"
    if item.get("compensation_attempts"):
        said += f" + {item['compensation_attempts']} undo"
    error = item.get("error") or {}
    if error:
        said += f"  {error.get('type')}: {error.get('message')}"
    return said


def _wait_summary(wait: dict[str, Any]) -> str:
    """waited for callback cb_1 until 12:05:00, heartbeat 12:01:00, completed by ... at ..."""
    since = wait.get("since")
    what = (f"timer until {_clock(wait.get('until'), since)}"
            if wait.get("kind") == WaitKind.TIMER else
            f"callback {wait.get('callback_id')} until {_clock(wait.get('until'), since)}")
    said = [f"{'waited' if wait.get('completed_at') else 'waiting'} since "
            f"{_clock(since)} for {what}"]
    if wait.get("heartbeat_at"):
        said.append(f"last heartbeat {_clock(wait['heartbeat_at'], since)}")
    if wait.get("completed_at"):
        said.append(f"completed by {wait.get('completed_by')} at "
                    f"{_clock(wait['completed_at'], since)}")
    return ", ".join(said)


def stats(args: argparse.Namespace, api: ApiClient) -> int:
    if args.saga_id:
        body = api.call("GET", f"/sagas/{args.saga_id}/stats")
        runs = body.get("executions", {})
        human = (f"{body['saga_id']} {body['version']}: {body['steps']} steps "
                 f"({body.get('conditional_steps', 0)} conditional, "
                 f"{body.get('fanout_steps', 0)} fan-out), "
                 f"{body['versions']} version(s); {runs.get('executions', 0)} executions "
                 f"({by_status(runs.get('by_status'))}), success rate "
                 f"{rate(runs.get('success_rate'))}")
    else:
        body = api.call("GET", "/stats")
        runs, defs = body.get("executions", {}), body["definitions"]
        human = (f"{defs['sagas']} sagas ({defs['active_sagas']} active, {defs['steps']} "
                 f"steps); {runs.get('executions', 0)} executions "
                 f"({by_status(runs.get('by_status'))}), {runs.get('running', 0)} running, "
                 f"success rate {rate(runs.get('success_rate'))}")
    _emit(args, body, human)
    return Exit.OK


def verify(args: argparse.Namespace, api: ApiClient) -> int:
    """Every failure point of the saga, run on the local stack (fault injection must be on:
    the local and test stages); exit 1 if a case fails."""
    from chalicelib.config import get_settings
    from chalicelib.domain.models import Step, StepDefinition
    from infra.verify import plan, report
    from infra.verify.runner import Verifier

    # The service's own settings, as this stage configures them (`make run` reads the same).
    configured = get_settings().saga
    attempts = args.retriable_max_attempts or configured.retriable_max_attempts
    margin_s = args.task_timeout_margin or configured.task_timeout_margin_s
    saga = api.call("GET", f"/sagas/{args.saga_id}")
    steps = [Step.of(StepDefinition.model_validate(s)) for s in saga["steps"]]
    cases, skipped = plan.plan(steps, retriable_max_attempts=attempts,
                               task_timeout_margin_s=margin_s)
    if args.case:
        cases = [c for c in cases if any(part in c.name for part in args.case)]
    verifier = Verifier(api, args.saga_id, _input(args.input) if args.input else {},
                        budget_s=plan.run_budget_s(steps, margin_s),
                        check=args.check)
    results = verifier.run_all(cases, args.concurrency)
    if args.junit:
        Path(args.junit).write_text(report.junit(args.saga_id, results))
    _emit(args, [{"case": r.case.name, "execution_id": r.execution_id, "status": r.status,
                  "passed": r.passed, "problems": r.problems} for r in results],
          report.text(args.saga_id, results, skipped))
    return 0 if all(r.passed for r in results) else 1


# -- wiring ----------------------------------------------------------------------

class _WithExitCodes:
    """Subcommands whose help ends with the exit codes."""

    def __init__(self, commands: Any) -> None:
        self._commands = commands

    def add_parser(self, name: str, **kwargs: Any) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = self._commands.add_parser(
            name, epilog=exit_codes_help(), formatter_class=argparse.RawDescriptionHelpFormatter,
            **kwargs)
        return parser


def add_commands(subcommands: Any) -> None:
    commands = _WithExitCodes(subcommands)

    def common(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--json", action="store_true", help="JSON output, for scripts")
        parser.add_argument("--api", help="API base URL (default $SAGA_API_URL or "
                            "http://127.0.0.1:8000)")
        parser.add_argument("--ws", help="WebSocket URL (default $SAGA_WS_URL or "
                            "ws://127.0.0.1:8001/ws)")

    saga_action = _actions(commands.add_parser(
        "sagas", help="create, list, show, versions, delete, (de)activate sagas"),
        _with_api(sagas), common, "the saga's id")
    saga_action("create", "store a saga, or a higher version of one",
                with_id=False).add_argument("-f", "--file", required=True,
                                            help="the definition (JSON or YAML; - for stdin)")
    listing = saga_action("list", "the latest version of each saga", with_id=False)
    listing.add_argument("--active", choices=["true", "false"])
    listing.add_argument("--type")
    listing.add_argument("--limit", type=int, default=100)
    listing.add_argument("--cursor", help="the page after this one (the `more:` line)")
    saga_action("show", "one saga: its steps, workflow and deadline").add_argument(
        "--version", help="this version instead of the latest")
    saga_action("versions", "every stored version, with its revision and workflow")
    saga_action("delete", "remove a saga and its versions")
    saga_action("activate", "let a saga be executed")
    saga_action("deactivate", "refuse new executions of a saga")

    parser = commands.add_parser("run", help="execute a saga (--follow: watch it live)")
    parser.add_argument("saga_id")
    parser.add_argument("--input", help="the execution's input: inline JSON ({...}), a JSON "
                        "or YAML file, or - for stdin")
    parser.add_argument("--faults", help="faults to inject (a JSON list inline, or a JSON or "
                        "YAML file; local stages)")
    parser.add_argument("--execution-id")
    parser.add_argument("--follow", action="store_true",
                        help="show each step as it happens; exit 1 unless it COMPLETED")
    parser.add_argument("--timeout", type=float, default=300.0,
                        help="--follow: give up after this many seconds without an event")
    common(parser)
    parser.set_defaults(handler=_with_api(run))

    action = _actions(commands.add_parser(
        "executions", help="list, show, history, follow, compensate, retry-compensation, "
        "retry-forward, resolve"), _with_api(executions), common, "the execution's id",
        follow=False, timeout=300.0)

    def watching(sub: argparse.ArgumentParser, *, follow: bool = True) -> None:
        if follow:
            sub.add_argument("--follow", action="store_true", help="watch it until it ends "
                             "(exit 0 only if it COMPLETED)")
        sub.add_argument("--timeout", type=float, default=300.0,
                         help="give up after this many seconds without an event")

    listing = action("list", "executions, newest first (filters, pages)", with_id=False)
    listing.add_argument("--saga", help="only this saga's")
    listing.add_argument("--status", help="only in this status")
    listing.add_argument("--after", help="started at or after (ISO 8601 with a zone)")
    listing.add_argument("--before", help="started before (ISO 8601 with a zone)")
    listing.add_argument("--limit", type=int, default=50, help="executions shown")
    listing.add_argument("--cursor", help="the page after this one (the `more:` line)")
    listing.add_argument("--needs-attention", action="store_true",
                         help="only the triage queue (COMPENSATION_FAILED, PARKED or TIMED_OUT, "
                         "not resolved)")
    watching(action("show", "one execution: its steps, attempts, waits and result"))
    action("history", "every event of an execution, in order").add_argument(
        "--limit", type=int, default=50, help="events shown")
    watching(action("follow", "attach to a running execution and print each step as it "
                    "happens"), follow=False)
    watching(action("compensate", "undo a COMPLETED execution, in reverse"))
    watching(action("retry-compensation", "run a failed compensation again"))
    watching(action("retry-forward", "run a PARKED execution on from its parked step"))
    action("resolve", "record that a person handled a failed end").add_argument(
        "--reason", required=True, help="why it is resolved")

    add_callback_actions(_actions(commands.add_parser(
        "callbacks", help="list the open callbacks (--approvals: approvals only), succeed or "
        "fail one"), _with_api(callbacks), common, "the callback's id (saga callbacks list)"))

    parser = commands.add_parser(
        "verify", help="run a saga once per failure point (fault injection) and check that "
        "every compensation path undoes exactly what it must")
    parser.add_argument("saga_id")
    parser.add_argument("--input", help="the executions' input (JSON or YAML file; - stdin)")
    parser.add_argument("--check", help="a shell command run after each case with "
                        "SAGA_EXECUTION_ID, SAGA_CASE, SAGA_STATUS, SAGA_UNDONE set: exit 0 "
                        "when the participants' own state shows the undo really undid")
    parser.add_argument("--junit", help="write the results as JUnit XML to this file")
    parser.add_argument("--concurrency", type=int, default=8,
                        help="cases run at once (default 8)")
    parser.add_argument("--retriable-max-attempts", type=int,
                        help="the service's saga.retriable_max_attempts (default: this "
                        "stage's configuration)")
    parser.add_argument("--task-timeout-margin", type=int,
                        help="the service's saga.task_timeout_margin in seconds (default: "
                        "this stage's configuration)")
    parser.add_argument("--case", action="append", default=[],
                        help="run only the cases whose name contains this (repeatable)")
    common(parser)
    parser.set_defaults(handler=_with_api(verify))

    parser = commands.add_parser("stats", help="service statistics, or one saga's")
    parser.add_argument("saga_id", nargs="?")
    common(parser)
    parser.set_defaults(handler=_with_api(stats))


def _actions(parser: argparse.ArgumentParser, handler: Any, common: Any, id_help: str,
             **defaults: Any) -> Any:
    """A command whose actions are subcommands, each with its own options and help; returns
    the factory that adds one (with the id it acts on unless with_id=False)."""
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    def action(name: str, help: str, *, with_id: bool = True) -> argparse.ArgumentParser:
        sub: argparse.ArgumentParser = actions.add_parser(
            name, help=help, epilog=exit_codes_help(),
            formatter_class=argparse.RawDescriptionHelpFormatter)
        if with_id:
            sub.add_argument("id", help=id_help)
        sub.set_defaults(handler=handler, **defaults)
        common(sub)
        return sub

    return action


def _with_api(command: Any) -> Any:
    def handler(args: argparse.Namespace) -> int:
        try:
            return int(command(args, ApiClient.from_env(args.api, args.ws)))
        except ApiError as error:
            print(f"saga: {error.message}", file=sys.stderr)
            violations = (error.body or {}).get("error", {}).get("violations", [])
            for v in violations:
                print(f"  {v['field']}: {v['message']} (got {v['value']!r})", file=sys.stderr)
            if error.status == -2 or 400 <= error.status < 500:
                return Exit.REFUSED
            return Exit.UNAVAILABLE
        except (OSError, ValueError) as error:
            print(f"saga: {error}", file=sys.stderr)
            return Exit.REFUSED

    return handler
