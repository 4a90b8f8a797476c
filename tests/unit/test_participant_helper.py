"""The participant helper a team writes its service with (the SDK `saga_participant`): the
contract parsed and typed, work de-duplicated on the idempotency key with Powertools' idempotency
utility, answers shaped for a Lambda and for HTTP (WSGI), and the participant's half of the
late-action rule: no commit after the deadline, nothing to undo for an action never received, no
action after its compensation. The typed errors' wire forms: test_sdk_errors.py."""

from __future__ import annotations

import io
import json
import logging
import os
import random
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig
from aws_lambda_powertools.utilities.idempotency.persistence.base import DataRecord
from pydantic import ValidationError
from saga_participant import (
    NOTHING_TO_UNDO,
    PERMANENT_ERROR,
    TRY_AGAIN,
    DeadlinePassed,
    InMemoryPersistence,
    ParticipantRequest,
    PermanentError,
    Refusal,
    Refuse,
    Request,
    TryAgain,
    Work,
    lambda_handler,
    parse,
    wsgi_app,
)
from saga_participant.participant import LEGACY_RECORD_NAMES, RECORD_PREFIX


def _in(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


def _sleep_past(deadline: str) -> None:
    """Returns just after `deadline` (from _in): waits as long as needed and no longer."""
    left = (datetime.fromisoformat(deadline) - datetime.now(UTC)).total_seconds()
    time.sleep(max(left, 0.0) + 0.05)


def _request(phase: str = "action", attempt: int = 1, step: str = "flight",
             **extra: Any) -> dict[str, Any]:
    return {"contract": "saga-participant/1", "execution_id": "ex-1", "saga_id": "trip",
            "saga_version": "1.0.0", "step_id": step, "phase": phase, "attempt": attempt,
            "idempotency_key": f"ex-1:{step}:{phase}", "deadline": _in(3600),
            "input": {"route": "LIS-OPO"}, "results": {"car": {"booking_id": "CAR-7"}},
            **extra}


def _unknown(step: str = "flight", **extra: Any) -> dict[str, Any]:
    """The compensation of an action whose outcome is unknown: it was cut at its deadline."""
    return _request("compensation", step=step, action_result=None,
                    action_error={"type": "States.Timeout", "message": "cut at the deadline"},
                    **extra)


class Airline:
    def __init__(self) -> None:
        self.booked: list[str] = []
        self.cancelled: list[str] = []
        self.cancel_calls = 0
        self.refuse = False
        self.flaky = 0

    def book(self, request: ParticipantRequest) -> dict[str, Any]:
        if self.refuse:
            raise Refusal("NoSeats", "no seats left", {"route": request.input["route"]})
        if self.flaky:
            self.flaky -= 1
            raise TryAgain("the reservation system is busy")
        self.booked.append(request.input["route"])
        return {"ticket": f"T-{len(self.booked)}", "car": request.results["car"]["booking_id"]}

    def cancel(self, request: ParticipantRequest) -> dict[str, Any]:
        self.cancel_calls += 1
        if request.action_result is not None:
            self.cancelled.append(request.action_result["ticket"])
        return {"cancelled": request.action_result is not None}


class Desk:
    """A booking desk that keeps each booking under the action's idempotency key, as a real
    service keeps it in its database, so a compensation told `action_result: null` finds it."""

    def __init__(self, hold_s: float = 0.0, release: threading.Event | None = None,
                 hold_past: str | None = None) -> None:
        self.bookings: dict[str, str] = {}
        self.cancelled: list[str] = []
        self.book_calls = 0
        self.cancel_calls = 0
        self.started = threading.Event()
        self._hold_s = hold_s
        self._hold_past = hold_past
        self._release = release
        self._lock = threading.Lock()

    def book(self, request: ParticipantRequest) -> dict[str, Any]:  # the existing signature
        with self._lock:
            self.book_calls += 1
            booking = f"B-{self.book_calls}"
            self.bookings[request.idempotency_key] = booking
        self.started.set()
        time.sleep(self._hold_s)  # a slow desk: the answer comes after the booking
        if self._hold_past is not None:
            _sleep_past(self._hold_past)
        if self._release is not None:
            assert self._release.wait(10), "the test never released the desk"
        return {"booking_id": booking}

    def cancel(self, request: Request) -> dict[str, Any]:  # the helper's richer request
        with self._lock:
            self.cancel_calls += 1
            booking = (request.action_result or {}).get("booking_id") \
                or self.bookings.get(request.action_key)
            if booking and self.bookings.pop(request.action_key, None):
                self.cancelled.append(booking)
        return {"cancelled": booking}


def _post(app: Any, body: bytes, method: str = "POST") -> tuple[str, dict[str, Any]]:
    answer: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        answer["status"] = status

    chunks = app({"REQUEST_METHOD": method, "CONTENT_LENGTH": str(len(body)),
                  "wsgi.input": io.BytesIO(body)}, start_response)
    return answer["status"], json.loads(b"".join(chunks))


# One front end's answer, the same shape for both: ("ok", result), ("refused", error) for an
# answer never retried, ("retry", error) for one the saga tries again; the error is
# {"type", "message", "details"}, a Lambda's errorMessage parsed or an HTTP body's "error".
Answer = tuple[str, Any]
Front = Callable[[dict[str, Any]], Answer]
FRONTS = ["lambda", "wsgi"]


def _front(kind: str, action: Work, compensation: Work,
           persistence: InMemoryPersistence | None = None) -> Front:
    store = persistence or InMemoryPersistence()
    if kind == "lambda":
        handler = lambda_handler(action, compensation, persistence=store)

        def by_lambda(request: dict[str, Any]) -> Answer:
            try:
                return "ok", handler(request, None)
            except PermanentError as refused:
                assert type(refused).__name__ == PERMANENT_ERROR
                return "refused", json.loads(str(refused))
            except TryAgain as again:
                assert type(again).__name__ == TRY_AGAIN
                return "retry", json.loads(str(again))

        return by_lambda
    app = wsgi_app(action, compensation, persistence=store)

    def by_http(request: dict[str, Any]) -> Answer:
        status, body = _post(app, json.dumps(request).encode())
        kind = {"200": "ok", "422": "refused", "503": "retry"}[status[:3]]
        return kind, body if kind == "ok" else body["error"]

    return by_http


def _settled(answer: Front, request: dict[str, Any], tries: int = 500) -> Answer:
    """Answers the saga's way: a retryable answer is tried again (bounded)."""
    for _ in range(tries):
        result = answer(request)
        if result[0] != "retry":
            return result
        time.sleep(0.001)
    return result


# -- de-duplication and answers -------------------------------------------------------------------

def test_a_redelivered_attempt_is_answered_again_without_running_again() -> None:
    airline = Airline()
    handler = lambda_handler(airline.book, airline.cancel, persistence=InMemoryPersistence())
    first = handler(_request(attempt=1), None)
    again = handler(_request(attempt=2), None)
    assert first == again == {"ticket": "T-1", "car": "CAR-7"}
    assert airline.booked == ["LIS-OPO"]


def test_the_compensation_gets_the_actions_result_typed() -> None:
    airline = Airline()
    handler = lambda_handler(airline.book, airline.cancel, persistence=InMemoryPersistence())
    booked = handler(_request(), None)
    undone = handler(_request("compensation", action_result=booked,
                              reason={"step_id": "hotel", "type": "PermanentError",
                                      "message": "full"}), None)
    assert undone == {"cancelled": True} and airline.cancelled == ["T-1"]
    # An action that reached the participant but whose outcome the saga does not know: the
    # team's compensation is told so (null) and undoes by the action's key.
    desk = Desk()
    undo = lambda_handler(desk.book, desk.cancel)
    undo(_request(), None)
    assert undo(_unknown(), None) == {"cancelled": "B-1"} and desk.bookings == {}


def test_a_lambda_refusal_is_a_permanent_error_and_a_passing_fault_runs_again() -> None:
    airline = Airline()
    handler = lambda_handler(airline.book, airline.cancel)
    airline.flaky = 1
    with pytest.raises(TryAgain):
        handler(_request(), None)
    assert handler(_request(attempt=2), None)["ticket"] == "T-1"  # not cached as a failure
    airline.refuse = True
    with pytest.raises(PermanentError) as refused:
        lambda_handler(airline.book, airline.cancel)(_request(), None)
    assert type(refused.value).__name__ == PERMANENT_ERROR
    assert json.loads(str(refused.value)) == {"type": "NoSeats", "message": "no seats left",
                                              "details": {"route": "LIS-OPO"}}
    with pytest.raises(PermanentError) as wrong:
        handler({"execution_id": "ex-1"}, None)
    assert json.loads(str(wrong.value)) == {
        "type": "NotThisContract", "message": "not a saga-participant/1 request", "details": {}}


def test_the_old_name_refuse_is_a_refusal_of_type_refused() -> None:
    def full(request: Request) -> dict[str, Any]:
        raise Refuse("the flight is full")

    with pytest.raises(PermanentError) as refused:
        lambda_handler(full, Airline().cancel)(_request(), None)
    assert json.loads(str(refused.value)) == {"type": "Refused", "message": "the flight is full",
                                              "details": {}}
    assert isinstance(Refuse("x"), Refusal) and Refuse("x").type == "Refused"
    status, body = _post(wsgi_app(full, Airline().cancel), json.dumps(_request()).encode())
    assert status.startswith("422") and body["error"]["type"] == "Refused"


def test_the_wsgi_app_answers_each_outcome_with_its_status() -> None:
    airline = Airline()
    app = wsgi_app(airline.book, airline.cancel, persistence=InMemoryPersistence())
    assert _post(app, json.dumps(_request()).encode()) == ("200 OK", {"ticket": "T-1",
                                                                       "car": "CAR-7"})
    status, body = _post(app, b"{not json")
    assert status.startswith("400") and body["error"]["type"] == "NotThisContract"
    assert "not JSON" in body["error"]["message"]
    status, body = _post(app, json.dumps({**_request(), "attempt": 0}).encode())
    assert status.startswith("400") and body["error"]["type"] == "NotThisContract"
    assert "attempt" in body["error"]["message"] and body["error"]["details"] == {
        "field": "attempt"}
    airline.refuse = True
    status, body = _post(app, json.dumps(_request(step="other")).encode())
    assert status == "422 Unprocessable Entity" and body == {"error": {
        "type": "NoSeats", "message": "no seats left", "details": {"route": "LIS-OPO"}}}
    airline.refuse, airline.flaky = False, 1
    status, body = _post(app, json.dumps(_request(step="again")).encode())
    assert status == "503 Service Unavailable" and body == {"error": {
        "type": "TryAgain", "message": "the reservation system is busy", "details": {}}}
    status, body = _post(app, b"", method="GET")
    assert status.startswith("405") and body["error"]["type"] == "MethodNotAllowed"


# -- 1. never commit after the deadline ----------------------------------------------------------

@pytest.mark.parametrize("front", FRONTS)
def test_an_action_past_its_deadline_is_not_started_and_is_retryable(front: str) -> None:
    desk = Desk()
    answer = _front(front, desk.book, desk.cancel)
    kind, error = answer(_request(deadline=_in(-1)))
    assert kind == "retry" and error["type"] == "DeadlinePassed"
    assert "deadline" in error["message"] and "has passed" in error["message"]
    assert desk.book_calls == 0
    # It left no record: its compensation has nothing to undo.
    assert answer(_unknown()) == ("ok", NOTHING_TO_UNDO) and desk.cancel_calls == 0


def test_a_late_lambda_action_raises_deadline_passed_a_retryable_error() -> None:
    desk = Desk()
    with pytest.raises(TryAgain) as late:
        lambda_handler(desk.book, desk.cancel)(_request(deadline=_in(-1)), None)
    # Lambda reports it as a TryAgain (retried) whose message says it was the deadline.
    assert type(late.value).__name__ == TRY_AGAIN and not isinstance(late.value, PermanentError)
    assert json.loads(str(late.value))["type"] == "DeadlinePassed"
    assert desk.book_calls == 0


def test_check_deadline_raises_once_the_deadline_has_passed() -> None:
    in_time = parse(_request(deadline=_in(60)))
    assert 55 < in_time.time_left() <= 60
    in_time.check_deadline()  # no error
    late = parse(_request(deadline=_in(-2)))
    assert -3 < late.time_left() < -1
    with pytest.raises(DeadlinePassed, match="has passed"):
        late.check_deadline()
    # A deadline written without a zone is read as UTC, as the contract says.
    naive = datetime.now(UTC).replace(tzinfo=None) + timedelta(seconds=30)
    assert 25 < parse(_request(deadline=naive.isoformat())).time_left() <= 30


@pytest.mark.parametrize("front", FRONTS)
def test_a_handler_that_checks_after_the_deadline_commits_nothing(front: str) -> None:
    committed: list[str] = []
    deadline = _in(0.2)

    def book(request: Request) -> dict[str, Any]:
        _sleep_past(deadline)  # the work outlives the deadline
        request.check_deadline()
        committed.append(request.idempotency_key)
        return {"booking_id": "B-1"}

    answer = _front(front, book, Desk().cancel)
    kind, error = answer(_request(deadline=deadline))
    assert kind == "retry" and "has passed" in error["message"] and committed == []
    assert answer(_unknown()) == ("ok", NOTHING_TO_UNDO)  # the work rolled back: no record


@pytest.mark.parametrize("front", FRONTS)
def test_an_answer_after_the_deadline_is_returned_but_logged_and_still_undone(
        front: str, caplog: pytest.LogCaptureFixture) -> None:
    deadline = _in(0.2)
    desk = Desk(hold_past=deadline)
    answer = _front(front, desk.book, desk.cancel)
    with caplog.at_level(logging.WARNING, logger="saga_participant"):
        assert answer(_request(deadline=deadline)) == ("ok", {"booking_id": "B-1"})
    assert any("after its deadline" in r.getMessage() for r in caplog.records)
    # The orchestrator took the late answer for an unknown outcome: the action was received,
    # so its compensation is the team's.
    assert answer(_unknown()) == ("ok", {"cancelled": "B-1"}) and desk.bookings == {}


# -- 2. a compensation for an action never received ----------------------------------------------

@pytest.mark.parametrize("front", FRONTS)
def test_a_compensation_before_any_action_has_nothing_to_undo(front: str) -> None:
    airline = Airline()
    answer = _front(front, airline.book, airline.cancel)
    assert answer(_unknown()) == ("ok", NOTHING_TO_UNDO)
    assert airline.cancel_calls == 0
    # Redelivered, it answers the same (recorded), still without the team's compensation.
    assert answer(_unknown(attempt=2)) == ("ok", NOTHING_TO_UNDO) and airline.cancel_calls == 0
    # With the action's result in hand, the action did run: the team's compensation decides.
    other = answer(_request("compensation", step="hotel", action_result={"ticket": "T-9"}))
    assert other == ("ok", {"cancelled": True}) and airline.cancelled == ["T-9"]


@pytest.mark.parametrize("front", FRONTS)
def test_a_cut_action_still_running_is_undone_by_the_teams_compensation(front: str) -> None:
    release = threading.Event()
    desk = Desk(release=release)
    answer = _front(front, desk.book, desk.cancel)
    answers: list[Answer] = []
    deadline = _in(0.3)
    action = threading.Thread(target=lambda: answers.append(answer(_request(deadline=deadline))))
    action.start()
    try:
        assert desk.started.wait(5)
        _sleep_past(deadline)  # the booking is what it will be
        assert answer(_unknown()) == ("ok", {"cancelled": "B-1"})
    finally:
        release.set()
        action.join(10)
    assert not action.is_alive() and answers == [("ok", {"booking_id": "B-1"})]
    assert desk.bookings == {} and desk.cancelled == ["B-1"]


@pytest.mark.parametrize("front", FRONTS)
def test_a_compensation_waits_for_an_action_in_progress_before_its_deadline(front: str) -> None:
    release = threading.Event()
    desk = Desk(release=release)
    answer = _front(front, desk.book, desk.cancel)
    action = threading.Thread(target=lambda: answer(_request()))
    action.start()
    try:
        assert desk.started.wait(5)
        kind, error = answer(_unknown())
        assert kind == "retry" and "still being worked on" in error["message"]
        assert error["type"] == "ActionInProgress"
        assert desk.cancel_calls == 0
    finally:
        release.set()
        action.join(10)
    assert not action.is_alive()
    assert answer(_unknown()) == ("ok", {"cancelled": "B-1"}) and desk.bookings == {}


# -- 3. anti-hanging: no action after its compensation -------------------------------------------

@pytest.mark.parametrize("front", FRONTS)
def test_an_action_after_its_compensation_is_refused_for_good(front: str) -> None:
    desk = Desk()
    answer = _front(front, desk.book, desk.cancel)
    assert answer(_unknown()) == ("ok", NOTHING_TO_UNDO)
    kind, error = answer(_request())
    assert kind == "refused" and "already been compensated" in error["message"]
    assert error["type"] == "AlreadyCompensated"
    assert desk.book_calls == 0 and desk.bookings == {}
    # A redelivery of an action that did run, after its compensation, is refused too.
    assert answer(_request(step="hotel"))[0] == "ok"
    assert answer(_unknown(step="hotel")) == ("ok", {"cancelled": "B-1"})
    assert answer(_request(step="hotel", attempt=2))[0] == "refused"
    assert desk.book_calls == 1


class LaggingStore(InMemoryPersistence):
    """A store with a network's latency: each read and write waits up to 2 ms first, so the
    steps of two racing requests interleave in many orders."""

    def __init__(self, seed: int) -> None:
        super().__init__()
        self._random = random.Random(seed)

    def _lag(self) -> None:
        time.sleep(self._random.uniform(0, 0.002))

    def _get_record(self, idempotency_key: str) -> DataRecord:
        self._lag()
        return super()._get_record(idempotency_key)

    def _put_record(self, data_record: DataRecord) -> None:
        self._lag()
        super()._put_record(data_record)

    def _update_record(self, data_record: DataRecord) -> None:
        self._lag()
        super()._update_record(data_record)

    def _delete_record(self, data_record: DataRecord) -> None:
        self._lag()
        super()._delete_record(data_record)


def _race(answer: Front, requests: dict[str, tuple[dict[str, Any], float]]) -> dict[str, Answer]:
    """Each request sent from its own thread, all let go at once (each after its delay), each
    answered the saga's way."""
    barrier = threading.Barrier(len(requests))
    answers: dict[str, Answer] = {}

    def send(name: str, request: dict[str, Any], delay: float) -> None:
        barrier.wait(5)
        time.sleep(delay)
        answers[name] = _settled(answer, request)

    threads = [threading.Thread(target=send, args=(name, request, delay))
               for name, (request, delay) in requests.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert not any(thread.is_alive() for thread in threads)
    return answers


@pytest.mark.parametrize("front", FRONTS)
def test_an_action_racing_its_compensation_runs_and_is_undone_or_never_runs(front: str) -> None:
    outcomes: set[str] = set()
    for i in range(50):
        desk = Desk(hold_s=0.002)
        answer = _front(front, desk.book, desk.cancel, LaggingStore(seed=i))
        # Some rounds give one side a head start (several times a store's lag), so both
        # endings are seen; the rest race.
        delay = {0: (0.0, 0.01), 1: (0.01, 0.0)}.get(i % 3, (0.0, 0.0))
        answers = _race(answer, {"action": (_request(), delay[0]),
                                 "compensation": (_unknown(), delay[1])})
        if answers["action"][0] == "ok":  # the action ran, then its compensation undid it
            assert answers["action"] == ("ok", {"booking_id": "B-1"})
            assert answers["compensation"] == ("ok", {"cancelled": "B-1"})
            assert desk.book_calls == 1 and desk.cancel_calls == 1
            outcomes.add("ran and undone")
        else:  # nothing to undo, and the action refused without running
            assert answers["action"][0] == "refused", answers
            assert answers["compensation"] == ("ok", NOTHING_TO_UNDO)
            assert desk.book_calls == 0 and desk.cancel_calls == 0
            outcomes.add("refused")
        assert desk.bookings == {}  # whatever the participant did is undone
    assert outcomes == {"ran and undone", "refused"}


# -- 4. unknown fields -----------------------------------------------------------------------------

@pytest.mark.parametrize("front", FRONTS)
def test_fields_a_later_contract_adds_are_ignored(front: str) -> None:
    seen: list[Request] = []

    def book(request: Request) -> dict[str, Any]:
        seen.append(request)
        return {"booked": request.input["route"]}

    answer = _front(front, book, Desk().cancel)
    assert answer(_request(priority="high")) == ("ok", {"booked": "LIS-OPO"})
    assert isinstance(seen[0], ParticipantRequest) and "priority" not in seen[0].model_dump()
    nested = _request("compensation", step="hotel", action_result={"booking_id": "B-7"},
                      action_error={"type": "Boom", "message": "m", "code": 7},
                      reason={"step_id": "car", "type": "Full", "severity": "high"})
    assert answer(nested) == ("ok", {"cancelled": "B-7"})


def test_the_services_own_request_stays_strict() -> None:
    with pytest.raises(ValidationError, match="priority"):
        ParticipantRequest.model_validate(_request(priority="high"))
    assert parse(_request(priority="high")).step_id == "flight"


def test_both_front_ends_give_the_same_answers() -> None:
    passed = _in(-1)  # one moment for both, so the messages naming it match

    def script(front: str) -> list[Answer]:
        desk = Desk()
        answer = _front(front, desk.book, desk.cancel)
        return [answer(_request(step="late", deadline=passed)),
                answer(_unknown(step="never")),
                answer(_request(step="never")),
                answer(_request(step="new", future_field=[1])),
                answer(_unknown(step="new"))]

    by_lambda, by_http = script("lambda"), script("wsgi")
    assert by_lambda == by_http
    assert [kind for kind, _ in by_lambda] == ["retry", "ok", "refused", "ok", "ok"]
    assert by_lambda[1][1] == NOTHING_TO_UNDO and by_lambda[4][1] == {"cancelled": "B-1"}


def _written_by_an_earlier_helper(store: InMemoryPersistence, name: str, key: str,
                                  result: dict[str, Any]) -> None:
    """A completed record as an earlier version of the helper left it: Powertools named it
    after the guarded function's module path then."""
    store.configure(IdempotencyConfig(event_key_jmespath="idempotency_key"), function_name=name)
    store.save_success(data={"idempotency_key": key}, result=result)


@pytest.mark.parametrize("name", LEGACY_RECORD_NAMES)
@pytest.mark.parametrize("front", FRONTS)
def test_records_an_earlier_helper_wrote_still_count_after_an_upgrade(front: str,
                                                                      name: str) -> None:
    store = InMemoryPersistence()
    desk = Desk()
    desk.bookings["ex-1:flight:action"] = "B-0"  # booked by the earlier helper
    _written_by_an_earlier_helper(store, name, "ex-1:flight:action", {"booking_id": "B-0"})
    _written_by_an_earlier_helper(store, name, "ex-1:hotel:compensation", NOTHING_TO_UNDO)
    answer = _front(front, desk.book, desk.cancel, persistence=store)
    # The action's outcome reached nobody (action_result null): it is still undone.
    assert answer(_unknown()) == ("ok", {"cancelled": "B-0"})
    assert desk.cancelled == ["B-0"] and desk.bookings == {}
    # A step compensated before the upgrade still refuses its late action.
    kind, error = answer(_request(step="hotel"))
    assert (kind, error["type"]) == ("refused", "AlreadyCompensated")
    assert desk.book_calls == 0
    # New records carry the helper's fixed prefix, not a module path that may move again.
    names = sorted(key.split("#")[0] for key in store._records)
    assert names == [RECORD_PREFIX] + [f"{os.getenv('AWS_LAMBDA_FUNCTION_NAME', 'test-func')}"
                                       f".{name}"] * 2
