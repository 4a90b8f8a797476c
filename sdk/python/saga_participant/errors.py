"""The answers that are not results: typed errors, and how each front end sends them.

Every error carries a `type` (a name: `OutOfStock`, `CardDeclined`), a `message` (one line for
people) and `details` (a JSON object for programs). Two kinds:

- `Refusal`: the request cannot succeed, now or on a retry (a declined card, no stock). Never
  retried: the saga compensates the steps before it at once.
- `TryAgain`: a passing fault (a busy downstream, a lock). The saga retries the step with its
  own backoff. `DeadlinePassed` is one.

On the wire (see the README's "The error protocol"):

- HTTP: 422 (a refusal) or 503 (try again) with `{"error": {"type", "message", "details"}}`;
  400 with `{"error": {"type": "NotThisContract", ...}}` for a request that is not the contract.
- Lambda: the function fails with an exception named `PermanentError` (a refusal: the
  orchestrator never retries that name) or `TryAgain`; its message, Lambda's `errorMessage`, is
  the compact JSON text of `{"type", "message", "details"}`, keys sorted.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, Optional

from saga_participant.contract import NOT_THIS_CONTRACT, PERMANENT_ERROR, TRY_AGAIN

# A type is a name: a letter, then letters, digits, `_`, `.` or `-`; at most 100 characters.
_TYPE = re.compile(r"[A-Za-z][A-Za-z0-9_.\-]{0,99}")


def _checked_type(type_: Any) -> str:
    if not isinstance(type_, str) or not _TYPE.fullmatch(type_):
        raise ValueError(f"an error's type is a name (a letter, then letters, digits, _, . or "
                         f"-; at most 100 characters), not {type_!r}")
    return type_


def _json_object(details: Optional[Mapping[str, Any]]) -> dict[str, Any]:
    """The details as the wire carries them: a JSON object (a value JSON cannot hold, a
    Decimal or a datetime, is sent as its text)."""
    if details is None:
        return {}
    if not isinstance(details, Mapping):
        raise TypeError(f"an error's details are a mapping (a JSON object), not "
                        f"{type(details).__name__}")
    return dict(json.loads(json.dumps(dict(details), default=str)))


class ParticipantError(Exception):
    """An answer that is not a result: `type`, `message` and `details`."""

    def __init__(self, type: str, message: str = "",
                 details: Optional[Mapping[str, Any]] = None) -> None:
        self.type = _checked_type(type)
        self.message = "" if message is None else str(message)
        self.details = _json_object(details)
        super().__init__(self.type, self.message, self.details)

    def __str__(self) -> str:
        return self.message or self.type

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(type={self.type!r}, message={self.message!r}, "
                f"details={self.details!r})")

    def to_dict(self) -> dict[str, Any]:
        """`{"type", "message", "details"}`: the `error` of an HTTP answer's body."""
        return {"type": self.type, "message": self.message, "details": dict(self.details)}

    def to_json(self) -> str:
        """The compact JSON text of `to_dict()`, keys sorted: a Lambda's `errorMessage`."""
        return json.dumps(self.to_dict(), separators=(",", ":"), sort_keys=True)


class Refusal(ParticipantError):
    """The request cannot succeed, now or on a retry: the saga compensates at once.

        raise Refusal("OutOfStock", "only 2 left", {"sku": "sku-1", "available": 2})
    """

    def __init__(self, type: str, message: str = "",
                 details: Optional[Mapping[str, Any]] = None) -> None:
        super().__init__(type, message, details)


class Refuse(Refusal):
    """The earlier name of `Refusal`, message first: `Refuse("no seats left")` is a refusal of
    type `Refused`."""

    def __init__(self, message: str = "", type: str = "Refused",
                 details: Optional[Mapping[str, Any]] = None) -> None:
        ParticipantError.__init__(self, type, message, details)
        self.args = (self.message, self.type, self.details)


class NotThisContract(Refusal, ValueError):
    """The request is not a saga-participant/1 request (HTTP 400). A ValueError too."""

    def __init__(self, message: str = "",
                 details: Optional[Mapping[str, Any]] = None) -> None:
        ParticipantError.__init__(self, NOT_THIS_CONTRACT, message, details)
        self.args = (self.message, self.details)


class TryAgain(ParticipantError):
    """A passing fault: the saga retries the step (with its own backoff).

        raise TryAgain("the warehouse is busy", details={"retry_after_s": 2})
    """

    def __init__(self, message: str = "", type: str = TRY_AGAIN,
                 details: Optional[Mapping[str, Any]] = None) -> None:
        super().__init__(type, message, details)
        self.args = (self.message, self.type, self.details)


class DeadlinePassed(TryAgain):
    """The request's deadline has passed: the orchestrator has cut the call, and nothing may be
    committed any more. Retryable (the saga retries or compensates the step anyway); the
    handler's own transaction must roll back as it propagates."""

    def __init__(self, message: str = "", type: str = "DeadlinePassed",
                 details: Optional[Mapping[str, Any]] = None) -> None:
        super().__init__(message, type, details)


# -- the Lambda forms ------------------------------------------------------------------------------

class PermanentError(Refusal):
    """A refusal as a Lambda participant fails with it: Lambda reports the class name,
    `PermanentError`, as the error's type (the saga never retries it), and `str()`, the JSON
    text of `{"type", "message", "details"}`, as its message."""

    def __str__(self) -> str:
        return self.to_json()

    @classmethod
    def of(cls, error: ParticipantError) -> PermanentError:
        return cls(error.type, error.message, error.details)


class LambdaTryAgain(TryAgain):
    """A passing fault as a Lambda participant fails with it: named `TryAgain` (Lambda's error
    type; retried), with the JSON text of `{"type", "message", "details"}` as its message."""

    def __str__(self) -> str:
        return self.to_json()

    @classmethod
    def of(cls, error: ParticipantError) -> LambdaTryAgain:
        return cls(error.message, error.type, error.details)


# Lambda reports `type(error).__name__` as the error's type: the orchestrator retries TryAgain
# and never PermanentError. (The qualified name stays, so pickle finds the class.)
LambdaTryAgain.__name__ = TRY_AGAIN
PermanentError.__name__ = PERMANENT_ERROR
