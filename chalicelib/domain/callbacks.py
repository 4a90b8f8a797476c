"""Callbacks: how a waiting step is completed from outside, and who may do it. Pure.

A callback is one attempt of one callback step waiting to be completed. Its id is opaque and
unguessable; a per-callback secret (only its SHA-256 is kept) lets a partner complete that one
callback with no other credential; the engine's task token stays in the write model. The
decisions below (whether a completion is accepted, and what it makes of the step) are taken
under the execution's row lock by chalicelib.usecases.steps.callbacks.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from chalicelib.domain.errors import ErrorKind
from chalicelib.domain.lifecycle import StepStatus
from chalicelib.domain.storable import MAX_WAIT_INPUT_DEPTH, kept_input

# An approval approved: what a person's "approve" completes it with when they add nothing (the
# console's button, `saga callbacks succeed` without --result, `saga verify`).
APPROVED: dict[str, Any] = {"approved": True}

# 32 random bytes each, URL-safe: the id names a callback, the secret proves the caller was
# given it. Neither can be guessed from the other or from the execution.
_ID_BYTES = 24
_SECRET_BYTES = 32
CALLBACK_ID_PREFIX = "cb_"
# The longest id a client may send (longer ones are refused before any lookup).
MAX_CALLBACK_ID_LENGTH = 64


class CallbackState(StrEnum):
    OPEN = "open"  # waiting to be completed
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    # A later attempt of the step (a retry forward) took over: this one completes nothing.
    SUPERSEDED = "superseded"


class Completion(StrEnum):
    """What a caller asks of a callback."""

    SUCCEED = "succeed"
    FAIL = "fail"
    HEARTBEAT = "heartbeat"


@dataclass(frozen=True)
class Callback:
    """A callback as the write model keeps it."""

    id: str
    secret_sha256: str
    execution_id: str
    step_id: str
    attempt: int
    task_token: str
    created_at: datetime
    expires_at: datetime  # the step's timeout from the attempt's start: the wait's deadline
    heartbeat_s: int | None = None
    state: CallbackState = CallbackState.OPEN
    closed_at: datetime | None = None
    closed_by: str | None = None


def new_callback_id() -> str:
    return CALLBACK_ID_PREFIX + secrets.token_urlsafe(_ID_BYTES)


def new_secret() -> str:
    return secrets.token_urlsafe(_SECRET_BYTES)


def secret_sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def secret_matches(secret: str | None, callback: Callback) -> bool:
    """Compared in constant time; an absent secret never matches."""
    if not secret:
        return False
    return hmac.compare_digest(secret_sha256(secret), callback.secret_sha256)


# -- decisions ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Refusal:
    kind: ErrorKind
    message: str


def refusal(callback: Callback | None, completion: Completion, *, step_status: StepStatus | None,
            execution_running: bool, now: datetime) -> Refusal | None:
    """Why a completion is refused (None: accept it). Unknown ids and wrong secrets are told
    apart by the caller (auth), not here."""
    if callback is None:
        return Refusal(ErrorKind.NOT_FOUND, "no such callback")
    if callback.state is CallbackState.SUPERSEDED:
        return Refusal(ErrorKind.CONFLICT, "this callback was replaced by a later attempt of "
                                           "its step; use the newer callback")
    if callback.state is not CallbackState.OPEN:
        return Refusal(ErrorKind.CONFLICT,
                       f"this callback was already completed ({callback.state}) at "
                       f"{_iso(callback.closed_at)}; a callback is completed once")
    if now >= callback.expires_at:
        return Refusal(ErrorKind.CONFLICT,
                       f"the wait ended at {_iso(callback.expires_at)} (the step's timeout); "
                       "its step is compensated, so this completion changes nothing")
    # PENDING or RUNNING: its call is still out (the callback was committed before it).
    if not execution_running or step_status not in (StepStatus.PENDING, StepStatus.RUNNING,
                                                    StepStatus.WAITING):
        return Refusal(ErrorKind.CONFLICT,
                       "the execution has moved on from this step (it failed, was "
                       "compensated or ended); this completion changes nothing")
    if completion is Completion.HEARTBEAT and callback.heartbeat_s is None:
        return Refusal(ErrorKind.CONFLICT, "this step takes no heartbeat (its definition "
                                           "sets none)")
    return None


def wait_input(step_input: Mapping[str, Any], max_bytes: int) -> dict[str, Any] | None:
    """A callback's input as its wait keeps it (and every event of its step carries it): what
    an approval's person decides on, what a partner's call was sent. The step's input as its
    mapping resolved, unless it is over `max_bytes` once encoded (saga.max_result_bytes, a
    step's result's own bound), when None says to read it from the execution (or nested too
    deeply to be stored where the wait keeps it)."""
    return kept_input(step_input, max_bytes=max_bytes, max_depth=MAX_WAIT_INPUT_DEPTH)


def completed_by(*, secret: bool, subject: str | None) -> str:
    """Who completed a callback, as the step's record says: a partner holding the
    callback's secret, or an authenticated caller."""
    return "callback-secret" if secret else f"caller:{subject or 'anonymous'}"


def _iso(at: datetime | None) -> str:
    return at.isoformat() if at is not None else "an unknown time"
