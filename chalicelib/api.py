"""HTTP plumbing shared by the routes: body parsing, the caller, and one error format.

Every error answers {"error": {"code", "message", ...details}}; validation errors add
"violations": [{"field", "rule", "message", "value"}].
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from typing import Any

from chalice import Response
from chalice.app import Request

from chalicelib.ports import Actor
from chalicelib.saga.errors import SagaError
from chalicelib.saga.validation import DefinitionInvalid

logger = logging.getLogger(__name__)
JSON = {"Content-Type": "application/json"}


def error_response(status: int, code: str, message: str, **details: Any) -> Response:
    return Response(body={"error": {"code": code, "message": message, **details}},
                    status_code=status, headers=JSON)


def json_body(request: Request, *, required: bool = True) -> Any:
    """The parsed JSON body; SagaError-style 400s for a missing or malformed one."""
    raw = request.raw_body
    if not raw:
        if required:
            raise _BodyError("the request needs a JSON body")
        return None
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise _BodyError(f"the body is not valid JSON: {error}") from None


class _BodyError(SagaError):
    status = 400
    code = "malformed_body"


def actor(request: Request) -> Actor:
    context = request.context or {}
    identity = context.get("identity") or {}
    source = identity.get("sourceIp") or "unknown"
    return Actor(name=f"anonymous@{source}", request_id=context.get("requestId"))


def handles_errors(view: Callable[..., Any]) -> Callable[..., Any]:
    """Map domain errors to their status; anything unexpected to a logged, opaque 500."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return view(*args, **kwargs)
        except DefinitionInvalid as invalid:
            return error_response(400, "validation_failed",
                                  f"the saga definition has {len(invalid.violations)} error(s)",
                                  violations=[v.as_dict() for v in invalid.violations])
        except SagaError as error:
            return error_response(error.status, error.code, error.message, **error.details)
        except Exception:
            logger.exception("unhandled error in %s", view.__name__)
            return error_response(500, "internal_error",
                                  "the service failed; the error has been logged")

    return wrapper
