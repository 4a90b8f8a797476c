"""The Chalice app: API Gateway routes and Lambda handlers. Parsing and calling only.

Loading it imports the routing, the edge and the settings, which every request needs, and no
more: the Container (chalicelib/roots/container.py) imports each client and use case when a
request first asks for it, and a handler imports what only it uses (request models, Kafka's
consumer, the WebSocket filters, the health checks, the step runtime) when first called.
`python -m bench.cold_start` measures what that saves.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from chalice import AuthResponse, Chalice, CORSConfig, Rate, Response
from chalice.app import AuthRequest, WebsocketEvent

from chalicelib.config import load_settings
from chalicelib.http import console
from chalicelib.http.api import (
    CALLBACK_PARAMS,
    JSON,
    actor,
    body_as,
    callback_caller,
    callback_guarded,
    definition_body,
    execute_request,
    guarded,
    handles_errors,
    in_error_format,
    listing_cursor,
    next_cursor,
    no_body,
    optional_request,
    principal,
    step_body,
    use_parts,
    websocket_caller,
)
from chalicelib.http.auth import Forbidden, Role, TokenRejected, Unauthenticated
from chalicelib.http.http_errors import http_status
from chalicelib.http.paths import API_PREFIX
from chalicelib.roots import step_functions
from chalicelib.roots.runtime import container
from chalicelib.usecases.cleanup import cleanup_schedule_minutes

if TYPE_CHECKING:
    from chalicelib.http.static_files import StaticFiles
    from chalicelib.usecases.definitions import DefinitionService
    from chalicelib.usecases.executions import ExecutionService

# What API Gateway is configured with when the app is packaged (whether routes carry the
# authorizer, CORS, the cleanup schedule's rate): Chalice reads these as it loads the module.
# Everything a request uses comes from the process's Container, built on first use.
DEPLOYED = load_settings()
app = Chalice(app_name="saga-orchestrator")
app.experimental_feature_flags.update(["WEBSOCKETS"])
API = API_PREFIX
# The edge reads its settings and cursor seal from the process's Container (asked on each use).
use_parts(container)


# -- who may call what ----------------------------------------------------------------------

@app.authorizer(ttl_seconds=300)
def jwt_auth(auth_request: AuthRequest) -> AuthResponse:
    """Checks the bearer token; the role it grants travels to the views in the context."""
    try:
        caller = container().token_verifier.verify(auth_request.token)
    except Unauthenticated as refused:
        raise TokenRejected(refused.message) from None
    return AuthResponse(routes=["*"], principal_id=caller.subject,
                        context={"role": caller.role.name.lower()})


@app.middleware("http")
def one_error_format(event: Any, get_response: Callable[[Any], Response]) -> Response:
    return in_error_format(get_response(event))


# Bearer tokens on every route but /health when auth is on (decided when the API is deployed).
AUTHORIZER = jwt_auth if DEPLOYED.auth.enabled else None
CORS = (CORSConfig(allow_origin=DEPLOYED.limits.cors.allow_origin,
                   allow_headers=DEPLOYED.limits.cors.allow_headers,
                   max_age=DEPLOYED.limits.cors.max_age)
        if DEPLOYED.limits.cors.allow_origin else None)


# (path, method) -> the least role it needs. Built by a call: Chalice's policy analyzer cannot
# read an annotated assignment at module level.
ROUTE_ROLES = dict[tuple[str, str], Role]()
# The query parameters each route takes (any other is 400): what the document lists.
ROUTE_PARAMS = dict[tuple[str, str], frozenset[str]]()


def route(path: str, method: str, role: Role,
          params: tuple[str, ...] = ()) -> Callable[[Callable[..., Any]], Any]:
    """A REST route answering callers with `role` or above, within their rate limit, taking
    the query parameters `params` and no others."""

    def decorate(view: Callable[..., Any]) -> Any:
        ROUTE_ROLES[(path, method)] = role
        taken = ROUTE_PARAMS[(path, method)] = frozenset(params)
        guard = guarded(role, lambda: app.current_request, lambda: container().rate_limiter,
                        taken)
        return app.route(path, methods=[method], authorizer=AUTHORIZER, cors=CORS)(guard(view))

    return decorate


def _definitions() -> DefinitionService:
    return container().definition_service


def _executions() -> ExecutionService:
    return container().execution_service


def _saga(saga: Any) -> dict[str, Any]:
    return saga.model_dump(mode="json")


def _query(name: str) -> str | None:
    return (app.current_request.query_params or {}).get(name)


# -- health -----------------------------------------------------------------------------------

def _health_response() -> Response:
    from chalicelib.roots.health import check_health

    settings = container().settings
    report = check_health(container())
    report.update(service=settings.saga.name, version=settings.saga.version, stage=settings.stage)
    return Response(body=report, status_code=200 if report["status"] == "up" else 503,
                    headers=JSON)


@app.route("/health", methods=["GET"])
def health() -> Response:
    """Liveness for load balancers, which call it often: answered from the process alone (no
    server is asked); the component checks are GET /api/v1/saga/health."""
    from chalicelib.http.payloads import Liveness

    settings = container().settings
    body = Liveness(status="up", service=settings.saga.name, version=settings.saga.version,
                    stage=settings.stage)
    return Response(body=body.model_dump(), status_code=200, headers=JSON)


@route(f"{API}/health", "GET", Role.READER)
def detailed_health() -> Response:
    return _health_response()


@route(f"{API}/openapi.json", "GET", Role.READER)
def openapi() -> dict[str, Any]:
    return container().openapi_document


# -- saga definitions -------------------------------------------------------------------------

@route(f"{API}/sagas", "POST", Role.ADMIN)
def create_saga() -> Response:
    definition, shape = definition_body(app.current_request)
    saga = _definitions().create(definition, actor(app.current_request), shape=shape)
    return Response(body=_saga(saga), status_code=201,
                    headers={**JSON, "Location": f"{API}/sagas/{saga.id}?version={saga.version}"})


@route(f"{API}/sagas", "GET", Role.READER, params=("limit", "cursor", "active", "type"))
def list_sagas() -> dict[str, Any]:
    page = _definitions().list(limit=_query("limit"),
                               cursor=listing_cursor("sagas", _query("cursor")),
                               active=_query("active"), saga_type=_query("type"))
    return {"items": [_saga(s) for s in page.items],
            "next_cursor": next_cursor("sagas", page.next_cursor)}


@route(f"{API}/sagas/stats", "GET", Role.READER)
def all_saga_stats() -> dict[str, Any]:
    return {**_definitions().all_stats(), "executions": _executions().totals()}


@route(f"{API}/sagas/{{saga_id}}", "GET", Role.READER, params=("version",))
def get_saga(saga_id: str) -> dict[str, Any]:
    return _saga(_definitions().get(saga_id, _query("version")))


@route(f"{API}/sagas/{{saga_id}}", "DELETE", Role.ADMIN)
def destroy_saga(saga_id: str) -> Response:
    _definitions().destroy(saga_id, actor(app.current_request))
    return Response(body="", status_code=204)


@route(f"{API}/sagas/{{saga_id}}/versions", "GET", Role.READER)
def saga_versions(saga_id: str) -> dict[str, Any]:
    versions = _definitions().versions(saga_id)
    return {"saga_id": saga_id,
            "versions": [{**v, "created_at": v["created_at"].isoformat()} for v in versions]}


@route(f"{API}/sagas/{{saga_id}}/stats", "GET", Role.READER)
def saga_stats(saga_id: str) -> dict[str, Any]:
    stats = _definitions().saga_stats(saga_id)
    return {**stats, "executions": _executions().saga_summary(saga_id)}


@route(f"{API}/sagas/{{saga_id}}/active", "PUT", Role.ADMIN)
def set_saga_active(saga_id: str) -> dict[str, Any]:
    from chalicelib.domain.requests import ActiveRequest

    return _saga(_definitions().set_active(saga_id, body_as(app.current_request, ActiveRequest),
                                           actor(app.current_request)))


@route(f"{API}/sagas/{{saga_id}}/steps", "POST", Role.ADMIN)
def add_saga_step(saga_id: str) -> Response:
    step, shape = step_body(app.current_request)
    saga = _definitions().add_step(saga_id, step, actor(app.current_request), shape=shape)
    return Response(body=_saga(saga), status_code=201, headers=JSON)


@route(f"{API}/sagas/{{saga_id}}/steps/{{step_id}}", "DELETE", Role.ADMIN)
def remove_saga_step(saga_id: str, step_id: str) -> dict[str, Any]:
    return _saga(_definitions().remove_step(saga_id, step_id, actor(app.current_request)))


@route(f"{API}/stats", "GET", Role.READER)
def service_stats() -> dict[str, Any]:
    settings = container().settings
    return {"service": settings.saga.name, "version": settings.saga.version,
            "stage": settings.stage, "definitions": _definitions().all_stats(),
            "executions": _executions().totals()}


@route(f"{API}/cleanup", "POST", Role.ADMIN)
def perform_cleanup() -> dict[str, Any]:
    no_body(app.current_request)
    return container().cleanup.run(actor(app.current_request))


# -- executions -------------------------------------------------------------------------------

def _execution(execution: Any) -> dict[str, Any]:
    return execution.model_dump(mode="json")


@route(f"{API}/sagas/{{saga_id}}/execute", "POST", Role.OPERATOR)
def execute_saga(saga_id: str) -> Response:
    execution, created = _executions().execute(
        saga_id, execute_request(app.current_request), actor(app.current_request))
    return Response(body=_execution(execution), status_code=202 if created else 200,
                    headers={**JSON, "Location": f"{API}/executions/{execution.id}"})


@route(f"{API}/sagas/{{saga_id}}/compensate", "POST", Role.OPERATOR)
def compensate_saga(saga_id: str) -> Response:
    from chalicelib.domain.requests import CompensateRequest

    # No body at all: the latest COMPLETED execution; any body must name one.
    request = optional_request(app.current_request, CompensateRequest)
    execution = _executions().compensate(
        saga_id, None if request is None else request.execution_id, actor(app.current_request))
    return Response(body=_execution(execution), status_code=202, headers=JSON)


@route(f"{API}/sagas/{{saga_id}}/status", "GET", Role.READER)
def saga_status(saga_id: str) -> dict[str, Any]:
    return _executions().status(saga_id)


@route(f"{API}/executions", "GET", Role.READER,
       params=("saga_id", "status", "started_after", "started_before", "needs_attention",
               "resolved", "q", "limit", "cursor"))
def list_executions() -> dict[str, Any]:
    page = _executions().list(saga_id=_query("saga_id"), status=_query("status"),
                              started_after=_query("started_after"),
                              started_before=_query("started_before"),
                              needs_attention=_query("needs_attention"),
                              resolved=_query("resolved"), q=_query("q"),
                              limit=_query("limit"),
                              cursor=listing_cursor("executions", _query("cursor")))
    # Items are light: no steps and no input (the read model does not load them);
    # GET /executions/{id} has both.
    from chalicelib.domain.executions import LISTED_WITHOUT

    return {"items": [e.model_dump(mode="json", exclude=LISTED_WITHOUT) for e in page.items],
            "next_cursor": next_cursor("executions", page.next_cursor)}


@route(f"{API}/executions/{{execution_id}}", "GET", Role.READER)
def get_execution(execution_id: str) -> dict[str, Any]:
    return _execution(_executions().get(execution_id))


@route(f"{API}/executions/{{execution_id}}/history", "GET", Role.READER,
       params=("limit", "cursor"))
def execution_history(execution_id: str) -> dict[str, Any]:
    page = _executions().history(execution_id, limit=_query("limit"),
                                 cursor=listing_cursor("history", _query("cursor")))
    return {"execution_id": execution_id,
            "items": [item.model_dump(mode="json") for item in page.items],
            "next_cursor": next_cursor("history", page.next_cursor)}


@route(f"{API}/executions/{{execution_id}}/retry-compensation", "POST", Role.OPERATOR)
def retry_compensation(execution_id: str) -> Response:
    execution = _executions().retry_compensation(execution_id, actor(app.current_request))
    return Response(body=_execution(execution), status_code=202, headers=JSON)


@route(f"{API}/executions/{{execution_id}}/retry-forward", "POST", Role.OPERATOR)
def retry_forward(execution_id: str) -> Response:
    execution = _executions().retry_forward(execution_id, actor(app.current_request))
    return Response(body=_execution(execution), status_code=202, headers=JSON)


@route(f"{API}/executions/{{execution_id}}/resolve", "POST", Role.OPERATOR)
def resolve_execution(execution_id: str) -> dict[str, Any]:
    from chalicelib.domain.requests import ResolveRequest

    return _execution(_executions().resolve(
        execution_id, body_as(app.current_request, ResolveRequest), actor(app.current_request)))


# -- open callbacks: the waiting callback steps (approvals among them), oldest first ----------

@route(f"{API}/callbacks", "GET", Role.READER,
       params=("approval", "saga_id", "limit", "cursor"))
def list_callbacks() -> dict[str, Any]:
    listed = container().callback_listing.list(
        approval=_query("approval"), saga_id=_query("saga_id"), limit=_query("limit"),
        cursor=listing_cursor("callbacks", _query("cursor")))
    return {**listed.model_dump(mode="json"),
            "next_cursor": next_cursor("callbacks", listed.next_cursor)}


@route(f"{API}/callbacks/count", "GET", Role.READER, params=("approval", "saga_id"))
def count_callbacks() -> dict[str, Any]:
    return container().callback_listing.count(
        approval=_query("approval"), saga_id=_query("saga_id")).model_dump(mode="json")


# -- completing waiting steps: a partner (the secret in its callback's links) or an approver --

def callback_route(action: str) -> Callable[[Callable[..., Any]], Any]:
    path = f"{API}/callbacks/{{callback_id}}/{action}"

    def decorate(view: Callable[..., Any]) -> Any:
        ROUTE_ROLES[(path, "POST")] = Role.APPROVER
        ROUTE_PARAMS[(path, "POST")] = CALLBACK_PARAMS
        guard = callback_guarded(lambda: app.current_request, lambda: container().rate_limiter)
        return app.route(path, methods=["POST"], cors=CORS)(guard(view))

    return decorate


def _callback_caller() -> Any:
    # The verifier is built only when a token is to be checked (auth on).
    return callback_caller(app.current_request,
                           lambda header: container().token_verifier.verify(header))


@callback_route("succeed")
def succeed_callback(callback_id: str) -> dict[str, Any]:
    from chalicelib.domain.requests import SucceedRequest

    caller = _callback_caller()  # who asks, before what they send
    request = optional_request(app.current_request, SucceedRequest) or SucceedRequest()
    return container().callback_service.succeed(callback_id, request, caller).as_dict()


@callback_route("fail")
def fail_callback(callback_id: str) -> dict[str, Any]:
    from chalicelib.domain.requests import FailRequest

    caller = _callback_caller()
    request = body_as(app.current_request, FailRequest)
    return container().callback_service.fail(callback_id, request, caller).as_dict()


@callback_route("heartbeat")
def heartbeat_callback(callback_id: str) -> dict[str, Any]:
    caller = _callback_caller()
    no_body(app.current_request)
    return container().callback_service.heartbeat(callback_id, caller).as_dict()


# -- the operator console: static files (no token needed to load it; it asks for one) ----------

def _static_file(files: StaticFiles, name: str) -> Response:
    """A packaged file (the console's, the docs'), or 304 when the caller's copy is current."""
    item = files.asset(name)
    headers = files.headers(item)
    if (app.current_request.headers or {}).get("if-none-match") == item.etag:
        return Response(body="", status_code=304, headers=headers)
    return Response(body=item.body, status_code=200, headers=headers)


@app.route("/console", methods=["GET"])
@handles_errors
def console_page() -> Response:
    return _static_file(console.FILES, "index.html")


@app.route("/console/{name}", methods=["GET"])
@handles_errors
def console_asset(name: str) -> Response:
    return _static_file(console.FILES, name)


# -- the API's docs: Swagger UI over the OpenAPI document (no token: it holds no data) ----------

def _docs_file(name: str) -> Response:
    from chalicelib.http import docs_page

    return _static_file(docs_page.FILES, name)


@app.route("/docs", methods=["GET"])
@handles_errors
def docs_page() -> Response:
    return _docs_file("index.html")


@app.route("/docs/openapi.json", methods=["GET"])
@handles_errors
def docs_document() -> Response:
    return Response(body=container().openapi_document, status_code=200, headers=JSON)


@app.route("/docs/{name}", methods=["GET"])
@handles_errors
def docs_asset(name: str) -> Response:
    return _docs_file(name)


@route(f"{API}/contracts/saga-participant-1.json", "GET", Role.READER)
def participant_contract() -> dict[str, Any]:
    return container().participant_contract


@route(f"{API}/whoami", "GET", Role.READER)
def whoami() -> dict[str, Any]:
    settings = container().settings
    return console.caller_view(
        principal(app.current_request), auth_enabled=settings.auth.enabled,
        route_roles=ROUTE_ROLES,
        websocket_url=console.websocket_url(settings.websocket.url, settings.websocket.port))


# -- step Lambdas: one per action family, invoked by the state machines ---------------------------

# Deployed with the handlers of chalicelib.roots.step_entry (see that module): declared here so
# Chalice packages them, one per name (the families, then the recorder), each a stand-in that
# runs the same code when called. Chalice's handler is `app.<name>`: each is a module attribute.
for _name in step_functions.FUNCTION_NAMES:
    globals()[_name] = app.lambda_function(name=_name)(step_functions.deferred(_name))


@app.schedule(Rate(5, unit=Rate.MINUTES), name="reconciler")
def reconciler(event: Any) -> dict[str, Any]:
    """Repairs executions left RUNNING while their state machine run has ended."""
    repairs = container().reconciler.run()
    return {"repaired": [repair.__dict__ for repair in repairs]}


@app.schedule(Rate(cleanup_schedule_minutes(DEPLOYED), unit=Rate.MINUTES), name="cleanup")
def scheduled_cleanup(event: Any) -> dict[str, Any]:
    """POST /cleanup's work every saga.cleanup_interval (`saga serve` runs it on a timer)."""
    from chalicelib.usecases.ports import Actor

    return container().cleanup.run(Actor(name="schedule"))


# -- events: outbox -> Kafka -> read model ------------------------------------------------------

@app.schedule(Rate(1, unit=Rate.MINUTES), name="outbox_relay")
def outbox_relay(event: Any) -> dict[str, Any]:
    """Publishes the outbox to Kafka for 50 s of each minute (the event's detail may say
    "run_seconds" to run shorter)."""
    detail = event.to_dict().get("detail") or {}
    seconds = min(50.0, float(detail.get("run_seconds", 50)))
    relay = container().relay
    # The relay is kept across invocations: this one reports its own counts.
    published, failures = relay.stats.published, relay.stats.failures
    relay.run(threading.Event(), deadline=time.monotonic() + seconds)
    return {"published": relay.stats.published - published,
            "failures": relay.stats.failures - failures}


@app.lambda_function(name="projector")
def projector(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Applies a batch from the Kafka (MSK) event source to the MongoDB read model, and pushes
    each applied event to its WebSocket subscribers."""
    from chalicelib.adapters.kafka.consumer import apply_all, msk_events

    parts = container()
    applied = apply_all(parts.pushing_projector, msk_events(event), parts.dead_letters)
    parts.queued_pusher.drain()  # a frozen Lambda would hold its pushes until the next batch
    return {"applied": applied}


# -- WebSocket API: live updates ---------------------------------------------------------------

@app.on_ws_connect()
def ws_connect(event: WebsocketEvent) -> dict[str, Any]:
    """Subscribes to ?saga_id= / ?execution_id= / ?all= if given, else to everything until
    the first subscribe message (chalicelib/adapters/push/filters.py)."""
    from chalicelib.adapters.push.filters import FilterRefused, parse_connect

    raw = event.to_dict()
    try:
        caller = websocket_caller(raw, lambda header: container().token_verifier.verify(header))
    except (Unauthenticated, Forbidden) as refused:  # the connection is refused, not opened
        return {"statusCode": http_status(refused), "body": refused.message}
    try:
        wanted = parse_connect(raw.get("queryStringParameters"))
    except FilterRefused as refused:  # refused, not widened to everything
        return {"statusCode": 400, "body": refused.message}
    container().subscriptions.connect(event.connection_id, wanted.topics(),
                                      principal=caller.subject, default=wanted.is_default)
    return {"statusCode": 200}


@app.on_ws_message()
def ws_message(event: WebsocketEvent) -> None:
    from chalicelib.adapters.push.messages import handle_message

    handle_message(event.connection_id, event.body, container().subscriptions,
                   container().pusher)


@app.on_ws_disconnect()
def ws_disconnect(event: WebsocketEvent) -> None:
    container().subscriptions.disconnect(event.connection_id)
