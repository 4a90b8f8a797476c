"""Domain errors: a stable kind, a message and details, and nothing of any transport.

What a kind means to a caller (an HTTP status and error code, a CLI's exit code) is decided
at that caller's edge: for HTTP, the one table of chalicelib/http/http_errors.py.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, ClassVar


class ErrorKind(StrEnum):
    """Why a request failed, as every edge may rely on: stable names, never renamed."""

    BAD_REQUEST = "bad_request"  # a parameter or field is wrong
    MALFORMED_BODY = "malformed_body"  # the request could not be read as JSON at all
    VALIDATION_FAILED = "validation_failed"  # a saga definition breaks rules (every one listed)
    NOT_STORABLE = "not_storable"  # a value some store could not hold
    UNAUTHENTICATED = "unauthenticated"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"  # the state does not allow it (now)
    ALREADY_RESOLVED = "already_resolved"  # an operator decided first; the decision stands
    PAYLOAD_TOO_LARGE = "payload_too_large"  # the request is over its size limit
    TOO_LARGE = "too_large"  # what it would record is over a store's size limit
    LIMIT_REACHED = "limit_reached"  # a service limit (max_sagas, max_steps)
    RATE_LIMITED = "rate_limited"
    DATABASE_UNAVAILABLE = "database_unavailable"
    ORCHESTRATOR_UNAVAILABLE = "orchestrator_unavailable"
    INTERNAL = "internal_error"


class SagaError(Exception):
    kind: ClassVar[ErrorKind] = ErrorKind.INTERNAL

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class NotFound(SagaError):
    kind = ErrorKind.NOT_FOUND


class Conflict(SagaError):
    kind = ErrorKind.CONFLICT


class LimitReached(SagaError):
    kind = ErrorKind.LIMIT_REACHED


class BadRequest(SagaError):
    kind = ErrorKind.BAD_REQUEST
