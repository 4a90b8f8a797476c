"""HTTP plumbing shared by the routes: the caller and their role, rate limits, reading bodies
into the use cases' request models, and one error format.

Every error answers {"error": {"code", "message", ...details}}, its status and code from the
table of chalicelib/http/http_errors.py; validation errors add
"violations": [{"field", "rule", "message", "value"}].
"""

from __future__ import annotations

import functools
import json
import logging
import re
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from chalice import Response
from chalice.app import Request

from chalicelib.adapters.cursors import CursorSeal
from chalicelib.config import Settings
from chalicelib.domain.errors import BadRequest, ErrorKind, SagaError
from chalicelib.domain.storable import nesting_depth
from chalicelib.http.auth import (
    ANONYMOUS_ADMIN,
    MISSING_TOKEN,
    Principal,
    Role,
    Unauthenticated,
    role_named,
)
from chalicelib.http.http_errors import http_error

# The request models, the definitions' validation and the use cases' vocabulary are imported
# by the helpers that need them, when a request first does: a cold start pays for what it
# serves.
if TYPE_CHECKING:
    from chalicelib.domain.models import SagaDefinition, StepDefinition
    from chalicelib.domain.requests import ExecuteRequest, RequestModel
    from chalicelib.domain.validation import Violation
    from chalicelib.usecases.ports import Actor
    from chalicelib.usecases.steps.callbacks import Caller

logger = logging.getLogger(__name__)
JSON = {"Content-Type": "application/json"}
Model = TypeVar("Model", bound="RequestModel")


class EdgeParts(Protocol):
    """What the edge reads of the process's Container. The root hands it over (`use_parts`,
    from app.py) rather than the edge importing the root, which sits above it."""

    @property
    def settings(self) -> Settings: ...

    @property
    def cursor_seal(self) -> CursorSeal: ...


# Called on each use, so a Container swapped in later (tests, tools) is the one read.
_parts: list[Callable[[], EdgeParts]] = []


def use_parts(parts: Callable[[], EdgeParts]) -> None:
    """Where the edge gets the process's parts from (app.py: the process's Container)."""
    _parts[:] = [parts]


def _edge() -> EdgeParts:
    if not _parts:
        raise RuntimeError("the edge has no parts yet: app.py hands them over with use_parts")
    return _parts[0]()


def _settings() -> Settings:
    """The settings of the process's Container (the one the handlers use)."""
    return _edge().settings


def _cursor_seal() -> CursorSeal:
    return _edge().cursor_seal


def error_response(status: int, code: str, message: str, **details: Any) -> Response:
    return Response(body={"error": {"code": code, "message": message, **details}},
                    status_code=status, headers=JSON)


def kind_response(kind: ErrorKind, message: str, **details: Any) -> Response:
    """An error of `kind` with the status and code the table gives it."""
    status, code = http_error(kind)
    return error_response(status, code, message, **details)


def in_error_format(response: Response) -> Response:
    """Chalice's own refusals (405, 415, ...) say {"Code", "Message"}; give them ours."""
    body = response.body
    if response.status_code >= 400 and isinstance(body, dict) and set(body) == {
            "Code", "Message"}:
        code = re.sub(r"(?<!^)(?=[A-Z])", "_", str(body["Code"])).lower()
        code = code.removesuffix("_error")
        response.body = {"error": {"code": code, "message": str(body["Message"])}}
        response.headers = {**(response.headers or {}), **JSON}
    return response


def json_body(request: Request, *, required: bool = True) -> Any:
    """The parsed JSON body; 400 for a missing, malformed or too deeply nested one, 413 for
    one over the size limit."""
    limits = _settings().limits
    raw = request.raw_body
    if not raw:
        if required:
            raise _BodyError("the request needs a JSON body")
        return None
    if len(raw) > limits.max_body_bytes:
        raise _TooLarge(f"the body is {len(raw)} bytes; the limit is {limits.max_body_bytes}")
    try:
        body = json.loads(raw, object_pairs_hook=_unique_keys)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise _BodyError(f"the body is not valid JSON: {error}") from None
    except _DuplicateKey as duplicate:
        raise _BodyError(f"the body names {duplicate.key!r} more than once in one object",
                         field=duplicate.key) from None
    except RecursionError:
        raise _BodyError(f"the body nests deeper than {limits.max_json_depth} levels") from None
    if nesting_depth(body, limits.max_json_depth) > limits.max_json_depth:
        raise _BodyError(f"the body nests deeper than {limits.max_json_depth} levels")
    return body


class _DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """json.loads keeps the last of repeated keys; which one a client meant is unknowable."""
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKey(key)
        result[key] = value
    return result


def body_as(request: Request, model: type[Model]) -> Model:
    """The JSON body as the request model `model`; 400 naming every wrong field."""
    from chalicelib.domain.requests import parse_request

    return parse_request(model, json_body(request))


def optional_request(request: Request, model: type[Model],
                     example: str | None = None) -> Model | None:
    """The body as `model`, or None when there is no body at all (an empty one). Any body
    is the request, JSON's null and {} included: none of them is taken for "no body"."""
    if not request.raw_body:
        return None
    from chalicelib.domain.requests import parse_request

    return parse_request(model, json_body(request), example)


def execute_request(request: Request) -> ExecuteRequest:
    """POST .../execute's body; none at all (or null) starts with an empty input."""
    from chalicelib.domain.requests import ExecuteRequest, parse_request

    body = json_body(request, required=False)
    return parse_request(ExecuteRequest, {} if body is None else body)


def definition_body(request: Request) -> tuple[SagaDefinition, list[Violation]]:
    """A saga definition's body and its shape errors (a wrong type, an unknown field): the
    service reports them with every rule the rest breaks, in one 400."""
    from chalicelib.domain.validation import read_definition

    return read_definition(json_body(request))


def step_body(request: Request) -> tuple[StepDefinition, list[Violation]]:
    """A step to add and its shape errors, as definition_body."""
    from chalicelib.domain.validation import read_step

    return read_step(json_body(request))


def listing_cursor(listing: str, cursor: str | None) -> str | None:
    """The store's cursor inside a ?cursor= that `listing` handed out; 400 for a forged or
    tampered one, or one of another listing."""
    try:
        return _cursor_seal().open(listing, cursor)
    except ValueError as invalid:
        raise BadRequest(str(invalid), value=cursor) from None


def next_cursor(listing: str, inner: str | None) -> str | None:
    """A page's next_cursor as `listing` hands it out: sealed, bound to that listing."""
    return _cursor_seal().seal(listing, inner)


# A callback's completion takes its secret, and no other query parameter.
CALLBACK_PARAMS = frozenset({"secret"})


def query_params(request: Request, allowed: frozenset[str]) -> dict[str, str]:
    """The query string; 400 for a parameter the route does not take, or one given more than
    once (as for body fields and keys: never one of several values picked silently)."""
    query = request.query_params or {}
    params = dict(query)
    if unknown := sorted(set(params) - allowed):
        accepted = ", ".join(sorted(allowed)) or "none"
        raise BadRequest(f"unknown query parameter(s): {', '.join(unknown)} "
                         f"(accepted: {accepted})", parameters=unknown)
    getlist = getattr(query, "getlist", None)  # Chalice's MultiDict: every value given
    if getlist is not None and (repeated := sorted(n for n in params if len(getlist(n)) > 1)):
        raise BadRequest(f"query parameter(s) given more than once: {', '.join(repeated)}",
                         parameters=repeated)
    return params


def no_body(request: Request) -> None:
    """For operations that take no parameters: a body asking for something is refused, not
    silently ignored."""
    if json_body(request, required=False) not in (None, {}):
        raise _BodyError("this operation takes no body (or an empty object)")


class _BodyError(SagaError):
    kind = ErrorKind.MALFORMED_BODY


class _TooLarge(SagaError):
    kind = ErrorKind.PAYLOAD_TOO_LARGE


def principal(request: Request) -> Principal:
    """The caller as the authorizer established them; with auth off, everyone is an admin."""
    if not _settings().auth.enabled:
        return ANONYMOUS_ADMIN
    authorizer = (request.context or {}).get("authorizer") or {}
    subject = authorizer.get("principalId")
    if not subject:  # a route deployed without the authorizer: refuse rather than trust
        raise Unauthenticated(MISSING_TOKEN)
    return Principal(str(subject), role_named(authorizer.get("role")))


def websocket_caller(event: dict[str, Any], verify: Callable[[str | None], Principal]) -> Principal:
    """The caller of a WebSocket $connect: a bearer token in the Authorization header or, as
    browsers cannot set headers on a WebSocket, in ?token=. Readers and above may connect."""
    if not _settings().auth.enabled:
        return ANONYMOUS_ADMIN
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    token = (event.get("queryStringParameters") or {}).get("token")
    caller = verify(headers.get("authorization") or (f"Bearer {token}" if token else None))
    caller.require(Role.READER, "subscribing to updates")
    return caller


def callback_caller(request: Request, verify: Callable[[str | None], Principal]) -> Caller:
    """Who completes a callback. Its links carry ?secret=, which completes that one callback
    (checked against it by the service) and needs no token, so these routes are deployed
    without the authorizer; without a secret, a bearer token whose role is approver or above
    (with auth off, anyone, as on every route)."""
    from chalicelib.usecases.steps.callbacks import Caller

    secret = (request.query_params or {}).get("secret")
    if secret is not None:
        return Caller(secret=secret)
    if not _settings().auth.enabled:
        return Caller(subject=f"anonymous@{_source(request)}")
    headers = {k.lower(): v for k, v in (request.headers or {}).items()}
    caller = verify(headers.get("authorization"))
    path = (request.context or {}).get("resourcePath") or request.path
    caller.require(Role.APPROVER, f"{request.method} {path}")
    return Caller(subject=caller.subject)


def _source(request: Request) -> str:
    identity = (request.context or {}).get("identity") or {}
    return str(identity.get("sourceIp") or "unknown")


def actor(request: Request) -> Actor:
    """Who asked, for the audit log: the token's subject, else the caller's address."""
    from chalicelib.usecases.ports import Actor

    caller = principal(request)
    name = f"anonymous@{_source(request)}" if caller is ANONYMOUS_ADMIN else caller.subject
    return Actor(name=name, request_id=(request.context or {}).get("requestId"))


def guarded(role: Role, current_request: Callable[[], Request], limiter: Callable[[], Any],
            params: frozenset[str] = frozenset()) -> Callable[[Callable[..., Any]],
                                                              Callable[..., Any]]:
    """A view that answers only callers with `role` (403 otherwise) within their rate limit
    (429 with Retry-After), taking only the query parameters `params` (400 otherwise), with
    every error in the one format."""

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        @handles_errors
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            request = current_request()
            caller = principal(request)
            path = (request.context or {}).get("resourcePath") or request.path
            caller.require(role, f"{request.method} {path}")
            key = (f"ip:{_source(request)}" if caller is ANONYMOUS_ADMIN
                   else f"sub:{caller.subject}")
            limiter().check(key)
            query_params(request, params)
            return view(*args, **kwargs)

        return wrapper

    return decorate


def callback_guarded(current_request: Callable[[], Request],
                     limiter: Callable[[], Any]) -> Callable[[Callable[..., Any]],
                                                            Callable[..., Any]]:
    """A callback route: deployed without the authorizer (a partner holds the callback's
    secret, not a token; callback_caller checks either), limited per caller address, taking
    only ?secret=, with every error in the one format."""

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        @handles_errors
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            request = current_request()
            limiter().check(f"ip:{_source(request)}")
            query_params(request, CALLBACK_PARAMS)
            return view(*args, **kwargs)

        return wrapper

    return decorate


def handles_errors(view: Callable[..., Any]) -> Callable[..., Any]:
    """Map errors to their status and code (the table of chalicelib/http/http_errors.py);
    anything unexpected to a logged, opaque 500."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return view(*args, **kwargs)
        except SagaError as error:
            response = kind_response(error.kind, error.message, **error.details)
            # A caller over its rate limit, or an orchestrator over AWS's: when to ask again.
            if (retry_after := getattr(error, "retry_after", None)) is not None:
                response.headers["Retry-After"] = str(retry_after)
            return response
        except Exception as error:
            # The connection was dropped; the next request gets a new one.
            if _database_unavailable(error):
                logger.warning("database error in %s: %r", view.__name__, error)
                return kind_response(ErrorKind.DATABASE_UNAVAILABLE,
                                     "the database is unavailable; try again")
            logger.exception("unhandled error in %s", view.__name__)
            return kind_response(ErrorKind.INTERNAL,
                                 "the service failed; the error has been logged")

    return wrapper


def _database_unavailable(error: BaseException) -> bool:
    """Whether the error is the database's (a 503). Only pymysql raises those, and it is
    imported with the first connection: before that, no error can be one."""
    if "pymysql" not in sys.modules:
        return False
    from chalicelib.adapters.mysql.connector import unavailable

    return unavailable(error)
