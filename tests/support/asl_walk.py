"""A small Amazon States Language interpreter for the compiler's machines, in memory.

It follows a machine as Step Functions would (Task, Pass, Choice, Parallel, Wait, Succeed,
Fail; Catch, ResultPath, InputPath, Parameters), given how each Task ends: "ok" (the default),
"error", "timeout", "unknown" or "unknown-final"; for a callback Task also "heartbeat" (its
heartbeats stopped), "callback-failed" (completed with /fail) and "completed-early" (completed
while its call was out). A lambda:invoke Task's Payload is what its Lambda receives, so that
is what `tasks` records; a Wait state is entered and left (no clock). A Parallel state runs
its branches one after the other; the machines catch every failure inside their branches, so
the order does not change where a run goes.
The step runtime's own decision that matters here (an undo of a step whose action failed for
good does nothing) is left to the caller, which sees every Task in `tasks`.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

_SEGMENT = re.compile(r"\.([A-Za-z0-9_]+)|\[(\d+)\]")
# "unknown" and "unknown-final": the step Lambda's names for an attempt whose outcome is
# unknown (lifecycle.OUTCOME_UNKNOWN, OUTCOME_UNKNOWN_FINAL).
_ERRORS = {"error": "Step.Failed", "timeout": "States.Timeout",
           "unknown": "Saga.OutcomeUnknown", "unknown-final": "Saga.OutcomeUnknownFinal",
           "heartbeat": "States.HeartbeatTimeout", "callback-failed": "Saga.CallbackFailed",
           "completed-early": "Saga.CallbackCompleted"}


class Missing(KeyError):
    """A path that names nothing in the data."""


def get_path(data: Any, path: str) -> Any:
    if path == "$":
        return data
    node = data
    for name, index in _SEGMENT.findall(path[1:]):
        try:
            node = node[int(index)] if index else node[name]
        except (KeyError, IndexError, TypeError):
            raise Missing(path) from None
    return node


def set_path(data: Any, path: str | None, value: Any) -> Any:
    """ResultPath: null keeps the input, "$" replaces it, "$.a.b" sets a field of a copy."""
    if path is None:
        return data
    if path == "$":
        return value
    result = copy.deepcopy(data)
    node = result
    names = [name for name, _ in _SEGMENT.findall(path[1:])]
    for name in names[:-1]:
        node = node.setdefault(name, {})
    node[names[-1]] = value
    return result


def render(parameters: Mapping[str, Any], data: Any) -> dict[str, Any]:
    rendered: dict[str, Any] = {}
    for key, value in parameters.items():
        if key.endswith(".$"):
            rendered[key[:-2]] = 0 if value.startswith("$$.") else get_path(data, value)
        elif isinstance(value, Mapping):
            rendered[key] = render(value, data)
        else:
            rendered[key] = value
    return rendered


@dataclass
class Run:
    visited: list[str] = field(default_factory=list)  # every state entered, branches' too
    # (state name, its rendered Parameters, how it ended), in the order they ran
    tasks: list[tuple[str, dict[str, Any], str]] = field(default_factory=list)
    end: str = ""

    @property
    def transitions(self) -> int:
        return len(self.visited)


class Unhandled(Exception):
    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(error["Error"])
        self.error = error


def _matches(rule: Mapping[str, Any], data: Any) -> bool:
    if "Or" in rule:
        return any(_matches(r, data) for r in rule["Or"])
    if "And" in rule:
        return all(_matches(r, data) for r in rule["And"])
    if "Not" in rule:
        return not _matches(rule["Not"], data)
    try:
        value = get_path(data, rule["Variable"])
    except Missing:
        if "IsPresent" in rule:
            return not rule["IsPresent"]
        raise AssertionError(f"a Choice reads a missing path {rule['Variable']}") from None
    if "IsPresent" in rule:
        return bool(rule["IsPresent"])
    if "StringEquals" in rule:
        if not isinstance(value, str):
            raise AssertionError(f"StringEquals on a {type(value).__name__}")
        return bool(value == rule["StringEquals"])
    raise AssertionError(f"unsupported Choice rule {rule}")


def _catch(state: Mapping[str, Any], error: dict[str, Any]) -> Mapping[str, Any] | None:
    return next((c for c in state.get("Catch", [])
                 if error["Error"] in c["ErrorEquals"] or "States.ALL" in c["ErrorEquals"]),
                None)


def _run(states: Mapping[str, Any], start: str, data: Any, outcomes: Mapping[str, str],
         run: Run) -> tuple[Any, str]:
    name = start
    for _ in range(10_000):
        run.visited.append(name)
        state = states[name]
        kind = state["Type"]
        if kind == "Fail":
            raise Unhandled({"Error": state["Error"], "Cause": state.get("Cause", ""),
                             "state": name})
        if kind == "Succeed":
            return data, name
        if kind == "Choice":
            name = next((c["Next"] for c in state["Choices"] if _matches(c, data)),
                        state.get("Default"))
            assert name is not None, "a Choice without a match and no Default"
            continue
        error: dict[str, Any] | None = None
        if kind == "Wait":
            name = state["Next"]
            continue
        if kind == "Task":
            params = render(state.get("Parameters", {}), data)
            if str(state["Resource"]).startswith("arn:aws:states:::lambda:invoke"):
                params = params["Payload"]
            outcome = outcomes.get(name, "ok")
            run.tasks.append((name, params, outcome))
            if outcome != "ok":
                error = {"Error": _ERRORS[outcome], "Cause": f"{name} failed"}
            elif state.get("ResultPath", "$") is not None:
                # The Lambda's answer is not modelled: a ResultSelector's literals, and a
                # stand-in for each field it reads of the answer.
                selector = state.get("ResultSelector", {})
                data = set_path(data, state.get("ResultPath", "$"), {
                    key[:-2] if key.endswith(".$") else key:
                    "<answer>" if key.endswith(".$") else value
                    for key, value in selector.items()})
        elif kind == "Pass":
            value = get_path(data, state.get("InputPath", "$"))
            if "Parameters" in state:
                value = render(state["Parameters"], value)
            data = set_path(data, state.get("ResultPath", "$"), value)
        elif kind == "Parallel":
            branch_input = render(state["Parameters"], data) if "Parameters" in state else data
            outputs = []
            try:
                for branch in state["Branches"]:
                    outputs.append(_run(branch["States"], branch["StartAt"],
                                        copy.deepcopy(branch_input), outcomes, run)[0])
            except Unhandled as failed:
                error = failed.error
            else:
                data = set_path(data, state.get("ResultPath", "$"), outputs)
        else:
            raise AssertionError(f"unsupported state type {kind}")
        if error is not None:
            caught = _catch(state, error)
            if caught is None:
                raise Unhandled(error)
            data = set_path(data, caught.get("ResultPath", "$"), {
                key: value for key, value in error.items() if key != "state"})
            name = caught["Next"]
            continue
        if state.get("End"):
            return data, name
        name = state["Next"]
    raise AssertionError("the machine loops")


def walk(machine: Mapping[str, Any], outcomes: Mapping[str, str],
         data: Mapping[str, Any] | None = None) -> Run:
    """Run a machine to its end; Run.end is the Succeed or Fail state it stopped in."""
    run = Run()
    start = data if data is not None else {"execution_id": "e-1", "error": None,
                                           "resume_at": ""}
    try:
        _, run.end = _run(machine["States"], machine["StartAt"], dict(start), outcomes, run)
    except Unhandled as failed:
        run.end = failed.error.get("state", failed.error["Error"])
    return run
