"""A small Amazon States Language interpreter for the compiler's machines, in memory.

It follows a machine as Step Functions would (Task, Pass, Choice, Parallel, Map, Wait,
Succeed, Fail; Catch, ResultPath, ResultSelector, InputPath, Parameters, ItemsPath,
ItemSelector), given how each Task ends: "ok" (the default), "error", "timeout", "unknown" or
"unknown-final"; for a callback Task also "heartbeat" (its heartbeats stopped),
"callback-failed" (completed with /fail) and "completed-early" (completed while its call was
out); "skipped" (a callback or a timer whose condition is false raises Saga.StepSkipped) and
"fanout-failed" (a fan-out's gather, past its tolerance). A lambda:invoke Task's Payload is
what its Lambda receives, so that is what `tasks` records; a Wait state is entered and left
(no clock). A Parallel state runs its branches one after the other, and a Map state its
iterations in item order (MaxConcurrency is not modelled); the machines catch every failure
inside their branches and iterations, so the order does not change where a run goes.

`outcomes` says how Tasks end: by state name, or for a Task inside a Map iteration by
"<state name>[<item>]" first (the item's value: for the compiler's Maps, the item's index);
or a function of (state name, rendered Parameters) that the walk asks as each Task runs.
`answers` says what a Task's Lambda answers when it succeeds (its ResultSelector and
ResultPath then apply), looked up the same way; a Task with no answer gets a stand-in for each
field its ResultSelector reads. A function may answer None: no answer.
The step runtime's own decisions (an undo of a step whose action failed for good does
nothing, the items a fan-out lists to undo) are left to the caller, which sees every Task in
`tasks`, or decides them as they run through the functions.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

_SEGMENT = re.compile(r"\.([A-Za-z0-9_]+)|\[(\d+)\]")
# "unknown" and "unknown-final": the step Lambda's names for an attempt whose outcome is
# unknown (lifecycle.OUTCOME_UNKNOWN, OUTCOME_UNKNOWN_FINAL).
_ERRORS = {"error": "Step.Failed", "timeout": "States.Timeout",
           "unknown": "Saga.OutcomeUnknown", "unknown-final": "Saga.OutcomeUnknownFinal",
           "heartbeat": "States.HeartbeatTimeout", "callback-failed": "Saga.CallbackFailed",
           "completed-early": "Saga.CallbackCompleted", "skipped": "Saga.StepSkipped",
           "fanout-failed": "Saga.FanOutFailed", "child-running": "Saga.ChildRunning",
           "permanent": "PermanentError"}
# How Tasks end, and what their Lambdas answer: by state name, or asked as each one runs.
Outcomes = Mapping[str, str] | Callable[[str, dict[str, Any]], str]
Answers = Mapping[str, Any] | Callable[[str, dict[str, Any]], Any]


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


def context_of(name: str = "", item: tuple[int, Any] | None = None) -> dict[str, Any]:
    """The context object ($$) a state sees: its retry count is always 0 (retries are not
    walked); inside a Map iteration, the item's index and value."""
    context: dict[str, Any] = {
        "Execution": {"Id": "e-1"},
        "StateMachine": {"Id": "arn:aws:states:us-east-1:000000000000:stateMachine:m"},
        "State": {"Name": name, "RetryCount": 0}, "Task": {"Token": f"token-of-{name}"}}
    if item is not None:
        context["Map"] = {"Item": {"Index": item[0], "Value": item[1]}}
    return context


def render(parameters: Mapping[str, Any], data: Any,
           context: Mapping[str, Any] | None = None) -> dict[str, Any]:
    context = context if context is not None else context_of()
    rendered: dict[str, Any] = {}
    for key, value in parameters.items():
        if key.endswith(".$"):
            rendered[key[:-2]] = (get_path(context, value[1:]) if value.startswith("$$.")
                                  else get_path(data, value))
        elif isinstance(value, Mapping):
            rendered[key] = render(value, data, context)
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


@dataclass(frozen=True)
class _Script:
    """How each Task ends and what it answers, by name, item or as it runs."""

    outcomes: Outcomes
    answers: Answers

    @staticmethod
    def _ask(table: Outcomes | Answers, name: str, params: dict[str, Any],
             item: tuple[int, Any] | None, default: Any) -> Any:
        if callable(table):
            return table(name, params)
        if item is not None and f"{name}[{item[1]}]" in table:
            return table[f"{name}[{item[1]}]"]
        return table.get(name, default)

    def outcome(self, name: str, params: dict[str, Any], item: tuple[int, Any] | None) -> str:
        return str(self._ask(self.outcomes, name, params, item, "ok"))

    def answer(self, name: str, params: dict[str, Any], item: tuple[int, Any] | None) -> Any:
        return self._ask(self.answers, name, params, item, None)


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
    if "BooleanEquals" in rule:
        if not isinstance(value, bool):
            raise AssertionError(f"BooleanEquals on a {type(value).__name__}")
        return bool(value is rule["BooleanEquals"])
    if "IsNull" in rule:
        return (value is None) is bool(rule["IsNull"])
    raise AssertionError(f"unsupported Choice rule {rule}")


def _catch(state: Mapping[str, Any], error: dict[str, Any]) -> Mapping[str, Any] | None:
    return next((c for c in state.get("Catch", [])
                 if error["Error"] in c["ErrorEquals"] or "States.ALL" in c["ErrorEquals"]),
                None)


def _result(state: Mapping[str, Any], answer: Any, context: Mapping[str, Any]) -> Any:
    """A successful Task's result: its ResultSelector over the answer, or a stand-in for each
    field the selector reads when nothing was answered."""
    selector = state.get("ResultSelector")
    if answer is None:
        return {key[:-2] if key.endswith(".$") else key:
                "<answer>" if key.endswith(".$") else value
                for key, value in (selector or {}).items()}
    return render(selector, answer, context) if selector is not None else answer


def _run(states: Mapping[str, Any], start: str, data: Any, script: _Script, run: Run,
         item: tuple[int, Any] | None = None) -> tuple[Any, str]:
    """Run states from `start` to an end; item: the Map iteration's (index, value), if any."""
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
        context = context_of(name, item)
        if kind == "Task":
            params = render(state.get("Parameters", {}), data, context)
            if str(state["Resource"]).startswith("arn:aws:states:::lambda:invoke"):
                params = params["Payload"]
            outcome = script.outcome(name, params, item)
            run.tasks.append((name, params, outcome))
            if outcome != "ok":
                error = {"Error": _ERRORS[outcome], "Cause": f"{name} failed"}
            elif state.get("ResultPath", "$") is not None:
                data = set_path(data, state.get("ResultPath", "$"),
                                _result(state, script.answer(name, params, item), context))
        elif kind == "Pass":
            value = get_path(data, state.get("InputPath", "$"))
            if "Result" in state:
                value = copy.deepcopy(state["Result"])
            elif "Parameters" in state:
                value = render(state["Parameters"], value, context)
            data = set_path(data, state.get("ResultPath", "$"), value)
        elif kind == "Parallel":
            branch_input = (render(state["Parameters"], data, context) if "Parameters" in state
                            else data)
            outputs = []
            try:
                for branch in state["Branches"]:
                    outputs.append(_run(branch["States"], branch["StartAt"],
                                        copy.deepcopy(branch_input), script, run)[0])
            except Unhandled as failed:
                error = failed.error
            else:
                data = set_path(data, state.get("ResultPath", "$"), outputs)
        elif kind == "Map":
            error, data = _map(name, state, data, script, run)
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


def _map(name: str, state: Mapping[str, Any], data: Any, script: _Script,
         run: Run) -> tuple[dict[str, Any] | None, Any]:
    """A Map state: (the error of an iteration that did not catch its own, or None; the data
    after it). Each item's input is its ItemSelector rendered with $$.Map.Item; the results
    are the iterations' outputs in item order."""
    for unsupported in ("ItemReader", "ItemBatcher", "ResultWriter", "ToleratedFailureCount",
                        "ToleratedFailurePercentage"):
        assert unsupported not in state, f"a Map state with {unsupported} is not walked"
    items = get_path(get_path(data, state.get("InputPath", "$")), state.get("ItemsPath", "$"))
    assert isinstance(items, list), (
        f"{name}'s ItemsPath {state.get('ItemsPath', '$')} holds {items!r}, not a list (script "
        "the answer of the Task that wrote it)")
    processor = state.get("ItemProcessor") or state["Iterator"]
    selector = state.get("ItemSelector", state.get("Parameters"))
    outputs = []
    try:
        for index, value in enumerate(items):
            item = (index, value)
            item_input = (render(selector, data, context_of(name, item)) if selector is not None
                          else value)
            outputs.append(_run(processor["States"], processor["StartAt"],
                                copy.deepcopy(item_input), script, run, item)[0])
    except Unhandled as failed:
        return failed.error, data
    result = (render(state["ResultSelector"], outputs, context_of(name))
              if "ResultSelector" in state else outputs)
    return None, set_path(data, state.get("ResultPath", "$"), result)


def walk(machine: Mapping[str, Any], outcomes: Outcomes,
         data: Mapping[str, Any] | None = None, *, answers: Answers | None = None) -> Run:
    """Run a machine to its end; Run.end is the Succeed or Fail state it stopped in."""
    run = Run()
    start = data if data is not None else {"execution_id": "e-1", "error": None,
                                           "resume_at": ""}
    script = _Script(outcomes, answers if answers is not None else {})
    try:
        _, run.end = _run(machine["States"], machine["StartAt"], dict(start), script, run)
    except Unhandled as failed:
        run.end = failed.error.get("state", failed.error["Error"])
    return run
