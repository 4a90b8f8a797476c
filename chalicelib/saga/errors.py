"""Domain errors; the API maps each to one HTTP status."""

from __future__ import annotations

from typing import Any


class SagaError(Exception):
    status = 500
    code = "internal_error"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class NotFound(SagaError):
    status = 404
    code = "not_found"


class Conflict(SagaError):
    status = 409
    code = "conflict"


class LimitReached(SagaError):
    status = 422
    code = "limit_reached"


class BadRequest(SagaError):
    status = 400
    code = "bad_request"
