"""The OpenAPI 3 document of the API: the app's route table, and the schemas of the models
it reads and answers with.

The paths, methods and path parameters are the Chalice app's own route table (app.routes);
this module adds, by the name of each route's view, its summary, query parameters, request
body and responses. Every schema is derived from a pydantic model (chalicelib/http/schemas.py)
with the configured validation rules laid over the definitions' (definition_schema.py).
`saga openapi` writes the document for the default configuration to
chalicelib/http/openapi.json (committed, and served at /api/v1/saga/openapi.json); a test
checks that the file is current.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from chalicelib.config import SagaSettings
from chalicelib.domain.lifecycle import ExecutionStatus, Phase, StepKind, StepStatus
from chalicelib.http.console import ACTIONS as CONSOLE_ACTIONS
from chalicelib.http.definition_schema import constrain
from chalicelib.http.paths import API_PREFIX
from chalicelib.http.schemas import model_schemas
from chalicelib.http.schemas import ref as _ref
from chalicelib.usecases.definitions import DEFAULT_PAGE, MAX_PAGE

# The committed document: what clients were promised.
OPENAPI_FILE = Path(__file__).with_name("openapi.json")


def _json_response(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {"description": description}
    if schema is not None:
        response["content"] = {"application/json": {"schema": schema}}
    return response


# The errors an operation lists as its own (the common ones are added to every operation).
_ERROR_TEXTS = {400: "invalid request", 404: "not found", 409: "conflict",
                415: "unsupported media type", 422: "a service limit is reached"}


def _errors(*statuses: int) -> dict[str, Any]:
    return {str(s): {"$ref": f"#/components/responses/Error{s}"} for s in statuses
            if s in _ERROR_TEXTS}


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def _path_parameter(name: str) -> dict[str, Any]:
    """A route's `{name}`: every path parameter is an id or a file name of at most 100."""
    return {"name": name, "in": "path", "required": True,
            "schema": {"type": "string", "maxLength": 100}}


_CURSOR = {"name": "cursor", "in": "query", "schema": {"type": "string"},
           "description": "the next_cursor of a page of this same listing, unchanged; any "
                          "other (forged, altered, another listing's) is 400"}
_LIMIT = {"name": "limit", "in": "query", "allowEmptyValue": True,
          "description": f"how many on a page (absent or empty: {DEFAULT_PAGE})",
          "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE}}
# The listings served by the read model alone (no write-model fallback) when it is down.
_READ_MODEL_DOWN = {"503": _json_response("the read model cannot be reached", _ref("Error"))}
# No token needed: the health check, and the console, which asks for one itself.
_PUBLIC: dict[str, Any] = {"security": []}


_APPROVAL = {"name": "approval", "in": "query",
             "schema": {"type": "string", "enum": ["true", "false", ""]},
             "description": "true: approvals only; false: the other callbacks; absent: both"}
_SAGA_ID = {"name": "saga_id", "in": "query", "schema": {"type": "string"}}


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
            "responses": {"200": _json_response("OpenAPI 3.1", {"type": "object"})}},
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
            "requestBody": _body(_ref("ActiveRequest")),
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
                "schema": {"anyOf": [_ref("ExecuteRequest"), {"type": "null"}]}}}},
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
                "schema": _ref("CompensateRequest")}}},
            "responses": {"202": _json_response("compensating", _ref("Execution")),
                          **_errors(400, 404, 409, 415)}},
        "saga_status": {"operationId": "sagaStatus", "summary": "The saga's latest execution",
                        "responses": {"200": _json_response("status", {"type": "object"}),
                                      **_errors(404)}},
        "list_executions": {
            "operationId": "listExecutions", "summary": "List executions, newest first",
            "parameters": [
                {"name": "saga_id", "in": "query", "schema": {"type": "string"}},
                {"name": "status", "in": "query", "allowEmptyValue": True,
                 "description": "in this status (absent or empty: any)", "schema": {
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
            _ref("SucceedRequest")),
        "fail_callback": _callback_operation(
            "failCallback", "Complete a waiting callback step as failed for good (it did "
            "nothing): never retried; the saga compensates what came before (after the "
            "pivot: parks)",
            _ref("FailRequest"), body_required=True),
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
            "requestBody": _body(_ref("ResolveRequest")),
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
    _add_links(paths)
    return paths


_SAGA_OPERATIONS = ("getSaga", "sagaVersions", "sagaStats", "sagaStatus", "setSagaActive",
                    "executeSaga", "addSagaStep", "destroySaga")
_EXECUTION_OPERATIONS = ("getExecution", "executionHistory", "retryCompensation", "retryForward",
                         "resolveExecution")


def _saga_links(saga: str) -> dict[str, dict[str, str]]:
    """The links of an answer with a saga at `saga` (a JSON pointer into the body)."""
    return {**{name: {"saga_id": f"$response.body#{saga}/id"} for name in _SAGA_OPERATIONS},
            "removeSagaStep": {"saga_id": f"$response.body#{saga}/id",
                               "step_id": f"$response.body#{saga}/steps/0/id"}}


def _execution_links(execution: str) -> dict[str, dict[str, str]]:
    return {name: {"execution_id": f"$response.body#{execution}/id"}
            for name in _EXECUTION_OPERATIONS}


# How an answer's values feed other operations (OpenAPI links): what a client, and a stateful
# test, follows from a resource made to the operations on it, by (operationId, status).
LINKS: dict[tuple[str, str], dict[str, dict[str, str]]] = {
    ("createSaga", "201"): _saga_links(""),
    ("addSagaStep", "201"): {**_saga_links(""), "removeSagaStep": {
        "saga_id": "$response.body#/id", "step_id": "$request.body#/id"}},
    ("listSagas", "200"): _saga_links("/items/0"),
    ("executeSaga", "202"): _execution_links(""),
    ("executeSaga", "200"): _execution_links(""),
    ("listExecutions", "200"): _execution_links("/items/0"),
    ("listCallbacks", "200"): {name: {"callback_id": "$response.body#/items/0/callback_id"}
                               for name in ("succeedCallback", "failCallback",
                                            "heartbeatCallback")},
}


def _add_links(paths: dict[str, Any]) -> None:
    operations = {operation["operationId"]: operation for item in paths.values()
                  for operation in item.values() if isinstance(operation, dict)}
    for (source, status), targets in LINKS.items():
        responses = operations[source]["responses"]
        # A copy: a response object may be shared by several operations.
        responses[status] = {**responses[status], "links": {
            target: {"operationId": target, "parameters": dict(parameters)}
            for target, parameters in targets.items()}}


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
def stage_document(document: dict[str, Any], *, auth_enabled: bool, stage: str,
                   saga: SagaSettings) -> dict[str, Any]:
    """The committed document as a stage serves it: its schemas made for the stage's own
    validation rules and limits (`saga`), and without auth no security requirement (no
    token is needed, and it says so). The paths are the committed ones: the route table is
    the same on every stage."""
    served = {**document, "components": {**document["components"],
                                         "schemas": component_schemas(saga)}}
    if auth_enabled:
        return served
    served["security"] = []
    served["info"] = {**document["info"], "description": document["info"]["description"]
                      + f" Stage {stage} runs without auth: no token is needed."}
    served["paths"] = {path: {method: ({k: v for k, v in op.items() if k != "security"}
                                       if isinstance(op, dict) else op)
                              for method, op in item.items()}
                       for path, item in document["paths"].items()}
    return served


def component_schemas(saga: SagaSettings) -> dict[str, Any]:
    """Every schema of the document, for the validation rules and limits of `saga`."""
    schemas = model_schemas()
    constrain(schemas, saga)
    schemas["Caller"]["properties"]["actions"]["items"]["enum"] = sorted(CONSOLE_ACTIONS)
    for name, example in _examples().items():
        schemas[name]["examples"] = [example]
    return dict(sorted(schemas.items()))


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


def build_document(saga: SagaSettings,
                   routes: Mapping[str, Mapping[str, RouteEntry]]) -> dict[str, Any]:
    """The document of the app whose route table is `routes` (app.routes), for the
    validation rules and limits of `saga`."""
    paths = _with_common_errors(_paths(routes))
    return {
        "openapi": "3.1.0",
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
            "schemas": component_schemas(saga),
            "responses": {
                f"Error{status}": _json_response(text, _ref("Error"))
                for status, text in {**_ERROR_TEXTS, **dict(_COMMON_ERRORS)}.items()
            },
        },
    }
