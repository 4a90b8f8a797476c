"""What each kind of error is over HTTP: its status and the `code` of the error body.

The one place a domain error meets an HTTP status. Codes are part of the API's contract
(clients branch on them): a row's code never changes once published.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from chalicelib.domain.errors import ErrorKind, SagaError

HTTP_ERRORS: Mapping[ErrorKind, tuple[int, str]] = MappingProxyType({
    ErrorKind.BAD_REQUEST: (400, "bad_request"),
    ErrorKind.MALFORMED_BODY: (400, "malformed_body"),
    ErrorKind.VALIDATION_FAILED: (400, "validation_failed"),
    ErrorKind.NOT_STORABLE: (400, "not_storable"),
    ErrorKind.UNAUTHENTICATED: (401, "unauthenticated"),
    ErrorKind.FORBIDDEN: (403, "forbidden"),
    ErrorKind.NOT_FOUND: (404, "not_found"),
    ErrorKind.CONFLICT: (409, "conflict"),
    ErrorKind.ALREADY_RESOLVED: (409, "already_resolved"),
    ErrorKind.PAYLOAD_TOO_LARGE: (413, "payload_too_large"),
    ErrorKind.TOO_LARGE: (413, "too_large"),
    ErrorKind.LIMIT_REACHED: (422, "limit_reached"),
    ErrorKind.RATE_LIMITED: (429, "rate_limited"),
    ErrorKind.INTERNAL: (500, "internal_error"),
    ErrorKind.DATABASE_UNAVAILABLE: (503, "database_unavailable"),
    ErrorKind.ORCHESTRATOR_UNAVAILABLE: (503, "orchestrator_unavailable"),
})


def http_error(kind: ErrorKind) -> tuple[int, str]:
    """(status, code) of a kind; a kind without a row is a 500, never a guess."""
    return HTTP_ERRORS.get(kind, HTTP_ERRORS[ErrorKind.INTERNAL])


def http_status(error: SagaError) -> int:
    return http_error(error.kind)[0]
