"""The OpenAPI 3 document of the API, built from the app's routes and the configured
validation rules.

The paths, methods and path parameters are the Chalice app's own route table (app.routes);
this module adds, by the name of each route's view, its summary, query parameters, request
body and responses, and the schemas. `saga openapi` writes it to chalicelib/http/openapi.json
(committed, and served at /api/v1/saga/openapi.json); a test checks that the file is current.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from chalicelib.config import SagaSettings
from chalicelib.domain.lifecycle import ExecutionStatus, Phase, StepKind, StepStatus, WaitKind
from chalicelib.domain.storable import MAX_REQUEST_DEPTH
from chalicelib.domain.validation import MAX_ORDER, NOT_FOR_RETRIABLE, SAFE_ID
from chalicelib.domain.workflow import DEFAULT_WORKFLOW, Workflow
from chalicelib.http.console import ACTIONS as CONSOLE_ACTIONS
from chalicelib.http.paths import API_PREFIX

# The committed document: what clients were promised.
OPENAPI_FILE = Path(__file__).with_name("openapi.json")

_ID_PATTERN = f"^{SAFE_ID.pattern}$"
_DURATION_PATTERN = r"^(\d+(\.\d+)?(ms|s|m|h|d))+$"
_SEMVER_PATTERN = r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$"


def _string(rule: dict[str, Any], **extra: Any) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string", **extra}
    if "min_length" in rule:
        schema["minLength"] = rule["min_length"]
    if "max_length" in rule:
        schema["maxLength"] = rule["max_length"]
    return schema


def _step_schema(rules: dict[str, Any], saga: SagaSettings) -> dict[str, Any]:
    step_types = saga.supported_step_types
    retries = rules.get("max_retries", {})
    timeout = rules.get("timeout", {})
    required = [name for name, rule in rules.items() if rule.get("required")]
    # A retriable step has no compensation and no max_retries; every other step needs them.
    unless_retriable = [name for name in required if name in NOT_FOR_RETRIABLE]
    schema: dict[str, Any] = {
        "type": "object",
        "additionalProperties": False,
        "required": [name for name in required if name not in unless_retriable] + ["order"],
        "properties": {
            "id": _string(rules.get("id", {}), pattern=_ID_PATTERN),
            "name": _string(rules.get("name", {})),
            "description": _string(rules.get("description", {})),
            "order": {"type": "integer", "minimum": 1, "maximum": MAX_ORDER, "description": (
                "when it runs: ascending. Active steps that share an order form a group and "
                "run in parallel (a Step Functions Parallel state); when one of them fails for "
                "good the others finish the attempt they are in, then every step that took "
                "effect, in the group and before it, is compensated: a group's compensations "
                "in parallel, groups in reverse order")},
            "kind": {"type": "string", "enum": [kind.value for kind in StepKind],
                     "default": StepKind.COMPENSATABLE.value, "description": (
                         "compensatable: undone when a later step fails for good. pivot (at "
                         "most one, alone in its group): the go/no-go point; once it succeeds "
                         "the saga only goes forward. retriable (every step after the pivot, "
                         "no compensation, no max_retries): retried up to "
                         "saga.retriable_max_attempts with capped exponential backoff, then "
                         "the execution is PARKED for an operator to retry forward or "
                         "resolve. callback (alone in its group, either side of the pivot): "
                         "its action (optional: without one it is an approval) is called once "
                         "with a callback object, then the step WAITS until it is completed "
                         "through /callbacks/{id}/succeed or /fail, or its timeout (the whole "
                         "wait, at most saga.max_wait) ends it as an unknown outcome, "
                         "compensated (after the pivot: parked). wait (alone in its group): "
                         "a timer, `wait` (a duration) or `until` (a reference to a timestamp); "
                         "no action, no compensation, never undone")},
            "action": _string(rules.get("action", {})),
            "compensation": _string(rules.get("compensation", {})),
            "max_retries": {"type": "integer", "minimum": retries.get("min", 0),
                            "maximum": retries.get("max", 10)},
            "timeout": {"type": "string", "pattern": _DURATION_PATTERN,
                        "description": "a duration such as 500ms, 30s, 2m or 1h, from "
                        f"{timeout.get('min')} to {timeout.get('max')}"},
            "wait": {"type": "string", "pattern": _DURATION_PATTERN, "description": (
                "kind wait: how long, such as 15m, 24h or 7d (at most saga.max_wait)")},
            "until": {"type": "string", "description": (
                "kind wait: a reference to an ISO 8601 timestamp in the input or an earlier "
                "step's result, such as $.input.deliver_by (UTC when it has no zone)")},
            "call_timeout": {"type": "string", "pattern": _DURATION_PATTERN, "description": (
                "kind callback: how long its action's first call may take (default 30s; the "
                "rule of a step's timeout); its timeout is the whole wait")},
            "heartbeat": {"type": "string", "pattern": _DURATION_PATTERN, "description": (
                "kind callback: the wait ends (an unknown outcome) unless a heartbeat arrives "
                "at least this often; shorter than its timeout")},
            **_branch_properties(saga),
            "active": {"type": "boolean", "default": True},
            # Free-form unless the config lists the allowed types.
            "type": {"type": "string", **({"enum": step_types} if step_types else {})},
            "config": {"type": "object", "description": "settings for the action"},
            "input": {"type": "object", "description": (
                "what the step receives as its input: literals, and references "
                "'$.input[.<path>]', '$.results.<earlier step id>[.<path>]' or "
                "'$.execution.id' (a path is field names and [index]es separated by dots; "
                "'$$.' stands for a literal '$.'). Left out: the execution's whole input. A "
                "reference to a result field absent when the step runs fails it for good. "
                "Keys must not start with '$' or contain '.' or NUL (MongoDB refuses them)")},
        },
    }
    # A timer needs none of the configured fields but its id; a callback no timeout rule
    # (saga.max_wait) and, as an approval, no action or compensation.
    waiting = [StepKind.WAIT.value, StepKind.CALLBACK.value]
    schema["required"] = [name for name in schema["required"]
                          if name in ("id", "order", "name", "description")]
    others = [name for name in required if name not in ("id", "name", "description")]
    schema["anyOf"] = [
        {"required": ["kind"], "properties": {"kind": {"enum": waiting}}},
        {"required": ["kind"], "properties": {"kind": {"enum": [StepKind.RETRIABLE.value]}},
         "allOf": [{"required": [n for n in others if n not in unless_retriable]}]},
        {"required": ["saga"]},  # a child step: its saga does the work
        {"required": others}]
    from chalicelib.domain.models import StepDefinition

    return _null_where_the_model_allows(schema, StepDefinition)


# A percentage of a fan-out's items as tolerated_failures takes it: "0%" to "100%".
_PERCENT_PATTERN = r"^(0?\d{1,2}|100)%$"


def _branch_properties(saga: SagaSettings) -> dict[str, Any]:
    """A step's fields that branch (when) and fan out (for_each and its bounds)."""
    return {
        "when": {"type": "string", "maxLength": 1000, "description": (
            "a condition: the step runs only if it is true when the step's turn comes; "
            "otherwise the step is SKIPPED (never run, never compensated; GET "
            "/executions/{id} and the saga.step.skipped event record the condition, its "
            "value and the values it read). References as in input ($.input.<path>, "
            "$.results.<earlier step id>.<path>, $.execution.id) compared with JSON literals: "
            "==, !=, <, <=, >, >=, in, not in, exists <reference>, combined with and, or, not "
            "and parentheses, such as $.input.kind != \"digital\". An absent reference "
            "equals nothing and counts as false. Never on the pivot")},
        "for_each": {"type": "string", "description": (
            "a fan-out: a reference to a list in the input or an earlier step's result, such "
            "as $.input.lines; the step runs once per item (at most saga.max_fanout_items = "
            f"{saga.max_fanout_items}), each item a run of its own named <step id>[<index>] "
            "whose input may read $.item (the element) and $.item.<path>. Its result is "
            "{\"items\": [...]}, each item's result in item order (null for an item that "
            "failed within tolerated_failures). Only a compensatable step fans out, alone in "
            "its group; every item that acted is undone with its own result")},
        "max_concurrency": {"type": "integer", "minimum": 1,
                            "maximum": saga.max_fanout_concurrency, "description": (
                                "with for_each: how many items run at once, at most "
                                "(default and ceiling: saga.max_fanout_concurrency)")},
        "tolerated_failures": {
            "oneOf": [{"type": "integer", "minimum": 0},
                      {"type": "string", "pattern": _PERCENT_PATTERN}],
            "description": (
                "with for_each: how many items may fail for good before the step does: a "
                "count, or a percentage of the items (\"10%\", rounded down). Default 0; "
                "past it no new item starts and the step fails")},
        "saga": {"type": "string", "description": (
            "a child step: the id of another saga it runs (its latest active version, or "
            "saga_version), with the step's input as the child's input; the step waits for "
            "the child, and the child's output (its steps' results by id when its saga maps "
            "none) is the step's result. No action, compensation or max_retries: when this "
            "saga compensates, a completed child is compensated as a whole. The saga must "
            "exist; a compensatable child's saga has no pivot; no saga may call this one back "
            "(a cycle); children nest at most saga.max_child_depth = "
            f"{saga.max_child_depth} deep. Its timeout is its whole wait for the child "
            "(default 1h, at most saga.max_wait)")},
        "saga_version": {"type": "string", "description": (
            "with saga: the child saga's version to run (a semantic version); default its "
            "latest")},
    }


def _null_where_the_model_allows(schema: dict[str, Any], model: type[Any]) -> dict[str, Any]:
    """Every property whose model field takes None (a definition's optional fields) as
    nullable: the service reads null as "left out" and returns the field as null."""
    import types
    import typing

    for name, field in model.model_fields.items():
        prop = schema["properties"].get(name)
        annotation = field.annotation
        takes_none = type(None) in typing.get_args(annotation) or (
            isinstance(annotation, types.UnionType) and type(None) in annotation.__args__)
        if prop is not None and takes_none and name not in schema["required"]:
            prop["nullable"] = True
    return schema


def _saga_schema(rules: dict[str, Any], saga: SagaSettings) -> dict[str, Any]:
    from chalicelib.domain.models import SagaDefinition

    return _null_where_the_model_allows(_saga_properties(rules, saga), SagaDefinition)


def _saga_properties(rules: dict[str, Any], saga: SagaSettings) -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": [name for name, rule in rules.items() if rule.get("required")] + ["steps"],
        "properties": {
            "id": _string(rules.get("id", {}), pattern=_ID_PATTERN),
            "name": _string(rules.get("name", {})),
            "description": _string(rules.get("description", {})),
            "version": {"type": "string", "pattern": _SEMVER_PATTERN},
            "steps": {"type": "array", "minItems": 1, "maxItems": saga.max_steps_per_saga,
                      "items": {"$ref": "#/components/schemas/StepDefinition"}},
            "active": {"type": "boolean", "default": True},
            "type": {"type": "string", **({"enum": saga.supported_saga_types}
                                          if saga.supported_saga_types else {})},
            "metadata": {"type": "object", "additionalProperties": {"type": "string"}},
            "output": {"type": "object", "description": (
                "what a COMPLETED execution produces: a mapping in the steps' input language, "
                "resolved against the input and every step's result as the execution completes "
                "(in GET /executions/{id}, the saga.completed event and the WebSocket push); "
                "its keys follow the rule of a step's input")},
            "workflow": {"type": "string", "enum": [w.value for w in Workflow],
                         "default": DEFAULT_WORKFLOW.value, "description": (
                             "what runs the forward path: a Standard workflow, an Express one "
                             "(cheaper, at most 5 minutes, no callback steps; compensations "
                             "still run on Standard), or auto (Express when the forward path "
                             "surely fits in 4 minutes and no step waits)")},
            "deadline": {"type": "string", "pattern": _DURATION_PATTERN, "description": (
                "how long an execution may take to complete, from its start (such as 24h; "
                f"at least 1s, at most saga.max_wait: {saga.max_wait}). When it passes, the "
                "step at work is abandoned as an unknown outcome and what completed is "
                "compensated (error type Deadline, reason deadline); past the pivot the "
                "execution parks instead")},
        },
    }


def _execution_step_schema() -> dict[str, Any]:
    """A step of an execution as GET /executions/{id} shows it (chalicelib.domain.executions'
    StepRun): a fan-out's items follow their step, each a step of its own."""
    nullable_time = {"type": "string", "format": "date-time", "nullable": True}
    return {
        "type": "object",
        "required": ["step_id", "position", "status", "attempts"],
        "properties": {
            "step_id": {"type": "string", "description": (
                "the step's id; an item of a fan-out is <step id>[<index>]")},
            "position": {"type": "integer", "description": (
                "its place in the execution (an item shares its fan-out's)")},
            "group": {"type": "integer", "nullable": True,
                      "description": "the parallel group it runs in (its order)"},
            "kind": {"type": "string", "nullable": True,
                     "enum": [kind.value for kind in StepKind] + [None]},
            "status": {"type": "string", "enum": [status.value for status in StepStatus],
                       "description": (
                           "SKIPPED: its when was false when its turn came (condition says "
                           "why); it never ran and is never compensated. WAITING: a callback "
                           "or a timer waits. OUTCOME_UNKNOWN: its action may have taken "
                           "effect; it is compensated like a step that succeeded")},
            "result": {"type": "object", "nullable": True, "description": (
                "its action's result; a fan-out's is {\"items\": [...]}, each item's "
                "result in item order (null for an item that failed within its tolerance)")},
            "error": {"type": "object", "nullable": True,
                      "properties": {"type": {"type": "string"},
                                     "message": {"type": "string"}}},
            "action_attempts": {"type": "integer"},
            "compensation_attempts": {"type": "integer"},
            "started_at": nullable_time,
            "ended_at": nullable_time,
            "compensated_at": nullable_time,
            "attempts": {"type": "array", "items": {
                "type": "object",
                "required": ["phase", "attempt", "outcome", "started_at", "ended_at",
                             "duration_ms"],
                "properties": {
                    "phase": {"type": "string", "enum": [phase.value for phase in Phase]},
                    "attempt": {"type": "integer"},
                    "outcome": {"type": "string"},
                    "error_type": {"type": "string", "nullable": True},
                    "error_message": {"type": "string", "nullable": True},
                    "started_at": {"type": "string", "format": "date-time"},
                    "ended_at": {"type": "string", "format": "date-time"},
                    "duration_ms": {"type": "integer"},
                    "input": {"type": "object", "nullable": True,
                              "description": "the step's input as this attempt was sent it "
                                             "(its mapping resolved); null when not kept: "
                                             "over saga.max_result_bytes, failed before it "
                                             "was resolved (an injected fault), or recorded "
                                             "before inputs were kept"}}}},
            "waiting": {
                "type": "object", "nullable": True,
                "description": "a callback's or a timer's wait (kept once it ended)",
                "required": ["kind", "since", "until"],
                "properties": {
                    "kind": {"type": "string", "enum": [kind.value for kind in WaitKind]},
                    "since": {"type": "string", "format": "date-time"},
                    "until": {"type": "string", "format": "date-time"},
                    "callback_id": {"type": "string", "nullable": True},
                    "heartbeat_at": nullable_time,
                    "completed_by": {"type": "string", "nullable": True},
                    "completed_at": nullable_time,
                    "approval": {"type": "boolean", "description": (
                        "an approval: a callback step with no action, completed by a "
                        "person (role approver or above)")},
                    "input": {"type": "object", "nullable": True, "description": (
                        "the step's input as its mapping resolved when it began to wait: "
                        "what an approval's person decides on, what a partner's call was sent "
                        "(null for a timer, or when over saga.max_result_bytes: see the "
                        "execution's input)")}}},
            "condition": {
                "type": "object", "nullable": True,
                "description": "a SKIPPED step's when as it was evaluated: null otherwise",
                "required": ["when", "value", "operands"],
                "properties": {
                    "when": {"type": "string", "description": "the condition's text"},
                    "value": {"type": "boolean", "description": "what it came to (false)"},
                    "operands": {"type": "object", "description": (
                        "each reference it read -> the value read (absent ones, and those "
                        "not read once and/or had decided, are left out)")}}},
            "fanout": {
                "type": "object", "nullable": True,
                "description": "a fan-out step's items, as they started (null before)",
                "required": ["items", "max_concurrency", "tolerated"],
                "properties": {
                    "items": {"type": "integer", "description": "how many items it runs"},
                    "max_concurrency": {"type": "integer",
                                        "description": "at most this many at once"},
                    "tolerated": {"type": "integer", "description": (
                        "how many items may fail for good before the step does (its "
                        "tolerated_failures as a count)")}}},
            "item": {
                "type": "object", "nullable": True,
                "description": "an item of a fan-out: which step, and which element",
                "required": ["of", "index"],
                "properties": {
                    "of": {"type": "string", "description": "the fan-out step's id"},
                    "index": {"type": "integer", "description": "the element's index, from 0"}}},
            "child": {"type": "string", "nullable": True, "description": (
                "a child step's child execution (GET /executions/{id}), once made; null "
                "otherwise")},
        },
    }


def _saga_stats_schema() -> dict[str, Any]:
    """GET /sagas/{id}/stats: the latest version's shape (DefinitionService.saga_stats) and
    its executions (the read model's summary)."""
    count = {"type": "integer", "minimum": 0}
    return {
        "type": "object",
        "required": ["saga_id", "version", "revision", "versions", "steps", "active_steps",
                     "active", "groups", "parallel_groups", "kinds", "pivot",
                     "conditional_steps", "fanout_steps", "executions"],
        "properties": {
            "saga_id": {"type": "string"}, "version": {"type": "string"},
            "revision": {"type": "integer"}, "versions": count,
            "steps": count, "active_steps": count, "active": {"type": "boolean"},
            "groups": {**count, "description": "groups of active steps: run one after "
                                               "another"},
            "parallel_groups": {**count, "description": "groups of two or more steps, run "
                                                        "side by side"},
            "kinds": {"type": "object", "additionalProperties": count,
                      "description": "active steps by kind"},
            "pivot": {"type": "string", "nullable": True,
                      "description": "the pivot step's id, if it has one"},
            "conditional_steps": {**count, "description": (
                "active steps with a when: each runs only if its condition holds, else it "
                "is SKIPPED")},
            "fanout_steps": {**count, "description": (
                "active steps with a for_each: each runs once per item of a list")},
            "executions": {"type": "object", "description": (
                "its executions: how many, by status, running, success rate, the last "
                "one's start")}},
    }


def _history_page_schema() -> dict[str, Any]:
    """A page of GET /executions/{id}/history (chalicelib.domain.history.HistoryEntry)."""
    text = {"type": "string", "nullable": True}
    entry = {"type": "object", "required": ["sequence", "type", "time", "data"],
             "properties": {
                 "sequence": {"type": "integer"}, "id": text, "type": {"type": "string"},
                 "time": {"type": "string", "format": "date-time"}, "step_id": text,
                 "attempt": {"type": "integer", "nullable": True}, "phase": text,
                 "actor": {**text, "description": "who acted: an operator, or a callback's "
                                                  "completer"},
                 "reason": text,
                 "error": {"type": "object", "nullable": True,
                           "description": "the step's error, else the execution's"},
                 "data": {"type": "object", "description": "the event's data as published"}}}
    return {"type": "object", "required": ["execution_id", "items", "next_cursor"],
            "properties": {"execution_id": {"type": "string"},
                           "items": {"type": "array", "items": entry},
                           "next_cursor": {"type": "string", "nullable": True}}}


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json_response(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {"description": description}
    if schema is not None:
        response["content"] = {"application/json": {"schema": schema}}
    return response


def _errors(*statuses: int) -> dict[str, Any]:
    text = {400: "invalid request", 404: "not found", 409: "conflict",
            415: "unsupported media type", 422: "a service limit is reached"}
    return {str(s): {"$ref": f"#/components/responses/Error{s}"} for s in statuses
            if s in text}


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def _path_parameter(name: str) -> dict[str, Any]:
    """A route's `{name}`: every path parameter is an id or a file name of at most 100."""
    return {"name": name, "in": "path", "required": True,
            "schema": {"type": "string", "maxLength": 100}}


_CURSOR = {"name": "cursor", "in": "query", "schema": {"type": "string"},
           "description": "the next_cursor of a page of this same listing, unchanged; any "
                          "other (forged, altered, another listing's) is 400"}
_LIMIT = {"name": "limit", "in": "query",
          "schema": {"type": "integer", "minimum": 1, "maximum": 100}}
# The listings served by the read model alone (no write-model fallback) when it is down.
_READ_MODEL_DOWN = {"503": _json_response("the read model cannot be reached", _ref("Error"))}
# No token needed: the health check, and the console, which asks for one itself.
_PUBLIC: dict[str, Any] = {"security": []}


_APPROVAL = {"name": "approval", "in": "query",
             "schema": {"type": "string", "enum": ["true", "false", ""]},
             "description": "true: approvals only; false: the other callbacks; absent: both"}
_SAGA_ID = {"name": "saga_id", "in": "query", "schema": {"type": "string"}}


def _open_callback_schemas() -> dict[str, Any]:
    """GET /callbacks' item and page, and GET /callbacks/count's answer
    (chalicelib.domain.open_callbacks' models)."""
    time = {"type": "string", "format": "date-time"}
    item = {
        "type": "object",
        "required": ["callback_id", "execution_id", "saga_id", "version", "revision",
                     "step_id", "step_name", "step_description", "since", "until",
                     "approval", "input"],
        "properties": {
            "callback_id": {"type": "string"}, "execution_id": {"type": "string"},
            "saga_id": {"type": "string"}, "version": {"type": "string"},
            "revision": {"type": "integer"}, "step_id": {"type": "string"},
            "step_name": {"type": "string", "nullable": True},
            "step_description": {"type": "string", "nullable": True},
            "since": {**time, "description": "when the wait began"},
            "until": {**time, "description": "the wait's deadline: a completion after it "
                                             "is refused"},
            "approval": {"type": "boolean", "description": "no action: a person (role "
                                                           "approver or above) completes it"},
            "input": {"type": "object", "nullable": True, "description": (
                "the step's input as its wait keeps it: an approval's is what the person "
                "decides on (null when too large to keep with the wait)")}}}
    return {"OpenCallback": item,
            "OpenCallbackPage": {
                "type": "object", "required": ["items", "next_cursor", "count", "total"],
                "properties": {"items": {"type": "array", "items": _ref("OpenCallback")},
                               "next_cursor": {"type": "string", "nullable": True},
                               "count": {"type": "integer", "description": "on this page"},
                               "total": {"type": "integer", "description": (
                                   "every open callback the filters match")}}},
            "OpenCallbackCount": {"type": "object", "required": ["total"],
                                  "properties": {"total": {"type": "integer"}}}}


_SECRET = {"name": "secret", "in": "query", "schema": {"type": "string"},
           "description": "the callback's own secret, from the links its participant was "
                          "sent: completes this one callback, no token needed (without it: "
                          "a bearer token of role approver or above)"}


def _callback_operation(operation_id: str, summary: str,
                        body: dict[str, Any] | None, *,
                        body_required: bool = False) -> dict[str, Any]:
    """A completion of a callback: single-use; unknown 404, a wrong secret 403, completed,
    superseded, past its wait or its execution moved on 409, each changing nothing."""
    operation: dict[str, Any] = {
        "operationId": operation_id, "summary": summary, "parameters": [_SECRET],
        "security": [{}, {"bearerAuth": []}],
        "responses": {"200": _json_response("what the completion did", {"type": "object"}),
                      **_errors(400, 404, 409, 415)}}
    if body is not None:
        operation["requestBody"] = {"required": body_required,
                                    "content": {"application/json": {"schema": body}}}
    return operation


def _operations() -> dict[str, dict[str, Any]]:
    """What the document says of each route, by the name of its view in app.py; the path,
    the method and the path parameters come from the route itself (build_document)."""
    saga = _json_response("the saga (latest version unless ?version= is given)", _ref("Saga"))
    execution = _json_response("the execution with its steps and attempts", _ref("Execution"))
    statistics = _json_response("statistics", {"type": "object"})
    return {
        "health": {"operationId": "health",
                   "summary": "Liveness, from the process alone (no server is asked)",
                   **_PUBLIC,
                   "responses": {"200": _json_response("the process is up", _ref("Liveness"))}},
        "detailed_health": {"operationId": "detailedHealth",
                            "summary": "Health with one check per component",
                            "responses": {"200": _json_response("up", _ref("Health")),
                                          "503": _json_response("down", _ref("Health"))}},
        "openapi": {"operationId": "openapi", "summary": "This document",
                    "responses": {"200": _json_response("OpenAPI 3", {"type": "object"})}},
        "participant_contract": {
            "operationId": "participantContract",
            "summary": "The JSON Schema of the request a participant (an HTTP endpoint or a "
                       "Lambda) receives for each attempt of its step: saga-participant/1",
            "responses": {"200": _json_response("JSON Schema (draft 2020-12)",
                                                {"type": "object"})}},
        "whoami": {
            "operationId": "whoami",
            "summary": "The caller: subject, role, the console actions the role permits, and "
                       "the WebSocket URL to subscribe at",
            "responses": {"200": _json_response("the caller", _ref("Caller"))}},
        "console_page": {
            "operationId": "console", "summary": "The operator console (HTML; no token needed "
                                                 "to load it, it asks for one)", **_PUBLIC,
            "responses": {"200": {"description": "the page",
                                  "content": {"text/html": {"schema": {"type": "string"}}}},
                          "304": {"description": "unchanged (If-None-Match)"}}},
        "console_asset": {
            "operationId": "consoleFile", "summary": "A file of the console (ES module, CSS)",
            **_PUBLIC,
            "responses": {"200": {"description": "the file", "content": {
                "text/javascript": {"schema": {"type": "string"}},
                "text/css": {"schema": {"type": "string"}}}},
                "304": {"description": "unchanged (If-None-Match)"},
                **_errors(404)}},
        "docs_page": {
            "operationId": "docs", "summary": "These docs: Swagger UI over this document "
                                              "(HTML; no token needed)", **_PUBLIC,
            "tags": ["docs"],
            "responses": {"200": {"description": "the page",
                                  "content": {"text/html": {"schema": {"type": "string"}}}},
                          "304": {"description": "unchanged (If-None-Match)"}}},
        "docs_document": {
            "operationId": "docsDocument", "summary": "This OpenAPI document, for the docs "
                                                      "page (no token needed)", **_PUBLIC,
            "tags": ["docs"],
            "responses": {"200": _json_response("OpenAPI 3.0", {"type": "object"})}},
        "docs_asset": {
            "operationId": "docsFile", "summary": "A file of the docs page (Swagger UI's "
                                                  "script, style sheet, licence)", **_PUBLIC,
            "tags": ["docs"],
            "responses": {"200": {"description": "the file", "content": {
                "text/javascript": {"schema": {"type": "string"}},
                "text/css": {"schema": {"type": "string"}},
                "text/plain": {"schema": {"type": "string"}}}},
                "304": {"description": "unchanged (If-None-Match)"},
                **_errors(404)}},
        "perform_cleanup": {
            "operationId": "cleanup",
            "summary": "Remove expired idempotency records, published events past retention, "
                       "and versions of destroyed sagas no execution ran",
            "responses": {"200": _json_response("what was removed", {"type": "object"})}},
        "service_stats": {"operationId": "serviceStats", "summary": "Service statistics",
                          "responses": {"200": statistics}},
        "create_saga": {"operationId": "createSaga",
                        "summary": "Create a saga, or a new version of one (higher semver)",
                        "requestBody": _body(_ref("SagaDefinition")),
                        "responses": {"201": _json_response("stored", _ref("Saga")),
                                      **_errors(400, 409, 415, 422)}},
        "list_sagas": {"operationId": "listSagas", "summary": "List sagas (latest versions)",
                       "parameters": [
                           _LIMIT, _CURSOR,
                           {"name": "active", "in": "query",
                            "schema": {"type": "string", "enum": ["true", "false", ""]}},
                           {"name": "type", "in": "query", "schema": {"type": "string"}}],
                       "responses": {"200": _json_response("a page", _ref("SagaPage")),
                                     **_errors(400)}},
        "all_saga_stats": {"operationId": "allSagaStats",
                           "summary": "Statistics over all sagas",
                           "responses": {"200": statistics}},
        "get_saga": {"operationId": "getSaga", "summary": "Get a saga",
                     "parameters": [{"name": "version", "in": "query",
                                     "schema": {"type": "string"}}],
                     "responses": {"200": saga, **_errors(404)}},
        "destroy_saga": {"operationId": "destroySaga", "summary": "Destroy a saga",
                         "responses": {"204": {"description": "destroyed"},
                                       **_errors(404, 409)}},
        "saga_versions": {"operationId": "sagaVersions", "summary": "Every stored version",
                          "responses": {"200": _json_response("versions", {"type": "object"}),
                                        **_errors(404)}},
        "saga_stats": {"operationId": "sagaStats", "summary": "Statistics of one saga",
                       "responses": {"200": _json_response("its shape and its executions",
                                                           _ref("SagaStats")),
                                     **_errors(404)}},
        "set_saga_active": {
            "operationId": "setSagaActive", "summary": "Activate or deactivate a saga",
            "requestBody": _body({"type": "object", "additionalProperties": False,
                                  "required": ["active"],
                                  "properties": {"active": {"type": "boolean"}}}),
            "responses": {"200": saga, **_errors(400, 404, 415)}},
        "add_saga_step": {"operationId": "addSagaStep",
                          "summary": "Add a step (stores a new version, patch bumped)",
                          "requestBody": _body(_ref("StepDefinition")),
                          "responses": {"201": _json_response("the new version", _ref("Saga")),
                                        **_errors(400, 404, 409, 415, 422)}},
        "remove_saga_step": {
            "operationId": "removeSagaStep",
            "summary": "Remove a step (stores a new version, patch bumped)",
            "responses": {"200": _json_response("the new version", _ref("Saga")),
                          **_errors(400, 404, 409)}},
        "execute_saga": {
            "operationId": "executeSaga",
            "summary": "Start an execution of the saga's latest version",
            # No body, or null, starts it with an empty input.
            "requestBody": {"required": False, "content": {"application/json": {
                "schema": {"allOf": [_ref("ExecuteRequest")], "nullable": True}}}},
            "responses": {"202": _json_response("started", _ref("Execution")),
                          "200": _json_response("this execution id was started before",
                                                _ref("Execution")),
                          **_errors(400, 404, 409, 415),
                          "503": _json_response("Step Functions is unavailable",
                                                _ref("Error"))}},
        "compensate_saga": {
            "operationId": "compensateSaga",
            "summary": "Undo a completed execution: the one the body names, or with no body "
                       "at all the saga's latest COMPLETED one",
            "description": "One rule: no body (Content-Length 0) undoes the saga's latest "
                           "COMPLETED execution; any body must be {\"execution_id\": "
                           "\"...\"}. Every other body, {}, null, [], \"\", 0 and false "
                           "included, is 400, never \"the latest\".",
            "requestBody": {"required": False, "content": {"application/json": {
                "schema": {"type": "object", "additionalProperties": False,
                           "required": ["execution_id"],
                           "properties": {"execution_id": {"type": "string"}}}}}},
            "responses": {"202": _json_response("compensating", _ref("Execution")),
                          **_errors(400, 404, 409, 415)}},
        "saga_status": {"operationId": "sagaStatus", "summary": "The saga's latest execution",
                        "responses": {"200": _json_response("status", {"type": "object"}),
                                      **_errors(404)}},
        "list_executions": {
            "operationId": "listExecutions", "summary": "List executions, newest first",
            "parameters": [
                {"name": "saga_id", "in": "query", "schema": {"type": "string"}},
                {"name": "status", "in": "query", "schema": {
                    "type": "string", "enum": [s.value for s in ExecutionStatus]}},
                {"name": "started_after", "in": "query",
                 "description": "started at or after this time (ISO 8601 with its zone, e.g. "
                                "2026-12-05T09:30:00Z)",
                 "allowEmptyValue": True,
                 "schema": {"type": "string", "format": "date-time"}},
                {"name": "started_before", "in": "query",
                 "description": "started before this time (ISO 8601 with its zone; empty: no "
                                "bound)", "allowEmptyValue": True,
                 "schema": {"type": "string", "format": "date-time"}},
                {"name": "needs_attention", "in": "query",
                 "description": "true: only the triage queue (COMPENSATION_FAILED, PARKED or "
                                "TIMED_OUT, and not resolved; or RUNNING with an approval "
                                "step waiting for a person); false: all others",
                 "schema": {"type": "string", "enum": ["true", "false", ""]}},
                {"name": "resolved", "in": "query",
                 "description": "true: only executions an operator resolved; false: the others",
                 "schema": {"type": "string", "enum": ["true", "false", ""]}},
                {"name": "q", "in": "query",
                 "description": "search: an execution's id or a saga's id, compared exactly: "
                                "the execution with that id, and the executions of that saga",
                 "schema": {"type": "string", "maxLength": 100},
                 "example": "payment-saga"},
                _LIMIT, _CURSOR],
            "responses": {"200": _json_response("a page", _ref("ExecutionPage")),
                          **_errors(400)}},
        "execution_history": {
            "operationId": "executionHistory",
            "summary": "An execution's history: every event it published, in sequence, with "
                       "its step, attempt, phase, who acted and why, and its data",
            "parameters": [_LIMIT, _CURSOR],
            "responses": {"200": _json_response("a page of events", _ref("HistoryPage")),
                          **_errors(400, 404), **_READ_MODEL_DOWN}},
        "get_execution": {
            "operationId": "getExecution",
            "summary": "An execution: status and a timeline of steps and attempts",
            "responses": {"200": execution, **_errors(404)}},
        "retry_compensation": {
            "operationId": "retryCompensation",
            "summary": "Run the compensation of a COMPENSATION_FAILED execution again",
            "responses": {"202": _json_response("compensating", _ref("Execution")),
                          **_errors(404, 409)}},
        "retry_forward": {
            "operationId": "retryForward",
            "summary": "Run a PARKED execution on from its parked step: that step's group "
                       "gets a new round of saga.retriable_max_attempts attempts, then the "
                       "steps after it run (nothing after a pivot is ever compensated)",
            "responses": {"202": _json_response("running again", _ref("Execution")),
                          **_errors(404, 409)}},
        "succeed_callback": _callback_operation(
            "succeedCallback", "Complete a waiting callback step as succeeded: the body's "
            "result becomes the step's result (later steps and its compensation see it)",
            {"type": "object", "additionalProperties": False,
             "properties": {"result": {"type": "object"}}}),
        "fail_callback": _callback_operation(
            "failCallback", "Complete a waiting callback step as failed for good (it did "
            "nothing): never retried; the saga compensates what came before (after the "
            "pivot: parks)",
            {"type": "object", "required": ["error"], "additionalProperties": False,
             "properties": {"error": {"type": "string", "minLength": 1, "maxLength": 100,
                                      "pattern": r"^[A-Za-z][A-Za-z0-9_.\-]*$"},
                            "reason": {"type": "string", "maxLength": 1000}}},
            body_required=True),
        "heartbeat_callback": _callback_operation(
            "heartbeatCallback", "Keep a waiting callback step with a heartbeat alive", None),
        "list_callbacks": {
            "operationId": "listCallbacks",
            "summary": "The open callbacks, oldest first: waiting callback steps of RUNNING "
                       "executions that may still be completed (approvals among them), each "
                       "with its step's name and description, its deadline and, for an "
                       "approval, what the person decides on; total counts every one the "
                       "filters match",
            "parameters": [_APPROVAL, _SAGA_ID, _LIMIT, _CURSOR],
            "responses": {"200": _json_response("a page", _ref("OpenCallbackPage")),
                          **_errors(400), **_READ_MODEL_DOWN}},
        "count_callbacks": {
            "operationId": "countCallbacks",
            "summary": "How many open callbacks the filters match (the console's count of "
                       "open approvals: ?approval=true)",
            "parameters": [_APPROVAL, _SAGA_ID],
            "responses": {"200": _json_response("the count", _ref("OpenCallbackCount")),
                          **_errors(400), **_READ_MODEL_DOWN}},
        "resolve_execution": {
            "operationId": "resolveExecution",
            "summary": "Mark a failed or parked execution resolved, with a reason: a decision "
                       "taken once (the first stands; any later resolve or retry is 409 "
                       "already_resolved, naming who and when)",
            "requestBody": _body({"type": "object", "required": ["reason"],
                                  "additionalProperties": False, "properties": {
                                      "reason": {"type": "string", "minLength": 3,
                                                 "maxLength": 500}}}),
            "responses": {"200": execution, **_errors(400, 404, 409, 415)}},
    }


class RouteEntry(Protocol):
    """What the document reads of a Chalice route (chalice.app.RouteEntry)."""

    view_name: str
    view_args: list[str]


def _paths(routes: Mapping[str, Mapping[str, RouteEntry]]) -> dict[str, Any]:
    """The paths of the app's route table (Chalice's app.routes: path -> method -> entry),
    each operation the one _operations() gives its view. A route without one, or one for a
    view no route has, is an error: the document describes exactly the routes."""
    operations = _operations()
    paths: dict[str, Any] = {}
    for path, methods in routes.items():
        item: dict[str, Any] = {}
        for method, entry in methods.items():
            if entry.view_name not in operations:
                raise ValueError(f"{method} {path}: view {entry.view_name!r} has no operation "
                                 "in chalicelib/http/openapi.py")
            if entry.view_args:  # the same for every method of a path: shared by them
                item["parameters"] = [_path_parameter(name) for name in entry.view_args]
            operation = operations.pop(entry.view_name)
            operation.setdefault("tags", [_tag(path)])
            item[method.lower()] = operation
        paths[path] = item
    if operations:
        raise ValueError(f"operations of views that have no route: {sorted(operations)}")
    return paths


# Each path's tag: the resource it is under (what the docs page groups operations by).
_TAGS = {"sagas": "sagas", "executions": "executions", "callbacks": "callbacks",
         "console": "console", "docs": "docs", "stats": "statistics", "cleanup": "operations",
         "contracts": "participants"}
_TAG_DESCRIPTIONS = {
    "sagas": "saga definitions: create, version, switch on and off, destroy; and executing one",
    "executions": "executions: read, follow, compensate, retry, resolve; their history",
    "callbacks": "steps that wait: a partner's callback or a person's approval completes them",
    "participants": "what a participant (an HTTP endpoint or a Lambda) is sent",
    "statistics": "counts of sagas and executions", "operations": "housekeeping",
    "service": "health, the caller, this document", "console": "the operator console",
    "docs": "this page"}


def _tag(path: str) -> str:
    parts = [p for p in path.removeprefix(API_PREFIX).split("/") if p and not p.startswith("{")]
    return _TAGS.get(parts[0], "service") if parts else "service"


_COMMON_ERRORS = [(400, "a malformed request: an unknown query parameter, a value of the "
                       "wrong form, a body that is not JSON"),
                  (401, "no valid bearer token (auth on)"),
                  (403, "the token's role does not allow this"),
                  (413, "the body is over the size limit"),
                  (429, "over the caller's rate limit; see Retry-After")]


def _with_common_errors(paths: dict[str, Any]) -> dict[str, Any]:
    """Every route that needs a token can answer 401, 403 and 429; one with a body also
    413."""
    for operations in paths.values():
        for method, operation in operations.items():
            if method == "parameters":  # shared by the path's operations
                continue
            if operation.get("security") == []:  # no token needed
                continue
            statuses = [400, 401, 403, 429] + ([413] if "requestBody" in operation else [])
            for status in statuses:
                operation["responses"].setdefault(
                    str(status), {"$ref": f"#/components/responses/Error{status}"})
    return paths


# What a listing's items leave out (app.LISTED_WITHOUT): GET /executions/{id} has them.
_NOT_LISTED = ("input", "steps")


def _listing_schemas(execution: dict[str, Any]) -> dict[str, Any]:
    """An execution as GET /executions lists it: the Execution without its input and
    steps."""
    summary = {**execution,
               "description": "an execution as a listing shows it: no input and no steps "
                              "(GET /executions/{id} has them)",
               "required": [n for n in execution["required"] if n not in _NOT_LISTED],
               "properties": {name: schema for name, schema in execution["properties"].items()
                              if name not in _NOT_LISTED}}
    return {"ExecutionSummary": summary,
            "ExecutionPage": {"type": "object", "required": ["items", "next_cursor"],
                              "properties": {"items": {"type": "array",
                                                       "items": _ref("ExecutionSummary")},
                                             "next_cursor": {"type": "string",
                                                             "nullable": True}}}}


def stage_document(document: dict[str, Any], *, auth_enabled: bool,
                   stage: str) -> dict[str, Any]:
    """The committed document as a stage serves it: one without auth needs no token (no
    security requirement), and says so."""
    if auth_enabled:
        return document
    served = {**document, "security": [],
              "info": {**document["info"], "description": document["info"]["description"]
                       + f" Stage {stage} runs without auth: no token is needed."}}
    served["paths"] = {path: {method: ({k: v for k, v in op.items() if k != "security"}
                                       if isinstance(op, dict) else op)
                              for method, op in item.items()}
                       for path, item in document["paths"].items()}
    return served


def build_document(saga: SagaSettings,
                   routes: Mapping[str, Mapping[str, RouteEntry]]) -> dict[str, Any]:
    """The document of the app whose route table is `routes` (app.routes)."""
    document = _document(saga, routes)
    schemas = document["components"]["schemas"]
    schemas.update(_listing_schemas(schemas["Execution"]))
    schemas.update(_open_callback_schemas())
    for name, example in _examples().items():
        schemas[name]["example"] = example
    return document


def _examples() -> dict[str, Any]:
    """What a definition, an execute and an execution look like, made with the domain's own
    models (so an example cannot drift from what the service reads and returns); the unit
    tests validate each against its schema."""
    from datetime import UTC, datetime

    from chalicelib.domain.executions import Attempt, Execution, StepRun

    step = {"name": "Charge", "description": "charge the customer's card", "max_retries": 2,
            "timeout": "30s"}
    definition = {
        "id": "checkout", "name": "Checkout", "version": "1.0.0", "type": "CheckoutSaga",
        "description": "reserve stock, charge the card, then ship", "steps": [
            {**step, "id": "reserve", "name": "Reserve", "description": "hold the stock",
             "order": 1, "action": "https://stock.example.com/reserve",
             "compensation": "https://stock.example.com/release",
             "input": {"sku": "$.input.sku"}},
            {**step, "id": "charge", "order": 2, "action": "lambda:payments-charge",
             "compensation": "lambda:payments-refund", "input": {"amount": "$.input.amount"}}]}
    at = datetime(2026, 12, 7, 12, 0, 0, tzinfo=UTC)
    later = datetime(2026, 12, 7, 12, 0, 1, 250000, tzinfo=UTC)
    execution = Execution(
        id="3f2c9a1e-7d4b-4c1a-9e0f-2b6d8a5c4e71", saga_id="checkout", revision=1,
        version="1.0.0", status=ExecutionStatus.COMPLETED, input={"sku": "A-1", "amount": 42},
        output=None, started_at=at, updated_at=later, ended_at=later,
        state_machine_arn="arn:aws:states:eu-west-1:123456789012:stateMachine:prod-checkout-"
                          "0123456789abcdef-r1",
        steps=[StepRun(step_id=name, position=index, group=index, kind=StepKind.COMPENSATABLE,
                       status=StepStatus.SUCCEEDED, result={"ok": True}, action_attempts=1,
                       started_at=at, ended_at=later,
                       attempts=[Attempt(phase=Phase.ACTION, attempt=1, outcome="succeeded",
                                         started_at=at, ended_at=later, duration_ms=1250,
                                         input={"sku": "A-1"})])
               for index, name in enumerate(("reserve", "charge"), start=1)],
        consistency={"source": "read_model", "sequence": 7,
                     "projected_at": later.isoformat()})
    return {"SagaDefinition": definition,
            "ExecuteRequest": {"input": {"sku": "A-1", "amount": 42}},
            "Execution": execution.model_dump(mode="json")}


def _document(saga: SagaSettings,
              routes: Mapping[str, Mapping[str, RouteEntry]]) -> dict[str, Any]:
    rules = saga.validation_rules
    error = {"type": "object", "required": ["error"], "properties": {"error": {
        "type": "object", "required": ["code", "message"],
        "properties": {"code": {"type": "string"}, "message": {"type": "string"},
                       "violations": {"type": "array", "items": {
                           "type": "object", "required": ["field", "rule", "message"],
                           "properties": {"field": {"type": "string"},
                                          "rule": {"type": "string"},
                                          "message": {"type": "string"},
                                          "value": {}}}}}}}}
    stored = _saga_schema(rules.get("saga", {}), saga)
    stored = {**stored, "additionalProperties": True,
              "required": [*stored["required"], "revision", "created_at", "updated_at"]}
    stored["properties"] = {**stored["properties"], "revision": {"type": "integer"},
                            "created_at": {"type": "string", "format": "date-time"},
                            "updated_at": {"type": "string", "format": "date-time"},
                            "version_created_at": {"type": "string", "format": "date-time"},
                            "workflow_type": {"type": "string", "enum": [
                                Workflow.STANDARD.value, Workflow.EXPRESS.value],
                                "description": "the workflow chosen as the version was "
                                               "stored"},
                            "workflow_reason": {"type": "string"},
                            "forward_worst_case_s": {
                                "type": "integer", "nullable": True,
                                "description": "the forward path's longest run, in seconds "
                                               "(null: unbounded)"},
                            "warnings": {"type": "array", "items": {"type": "string"}}}
    paths = _with_common_errors(_paths(routes))
    return {
        "openapi": "3.0.3",
        "info": {"title": saga.name, "version": saga.version,
                 "description": "Register, version and run sagas: distributed transactions "
                 "whose completed steps are compensated in reverse order on failure."},
        # Relative: the API Gateway stage's own URL on AWS, the local server's locally.
        "servers": [{"url": "/", "description": "this service"}],
        "tags": [{"name": name, "description": text} for name, text in sorted(
            _TAG_DESCRIPTIONS.items()) if any(
                name in o.get("tags", []) for item in paths.values()
                for o in item.values() if isinstance(o, dict))],
        "paths": paths,
        # Bearer tokens are checked when auth is on (the dev and prod stages); a stage
        # without auth serves the document with no security requirement (stage_document).
        "security": [{"bearerAuth": []}],
        "components": {
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer",
                                               "bearerFormat": "JWT"}},
            "schemas": {
                "StepDefinition": _step_schema(rules.get("step", {}), saga),
                "SagaDefinition": _saga_schema(rules.get("saga", {}), saga),
                "Saga": stored,
                "SagaPage": {"type": "object", "required": ["items", "next_cursor"],
                             "properties": {"items": {"type": "array", "items": _ref("Saga")},
                                            "next_cursor": {"type": "string",
                                                            "nullable": True}}},
                "Liveness": {"type": "object",
                             "required": ["status", "service", "version", "stage"],
                             "properties": {"status": {"type": "string", "enum": ["up"]},
                                            "service": {"type": "string"},
                                            "version": {"type": "string"},
                                            "stage": {"type": "string"}}},
                "Health": {"type": "object", "required": ["status", "components"],
                           "properties": {"status": {"type": "string", "enum": ["up", "down"]},
                                          "components": {"type": "object"}}},
                "Error": error,
                "Caller": {"type": "object",
                           "required": ["subject", "role", "auth_enabled", "actions",
                                        "websocket_url"],
                           "properties": {
                               "subject": {"type": "string"},
                               "role": {"type": "string",
                                        "enum": ["none", "reader", "approver", "operator",
                                                 "admin"]},
                               "auth_enabled": {"type": "boolean"},
                               "actions": {"type": "array", "items": {
                                   "type": "string", "enum": sorted(CONSOLE_ACTIONS)}},
                               "websocket_url": {"type": "string"}}},
                "ExecuteRequest": {
                    "type": "object", "additionalProperties": False,
                    "properties": {
                        "input": {"type": "object",
                                  "description": "the saga's input: a JSON object of at most "
                                  "limits.max_input_bytes (512 KB) nesting at most "
                                  f"{MAX_REQUEST_DEPTH} levels ({{}} is one: what MySQL's JSON "
                                  "columns take inside its event), kept by the service and "
                                  "passed to steps by reference"},
                        "execution_id": {"type": "string", "maxLength": 64,
                                         "pattern": _ID_PATTERN, "nullable": True,
                                         "description": "your id for it, so a repeated "
                                         "request is the same execution (null or absent: "
                                         "the service makes one up)"},
                        "faults": {"type": "array", "maxItems": 50,
                                   "items": _ref("Fault")}}},
                "Fault": {
                    "type": "object", "additionalProperties": False, "required": ["step_id"],
                    "properties": {
                        "step_id": {"type": "string", "minLength": 1, "maxLength": 100},
                        "phase": {"type": "string", "enum": [p.value for p in Phase]},
                        "error": {"type": "string", "pattern": r"^[A-Za-z][A-Za-z0-9_.]{0,99}$"},
                        "times": {"type": "integer", "minimum": 0, "maximum": 100},
                        "delay": {"type": "string", "pattern": _DURATION_PATTERN},
                        "permanent": {"type": "boolean"}}},
                "Execution": {
                    "type": "object", "required": ["id", "saga_id", "status", "steps"],
                    "properties": {
                        "id": {"type": "string"}, "saga_id": {"type": "string"},
                        "revision": {"type": "integer"}, "version": {"type": "string"},
                        "status": {"type": "string",
                                   "enum": [s.value for s in ExecutionStatus]},
                        "input": {"type": "object"},
                        "parent": {
                            "type": "object", "nullable": True,
                            "description": "a child execution's parent: the execution and "
                                           "its child step that started it; null for one "
                                           "started through this API",
                            "required": ["execution_id", "step_id"],
                            "properties": {"execution_id": {"type": "string"},
                                           "step_id": {"type": "string"}}},
                        "depth": {"type": "integer", "minimum": 0, "description": (
                            "how deep a child execution nests (0: started through this API)")},
                        "output": {"type": "object", "nullable": True,
                                   "description": "a COMPLETED execution's output: its saga's "
                                                  "output mapping, resolved as it completed"},
                        "output_error": {
                            "type": "object", "nullable": True,
                            "description": "why a COMPLETED execution has no output: the "
                                           "first reference of its saga's output mapping "
                                           "whose value was absent (the execution still "
                                           "completed); null otherwise",
                            "required": ["field", "reference", "message"],
                            "properties": {
                                "field": {"type": "string",
                                          "description": "where in the output mapping"},
                                "reference": {"type": "string"},
                                "message": {"type": "string"}}},
                        "resolved_by": {"type": "string", "nullable": True,
                                        "description": "who resolved it: a decision taken "
                                                       "once, after which every operator "
                                                       "action on it is refused (409)"},
                        "resolution": {"type": "string", "nullable": True},
                        "resolved_at": {"type": "string", "format": "date-time",
                                        "nullable": True},
                        "error": {
                            "type": "object", "nullable": True,
                            "description": "why the execution did not complete; null while "
                                           "running or once completed",
                            "required": ["step_id", "phase", "type", "message"],
                            "properties": {
                                "step_id": {"type": "string", "nullable": True},
                                "phase": {"type": "string", "nullable": True,
                                          "description": "action or compensation"},
                                "type": {"type": "string"},
                                "message": {"type": "string",
                                            "description": "first line only: no traceback, "
                                                           "no file paths; a caller's reason "
                                                           "(by set) as it was given"},
                                "by": {"type": "string", "description": (
                                    "present when a caller gave the reason, completing a "
                                    "callback as failed (a rejected approval): who, as the "
                                    "step's waiting.completed_by says")}}},
                        "steps": {"type": "array", "items": _ref("ExecutionStep")}}},
                "ExecutionStep": _execution_step_schema(),
                "SagaStats": _saga_stats_schema(),
                "HistoryPage": _history_page_schema(),
            },
            "responses": {
                f"Error{status}": _json_response(text, _ref("Error"))
                for status, text in [(400, "invalid request"), (404, "not found"),
                                     (409, "conflict"), (415, "unsupported media type"),
                                     (422, "a service limit is reached"), *_COMMON_ERRORS]
            },
        },
    }
