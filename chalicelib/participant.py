"""Write a saga participant: a team's own service that does (and undoes) one step.

The service receives the saga-participant/1 request (chalicelib/steps/contract.py), does its
work, and answers with a JSON object, its result. This module does the rest:

- parses and validates the request, and gives the handler a typed `ParticipantRequest`
  (`input`, `results`, and for a compensation `action_result`, `action_error`, `reason`);
- de-duplicates deliveries on the request's idempotency key with Powertools' idempotency
  utility: a retried or redelivered attempt whose first one finished gets the same answer
  without running again. The persistence layer is the team's choice: Powertools'
  `DynamoDBPersistenceLayer` on AWS, or `InMemoryPersistence` here for one process;
- shapes the answer: `Refuse` (the request cannot succeed: a declined card, no seats) is not
  retried, `TryAgain` (a passing fault) is, anything else is retried too.

Two front ends: `lambda_handler(...)` for a Lambda participant, and `wsgi_app(...)` for an HTTP
one (any WSGI server, or a framework that mounts WSGI apps); `handle(...)` is the plain core.

    from chalicelib.participant import Refuse, lambda_handler

    def book(request):            # the action
        return {"booking_id": reserve_seat(request.input["flight"])}

    def cancel(request):          # the compensation
        if request.action_result:  # null when the booking's outcome is unknown (a timeout)
            release_seat(request.action_result["booking_id"])
        return {"cancelled": True}

    handler = lambda_handler(book, cancel, persistence=DynamoDBPersistenceLayer("idem"))
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyItemAlreadyExistsError,
    IdempotencyItemNotFoundError,
)
from aws_lambda_powertools.utilities.idempotency.persistence.base import (
    STATUS_CONSTANTS,
    BasePersistenceLayer,
    DataRecord,
)
from pydantic import ValidationError

from chalicelib.saga.lifecycle import PERMANENT_ERROR, Phase
from chalicelib.steps.contract import CONTRACT, ParticipantRequest

Work = Callable[[ParticipantRequest], dict[str, Any]]


class Refuse(Exception):
    """This request cannot succeed, now or on a retry: the saga compensates at once."""


class TryAgain(Exception):
    """A passing fault: the saga retries the step (with its own backoff)."""


# What a Lambda participant raises for a refusal: the saga never retries an error of this name
# (Step Functions sees the exception's class name as the error type), so the class is named
# from the lifecycle's constant.
PermanentError: type[Exception] = type(PERMANENT_ERROR, (Exception,), {
    "__doc__": "A refusal: the saga compensates at once instead of retrying."})


class InMemoryPersistence(BasePersistenceLayer):
    """Powertools' idempotency records in this process's memory: for one long-lived process
    (an HTTP service with one worker) and tests. Lambdas and fleets want a shared store."""

    def __init__(self) -> None:
        super().__init__()
        self._records: dict[str, DataRecord] = {}
        self._lock = threading.Lock()

    def _get_record(self, idempotency_key: str) -> DataRecord:
        with self._lock:
            record = self._records.get(idempotency_key)
        if record is None:
            raise IdempotencyItemNotFoundError
        return record

    def _put_record(self, data_record: DataRecord) -> None:
        with self._lock:
            existing = self._records.get(data_record.idempotency_key)
            if existing is not None and _still_holds(existing):
                raise IdempotencyItemAlreadyExistsError(old_data_record=existing)
            self._records[data_record.idempotency_key] = data_record

    def _update_record(self, data_record: DataRecord) -> None:
        with self._lock:
            self._records[data_record.idempotency_key] = data_record

    def _delete_record(self, data_record: DataRecord) -> None:
        with self._lock:
            self._records.pop(data_record.idempotency_key, None)


def _still_holds(record: DataRecord) -> bool:
    if record.is_expired:
        return False
    if record.status == STATUS_CONSTANTS["COMPLETED"]:
        return True
    deadline = record.in_progress_expiry_timestamp
    return deadline is None or deadline > int(time.time() * 1000)


class Participant:
    """One step's action and compensation behind the contract, de-duplicated."""

    def __init__(self, action: Work, compensation: Work, *,
                 persistence: BasePersistenceLayer | None = None,
                 expires_after_seconds: int = 24 * 3600) -> None:
        self._work = {Phase.ACTION: action, Phase.COMPENSATION: compensation}
        self._config = IdempotencyConfig(event_key_jmespath="idempotency_key",
                                         expires_after_seconds=expires_after_seconds)
        self._run = idempotent_function(
            self._once, data_keyword_argument="request",
            persistence_store=persistence or InMemoryPersistence(), config=self._config)

    def _once(self, request: dict[str, Any]) -> dict[str, Any]:
        parsed = ParticipantRequest.model_validate(request)
        result = self._work[parsed.phase](parsed)
        if not isinstance(result, dict):
            raise TypeError(f"a participant answers with a JSON object, not {type(result)}")
        return result

    def __call__(self, request: dict[str, Any], context: Any = None) -> dict[str, Any]:
        """The answer to one request; Refuse, TryAgain or ValueError (not this contract).
        An attempt still in progress blocks its redeliveries until the Lambda's remaining time
        (`context`) or, over HTTP, the request's deadline runs out: then one may run again."""
        parsed = parse(request)
        self._config.register_lambda_context(context or _UntilDeadline(parsed.deadline))
        try:
            return dict(self._run(request=parsed.model_dump(mode="json")))
        except IdempotencyAlreadyInProgressError:
            raise TryAgain("this attempt is still being worked on") from None


class _UntilDeadline:
    """What Powertools asks a Lambda context for, from the request's deadline."""

    def __init__(self, deadline: datetime) -> None:
        self._deadline = deadline

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - datetime.now(UTC)).total_seconds() * 1000))


def parse(request: Any) -> ParticipantRequest:
    """The request as the contract's model; ValueError saying what is wrong."""
    if isinstance(request, str | bytes):
        try:
            request = json.loads(request)
        except ValueError as error:
            raise ValueError(f"the request is not JSON: {error}") from None
    if not isinstance(request, dict) or request.get("contract") != CONTRACT:
        raise ValueError(f"not a {CONTRACT} request")
    try:
        return ParticipantRequest.model_validate(request)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "request"
        raise ValueError(f"{where}: {first['msg']}") from None


def handle(participant: Participant, body: Any) -> tuple[int, dict[str, Any]]:
    """The HTTP answer to one request: (status, JSON body)."""
    try:
        return 200, participant(body)
    except ValueError as error:
        return 400, {"error": str(error)}
    except Refuse as refused:
        return 422, {"error": str(refused)}
    except TryAgain as again:
        return 503, {"error": str(again)}


def lambda_handler(action: Work, compensation: Work, *,
                   persistence: BasePersistenceLayer | None = None) -> Callable[[Any, Any],
                                                                                 dict[str, Any]]:
    """A Lambda handler for the step: its return value is the result; a refusal is raised
    as PermanentError (never retried), anything else as itself (retried)."""
    participant = Participant(action, compensation, persistence=persistence)

    def handler(event: Any, context: Any) -> dict[str, Any]:
        try:
            return participant(event, context)
        except (Refuse, ValueError) as refused:
            raise PermanentError(str(refused)) from None

    return handler


def wsgi_app(action: Work, compensation: Work, *,
             persistence: BasePersistenceLayer | None = None) -> Callable[..., Iterable[bytes]]:
    """A WSGI application answering POSTs: 200 with the result, 422 for a refusal (not
    retried), 400 for a request that is not this contract, 503 to be tried again."""
    participant = Participant(action, compensation, persistence=persistence)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") != "POST":
            status, body = 405, {"error": "POST a saga-participant/1 request"}
        else:
            length = int(environ.get("CONTENT_LENGTH") or 0)
            status, body = handle(participant, environ["wsgi.input"].read(length))
        payload = json.dumps(body).encode()
        start_response(f"{status} {_REASONS[status]}", [
            ("Content-Type", "application/json"), ("Content-Length", str(len(payload)))])
        return [payload]

    return app


_REASONS = {200: "OK", 400: "Bad Request", 405: "Method Not Allowed",
            422: "Unprocessable Entity", 503: "Service Unavailable"}
