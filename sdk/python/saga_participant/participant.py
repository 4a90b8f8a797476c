"""The helper a team writes its participant with: the contract parsed and typed, deliveries
de-duplicated, answers shaped for HTTP and for Lambda, and the participant's half of the
late-action rule.

The service receives the saga-participant/1 request (`saga_participant.contract`), does its
work, and answers with a JSON object, its result. This module does the rest:

- parses the request leniently (fields a later version of the contract adds are ignored) and
  gives the handler a typed `Request` (a `ParticipantRequest`: `input`, `results`, and for a
  compensation `action_result`, `action_error`, `reason`; plus `action_key`, `time_left()` and
  `check_deadline()`);
- de-duplicates deliveries on the request's idempotency key with Powertools' idempotency
  utility: a retried or redelivered attempt whose first one finished gets the same answer
  without running again. The persistence layer is the team's choice: Powertools'
  `DynamoDBPersistenceLayer` on AWS, or `InMemoryPersistence` here for one process;
- shapes the answer: a `Refusal` (the request cannot succeed: a declined card, no seats) is not
  retried, a `TryAgain` (a passing fault) is, anything else is retried too (see
  `saga_participant.errors` for the wire forms);
- does the participant's half of the late-action rule (below).

The late-action rule. The request's `deadline` is when the orchestrator cuts the call; an
action whose outcome is then unknown is compensated anyway, with `action_result: null`. So
that "whatever the action did is undone" holds, the helper:

1. never starts an action after its deadline (`DeadlinePassed`, a `TryAgain`: the saga retries
   or compensates, so a refusal would be wrong), and the handler calls
   `request.check_deadline()` just before committing (it raises `DeadlinePassed`, and the
   handler's own transaction must roll back as it propagates). A handler that returns after
   the deadline anyway still gets its result answered and recorded, but it is not an answer in
   time: the orchestrator has stopped listening, treats the outcome as unknown and compensates
   (the helper logs a warning);
2. answers a compensation whose action never reached this participant (no record of the action,
   and `action_result` null) with `NOTHING_TO_UNDO`, without calling the team's compensation;
3. refuses for good (a `Refusal` of type `AlreadyCompensated`) an action that arrives after its
   compensation was handled (anti-hanging, in Seata's words), without calling the handler.

How, with any Powertools persistence layer and no record of its own: the facts are Powertools'
own records, found by key (`<execution_id>:<step_id>:action` and `...:compensation`).
Powertools writes an attempt's record (conditionally, in progress) before the handler runs,
keeps it when the handler answers and deletes it when the handler raises. An action looks for
its compensation's record after its own is written; a compensation looks for its action's
record after its own is written. With a store whose reads see completed writes (DynamoDB:
Powertools reads consistently), at least one of the two sees the other, so a racing pair ends
either "action ran, then its compensation undid it" or "nothing to undo, action refused":

- a compensation that finds the action in progress before its deadline answers `TryAgain`
  (undo once it has ended); after its deadline the action must not commit any more (1), so
  the team's compensation runs even if the handler has not returned;
- an action that raises leaves no record, so it must leave nothing behind (its transaction
  rolls back): its compensation will answer nothing to undo;
- the facts last as long as the records (`expires_after_seconds`, a day by default), and a
  compensation that fails leaves no record either (it is retried). With Powertools'
  `POWERTOOLS_IDEMPOTENCY_DISABLED` there are no records: every compensation calls the team's.

Two front ends: `lambda_handler(...)` for a Lambda participant, and `wsgi_app(...)` for an HTTP
one (any WSGI server, or a framework that mounts WSGI apps); `handle(...)` is the plain core.

    from saga_participant import Refusal, lambda_handler

    def book(request):            # the action
        if not seats_left(request.input["flight"]):
            raise Refusal("NoSeats", "the flight is full", {"flight": request.input["flight"]})
        with db.transaction():
            seat = reserve_seat(request.input["flight"], key=request.idempotency_key)
            request.check_deadline()  # raises (and rolls back) once the call is cut
        return {"booking_id": seat}

    def cancel(request):          # the compensation
        # null when the booking's outcome is unknown (it was cut): find it by the action's key
        booking = request.action_result or find_booking(key=request.action_key)
        if booking:
            release_seat(booking["booking_id"])
        return {"cancelled": bool(booking)}

    handler = lambda_handler(book, cancel, persistence=DynamoDBPersistenceLayer("idem"))
"""

from __future__ import annotations

import copy
import json
import logging
import os
import threading
import time
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any, Callable, Optional

from aws_lambda_powertools.shared.constants import IDEMPOTENCY_DISABLED_ENV
from aws_lambda_powertools.shared.functions import strtobool
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
from pydantic import ConfigDict, ValidationError

from saga_participant.contract import CONTRACT, ErrorInfo, ParticipantRequest, Phase, Reason
from saga_participant.errors import (
    DeadlinePassed,
    LambdaTryAgain,
    NotThisContract,
    ParticipantError,
    PermanentError,
    Refusal,
    TryAgain,
)

logger = logging.getLogger("saga_participant")

# What a compensation answers, without calling the team's, when its action never came.
NOTHING_TO_UNDO: dict[str, Any] = {"compensated": False,
                                   "reason": "nothing to undo: the action was never received"}


# The orchestrator builds requests strictly (extra="forbid"); a participant reads them
# leniently, so a field a later version of the contract adds, at any depth, does not break it.
class _LenientErrorInfo(ErrorInfo):
    model_config = ConfigDict(extra="ignore", frozen=True)


class _LenientReason(Reason):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Request(ParticipantRequest):
    """The request as the handler gets it: a `ParticipantRequest` (so handlers typed with it
    keep working) that ignores unknown fields and knows its deadline."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    # Optional, not `X | None`: pydantic evaluates these on Python 3.9 too.
    action_error: Optional[_LenientErrorInfo] = None
    reason: Optional[_LenientReason] = None

    @property
    def action_key(self) -> str:
        """The idempotency key of this step's action: what a compensation told
        `action_result: null` finds the action's work by."""
        return f"{self.execution_id}:{self.step_id}:{Phase.ACTION}"

    def time_left(self) -> float:
        """Seconds until the deadline; negative once it has passed."""
        return (_utc(self.deadline) - datetime.now(timezone.utc)).total_seconds()

    def check_deadline(self) -> None:
        """Call just before committing: raises DeadlinePassed once the deadline has passed,
        so the work rolls back instead of being committed after the orchestrator cut the call."""
        if self.time_left() <= 0:
            raise DeadlinePassed(
                f"the deadline {self.deadline.isoformat()} has passed: the orchestrator has cut "
                f"this {self.phase}, so nothing may be committed; it will be retried or undone",
                details={"deadline": self.deadline.isoformat()})


# Powertools names a record after the function it guards (module and qualified name), unless
# given a prefix: a fixed one keeps the records found when this module moves. Records written by
# earlier versions of the helper, under those names, are still read by the late-action checks.
RECORD_PREFIX = "saga-participant"
LEGACY_RECORD_NAMES = ("saga_participant.participant.Participant._once",
                       "chalicelib.participant.Participant._once")

# An action or a compensation: the request in, the result (a JSON object) out.
Work = Callable[[Request], dict[str, Any]]


def _utc(moment: datetime) -> datetime:
    # The contract's deadline is UTC; a value without a zone is read as such, not as local time.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


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
    return _in_progress(record)


def _in_progress(record: DataRecord) -> bool:
    """An attempt still being worked on before its in-progress expiry (its deadline): once that
    has passed it was cut, or its process died."""
    if record.status != STATUS_CONSTANTS["INPROGRESS"]:
        return False
    expiry = record.in_progress_expiry_timestamp
    return expiry is None or expiry > int(time.time() * 1000)


def _records_kept() -> bool:
    # Powertools' development switch skips every record: then nothing proves an action never came.
    return not strtobool(os.getenv(IDEMPOTENCY_DISABLED_ENV, "false"))


class Participant:
    """One step's action and compensation behind the contract, de-duplicated, with the
    participant's half of the late-action rule (see the module's docstring)."""

    def __init__(self, action: Work, compensation: Work, *,
                 persistence: Optional[BasePersistenceLayer] = None,
                 expires_after_seconds: int = 24 * 3600) -> None:
        self._work = {Phase.ACTION: action, Phase.COMPENSATION: compensation}
        self._store = persistence or InMemoryPersistence()
        self._expires_after_seconds = expires_after_seconds

    def _config(self, context: Any = None) -> IdempotencyConfig:
        # One per call: Powertools keeps the (Lambda) context on the config, and concurrent
        # requests (an HTTP service's threads) must not share one.
        config = IdempotencyConfig(event_key_jmespath="idempotency_key",
                                   expires_after_seconds=self._expires_after_seconds)
        if context is not None:
            config.register_lambda_context(context)
        return config

    def __call__(self, request: Any, context: Any = None) -> dict[str, Any]:
        """The answer to one request (a dict, or its JSON text); raises a Refusal, a TryAgain
        (DeadlinePassed among them) or NotThisContract (a Refusal and a ValueError). An attempt
        in progress blocks its redeliveries until its deadline (or a Lambda's remaining time, if
        shorter) runs out: then one may run again. An answer after the deadline is returned and
        recorded, but the orchestrator treats it as unknown."""
        parsed = parse(request)
        if parsed.phase == Phase.ACTION:
            # Also before a finished action's answer is replayed: after its compensation an
            # action gets no answer but a refusal, and a late one does not start.
            self._refuse_if_compensated(parsed)
            parsed.check_deadline()
        run = idempotent_function(self._once, data_keyword_argument="request",
                                  persistence_store=self._store, key_prefix=RECORD_PREFIX,
                                  config=self._config(_UntilDeadline(parsed.deadline, context)))
        try:
            return dict(run(request=parsed.model_dump(mode="json")))
        except IdempotencyAlreadyInProgressError:
            raise TryAgain("this attempt is still being worked on", "AttemptInProgress") \
                from None

    def _once(self, request: dict[str, Any]) -> dict[str, Any]:
        # Runs with this attempt's record written (in progress): the checks below are the ones
        # the race between an action and its compensation turns on.
        parsed = Request.model_validate(request)
        if parsed.phase == Phase.ACTION:
            self._refuse_if_compensated(parsed)
            parsed.check_deadline()
        elif self._nothing_to_undo(parsed):
            return dict(NOTHING_TO_UNDO)
        result = self._work[parsed.phase](parsed)
        if not isinstance(result, dict):
            raise TypeError(f"a participant answers with a JSON object, not {type(result)}")
        if parsed.time_left() < 0:
            logger.warning("%s %s answered %.3f s after its deadline: the orchestrator treats "
                           "its outcome as unknown", parsed.idempotency_key, parsed.phase,
                           -parsed.time_left())
        return result

    def _refuse_if_compensated(self, request: Request) -> None:
        if _records_kept() and self._record(request, Phase.COMPENSATION) is not None:
            raise Refusal("AlreadyCompensated",
                          f"step {request.step_id} of execution {request.execution_id} has "
                          "already been compensated: an action arriving after its compensation "
                          "is refused, never run",
                          {"execution_id": request.execution_id, "step_id": request.step_id})

    def _nothing_to_undo(self, request: Request) -> bool:
        """Whether this compensation's action never reached this participant; TryAgain while
        that action is still being worked on before its deadline."""
        if not _records_kept():
            return False
        action = self._record(request, Phase.ACTION)
        if action is None:
            # An action_result means the action ran, whatever became of its record.
            return request.action_result is None
        if _in_progress(action):
            raise TryAgain("this step's action is still being worked on: it can be undone "
                           "once it has answered or its deadline has passed", "ActionInProgress")
        return False

    def _record(self, request: Request, phase: Phase) -> Optional[DataRecord]:
        """Powertools' record of one phase of this step, if there is one: under the helper's
        prefix, else under a name an earlier version of the helper wrote it with (so an action
        recorded before an upgrade is still undone, and still refused after its compensation)."""
        key = {"idempotency_key": f"{request.execution_id}:{request.step_id}:{phase}"}
        self._store.configure(self._config(), key_prefix=RECORD_PREFIX)
        try:
            return self._store.get_record(key)
        except IdempotencyItemNotFoundError:
            pass
        for name in LEGACY_RECORD_NAMES:
            # A copy: the shared store's name is the one concurrent requests write under.
            legacy = copy.copy(self._store)
            legacy.configure(self._config(), function_name=name)
            try:
                return legacy.get_record(key)
            except IdempotencyItemNotFoundError:
                continue
        return None


class _UntilDeadline:
    """What Powertools asks a Lambda context for: the time to the request's deadline, or to the
    Lambda's own end if that comes first. An attempt's in-progress record holds until then."""

    def __init__(self, deadline: datetime, context: Any = None) -> None:
        self._deadline = _utc(deadline)
        self._context = context

    def get_remaining_time_in_millis(self) -> int:
        left = int((self._deadline - datetime.now(timezone.utc)).total_seconds() * 1000)
        if self._context is not None:
            left = min(left, int(self._context.get_remaining_time_in_millis()))
        return max(0, left)


def parse(request: Any) -> Request:
    """The request as the participant's model (unknown fields ignored); NotThisContract (a
    ValueError) saying what is wrong."""
    if isinstance(request, (str, bytes, bytearray)):
        try:
            request = json.loads(request)
        except ValueError as error:
            raise NotThisContract(f"the request is not JSON: {error}") from None
    if not isinstance(request, dict) or request.get("contract") != CONTRACT:
        raise NotThisContract(f"not a {CONTRACT} request")
    try:
        return Request.model_validate(request)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "request"
        raise NotThisContract(f"{where}: {first['msg']}", {"field": where}) from None


def error_body(error: ParticipantError) -> dict[str, Any]:
    """An HTTP answer's body for an error: `{"error": {"type", "message", "details"}}`."""
    return {"error": error.to_dict()}


def handle(participant: Participant, body: Any) -> tuple[int, dict[str, Any]]:
    """The HTTP answer to one request: (status, JSON body). 200 with the result; 400 for a
    request that is not this contract, 422 for a refusal (not retried), 503 to be tried again,
    each with `{"error": {"type", "message", "details"}}`. Any other exception propagates (the
    server answers 500: retried)."""
    try:
        return 200, participant(body)
    except NotThisContract as wrong:
        return 400, error_body(wrong)
    except Refusal as refused:
        return 422, error_body(refused)
    except TryAgain as again:
        return 503, error_body(again)


def lambda_handler(action: Work, compensation: Work, *,
                   persistence: Optional[BasePersistenceLayer] = None,
                   ) -> Callable[[Any, Any], dict[str, Any]]:
    """A Lambda handler for the step: its return value is the result. A refusal (an action
    after its compensation and a request that is not this contract among them) fails the
    function with a `PermanentError` (never retried), a passing fault (DeadlinePassed too) with
    a `TryAgain`; either's message is the JSON text of `{"type", "message", "details"}`.
    Anything else is raised as itself (retried)."""
    participant = Participant(action, compensation, persistence=persistence)

    def handler(event: Any, context: Any) -> dict[str, Any]:
        try:
            return participant(event, context)
        except Refusal as refused:
            raise PermanentError.of(refused) from None
        except TryAgain as again:
            raise LambdaTryAgain.of(again) from None

    return handler


WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def wsgi_app(action: Work, compensation: Work, *,
             persistence: Optional[BasePersistenceLayer] = None) -> WsgiApp:
    """A WSGI application answering POSTs (on any path) as `handle` does; 405 to any other
    method."""
    participant = Participant(action, compensation, persistence=persistence)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") != "POST":
            status, body = 405, {"error": {"type": "MethodNotAllowed",
                                           "message": f"POST a {CONTRACT} request",
                                           "details": {}}}
        else:
            length = int(environ.get("CONTENT_LENGTH") or 0)
            status, body = handle(participant, environ["wsgi.input"].read(length))
        payload = json.dumps(body).encode()
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))]
        if status == 405:
            headers.append(("Allow", "POST"))
        start_response(f"{status} {_REASONS[status]}", headers)
        return [payload]

    return app


_REASONS = {200: "OK", 400: "Bad Request", 405: "Method Not Allowed",
            422: "Unprocessable Entity", 503: "Service Unavailable"}
