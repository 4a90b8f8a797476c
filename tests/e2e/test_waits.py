"""Sagas that wait, end to end on the local stack: callback steps completed by a partner's
webhook through `saga serve` (the secret in the links it was sent), approvals, heartbeats,
waits that time out and are compensated, timers, and hostile completions.

A payment-confirmation saga: `reserve` (a participant, compensated), `confirm` (a callback:
the payment provider answers at once, then confirms later by webhook), `ship` (a participant
that reads the confirmation's result).
"""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chalicelib.domain import event_types
from tests.e2e.conftest import Api
from tests.support.participants import ParticipantServer, Received, serving
from tests.support.served import Served, http, served

# The links' base as the step Lambdas build them (server.public_url unset: the local API).
LOCAL_BASE = "http://127.0.0.1:8000"


@pytest.fixture(scope="module")
def webhooks() -> Iterator[Served]:
    """`saga serve` on its own port: where partners send their webhooks."""
    with served({}) as app:
        yield app


class Partner:
    """A payment provider: answers the call at once (or when told), remembers the callback
    links it was sent, and calls them back as the test says, over HTTP."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.links: dict[str, dict[str, Any]] = {}  # execution id -> callback object
        self.compensations: list[dict[str, Any]] = []
        self.shipped: list[dict[str, Any]] = []
        self.hold = threading.Event()
        self.hold.set()
        self.arrived = threading.Event()

    def respond(self, request: Received) -> tuple[int, Any]:
        body = request.body
        if request.path == "/confirm":
            self.links[body["execution_id"]] = body["callback"]
            self.arrived.set()
            self.hold.wait(20)
            return 200, {"intent": f"pi-{body['execution_id'][:8]}", "accepted": True}
        if request.path == "/undo-confirm":
            self.compensations.append(body)
            return 200, {"cancelled": True}
        if request.path == "/ship":
            self.shipped.append(body)
            return 200, {"tracking": "T-1"}
        return 200, {"ok": True}

    def call(self, execution_id: str, action: str, body: Any = None, *,
             secret: str | None = None) -> tuple[int, Any]:
        """The partner's webhook: the link it was sent, pointed at the test's API."""
        link = self.links[execution_id][f"{action}_url"]
        assert link.startswith(LOCAL_BASE)  # server.public_url's default
        url = link.replace(LOCAL_BASE, self.base, 1)
        if secret is not None:
            url = url.split("?", 1)[0] + "?secret=" + urllib.parse.quote(secret)
        answer = http("POST", url, None if body is None else json.dumps(
            body).encode())
        return answer.status, answer.json()


def _saga(partner: ParticipantServer, *, timeout: str = "20s",
          heartbeat: str | None = None) -> dict[str, Any]:
    confirm: dict[str, Any] = {
        "id": "confirm", "name": "Confirm payment", "order": 2, "kind": "callback",
        "description": "The provider confirms by webhook", "timeout": timeout,
        "call_timeout": "10s", "action": f"{partner.url}/confirm",
        "compensation": f"{partner.url}/undo-confirm"}
    if heartbeat:
        confirm["heartbeat"] = heartbeat
    return {
        "id": f"pay-confirm-{uuid.uuid4().hex[:8]}", "name": "Payment confirmation",
        "version": "1.0.0", "description": "Reserve, wait for the provider, ship",
        "steps": [
            {"id": "reserve", "name": "Reserve", "description": "Reserve the goods",
             "order": 1, "action": f"{partner.url}/reserve",
             "compensation": f"{partner.url}/release", "max_retries": 0, "timeout": "10s"},
            confirm,
            {"id": "ship", "name": "Ship", "description": "Ship what was paid for",
             "order": 3, "action": f"{partner.url}/ship", "compensation": f"{partner.url}/x",
             "max_retries": 0, "timeout": "10s"}]}


def _wait_for(predicate: Any, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "the awaited state never came"
        time.sleep(0.1)


def _step(execution: dict[str, Any], step_id: str) -> dict[str, Any]:
    return next(s for s in execution["steps"] if s["step_id"] == step_id)


def _events(execution_id: str) -> list[dict[str, Any]]:
    from chalicelib.roots import runtime

    with runtime.container().connector.transaction() as cur:
        cur.execute("SELECT envelope FROM outbox WHERE partition_key = %s ORDER BY sequence",
                    (execution_id,))
        return [json.loads(row["envelope"]) for row in cur.fetchall()]


def test_a_partner_confirms_by_webhook_and_the_next_step_sees_its_result(
        api: Api, webhooks: Served) -> None:
    partner = Partner(webhooks.base)
    with serving(partner.respond) as server:
        saga = api.create_saga(_saga(server))
        started = api.execute(saga["id"], input={"order": "o-1"})
        execution_id = started["id"]
        _wait_for(lambda: execution_id in partner.links)
        waiting = api.wait(execution_id, until=lambda e: _step(e, "confirm")["status"]
                           == "WAITING", timeout_s=30)
        assert _step(waiting, "confirm")["waiting"]["callback_id"] == \
            partner.links[execution_id]["id"]
        time.sleep(3)  # the provider confirms minutes later; here 3 s
        status, body = partner.call(execution_id, "succeed",
                                    {"result": {"payment_id": "pay-9", "confirmed": True}})
        assert status == 200, body
        assert body["sent_to_engine"] is True and body["step_status"] == "SUCCEEDED"
        done = api.wait(execution_id, timeout_s=40)
    assert done["status"] == "COMPLETED", done
    confirm = _step(done, "confirm")
    assert confirm["result"] == {"payment_id": "pay-9", "confirmed": True}
    assert confirm["waiting"]["completed_by"] == "callback-secret"
    assert partner.shipped[0]["results"]["confirm"] == {"payment_id": "pay-9",
                                                        "confirmed": True}
    types = [event["type"] for event in _events(execution_id)]
    assert types.index(event_types.STEP_WAITING) < types.index(
        event_types.STEP_CALLBACK_RECEIVED) < types.index(event_types.SAGA_COMPLETED)
    # Completed once: the same link again changes nothing.
    status, body = partner.call(execution_id, "succeed", {"result": {}})
    assert status == 409 and "already completed" in body["error"]["message"]


def test_a_webhook_before_the_participants_own_answer_is_accepted(
        api: Api, webhooks: Served) -> None:
    partner = Partner(webhooks.base)
    partner.hold.clear()  # the call answers only after the webhook was taken
    with serving(partner.respond) as server:
        saga = api.create_saga(_saga(server))
        execution_id = api.execute(saga["id"], input={})["id"]
        assert partner.arrived.wait(30)
        status, body = partner.call(execution_id, "succeed", {"result": {"early": True}})
        partner.hold.set()
        assert status == 200, body
        assert body["sent_to_engine"] is False  # the call was out: its Lambda ends the Task
        done = api.wait(execution_id, timeout_s=40)
    assert done["status"] == "COMPLETED", done
    assert _step(done, "confirm")["result"] == {"early": True}


def test_a_callback_that_never_comes_is_compensated_at_the_timeout(
        api: Api, webhooks: Served) -> None:
    partner = Partner(webhooks.base)
    with serving(partner.respond) as server:
        saga = api.create_saga(_saga(server, timeout="3s"))
        execution_id = api.execute(saga["id"], input={})["id"]
        done = api.wait(execution_id, timeout_s=60)
        assert done["status"] == "COMPENSATED", done
        # Its compensation ran with what the call itself answered (the intent to cancel).
        undo = next(c for c in partner.compensations if c["execution_id"] == execution_id)
        assert undo["action_result"] == {"intent": f"pi-{execution_id[:8]}", "accepted": True}
        assert _step(done, "reserve")["status"] == "COMPENSATED"
        assert not partner.shipped
        # A webhook after the wait ended changes nothing.
        status, body = partner.call(execution_id, "succeed", {"result": {"late": True}})
    assert status == 409 and "wait ended" in body["error"]["message"], body
    after = api.wait(execution_id, timeout_s=5)
    assert _step(after, "confirm")["status"] == "COMPENSATED"


def test_heartbeats_keep_a_wait_alive_past_its_heartbeat_interval(
        api: Api, webhooks: Served) -> None:
    partner = Partner(webhooks.base)
    with serving(partner.respond) as server:
        saga = api.create_saga(_saga(server, timeout="30s", heartbeat="3s"))
        execution_id = api.execute(saga["id"], input={})["id"]
        api.wait(execution_id, until=lambda e: _step(e, "confirm")["status"] == "WAITING",
                 timeout_s=30)
        for _ in range(5):  # 7.5 s of heartbeats, each within the 3 s interval
            time.sleep(1.5)
            status, body = partner.call(execution_id, "heartbeat")
            assert status == 200, body
        status, body = partner.call(execution_id, "succeed", {"result": {"late_but_alive": 1}})
        assert status == 200, body
        done = api.wait(execution_id, timeout_s=40)
    assert done["status"] == "COMPLETED", done
    assert _step(done, "confirm")["waiting"]["heartbeat_at"] is not None


def _timer_saga(partner: ParticipantServer, timer: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": f"timer-{uuid.uuid4().hex[:8]}", "name": "Held reservation",
        "version": "1.0.0", "description": "Reserve, hold, then ship",
        "steps": [
            {"id": "reserve", "name": "Reserve", "description": "Reserve the goods",
             "order": 1, "action": f"{partner.url}/reserve",
             "compensation": f"{partner.url}/release", "max_retries": 0, "timeout": "10s"},
            {"id": "hold", "name": "Hold", "description": "Hold the reservation a while",
             "order": 2, "kind": "wait", **timer},
            {"id": "ship", "name": "Ship", "description": "Ship what was held",
             "order": 3, "action": f"{partner.url}/ship", "compensation": f"{partner.url}/x",
             "max_retries": 0, "timeout": "10s"}]}


def _started(execution: dict[str, Any], step_id: str) -> datetime:
    return datetime.fromisoformat(_step(execution, step_id)["started_at"])


def test_timers_delay_the_next_step_by_a_duration_or_until_a_timestamp(api: Api) -> None:
    partner = Partner("")
    with serving(partner.respond) as server:
        by_duration = api.create_saga(_timer_saga(server, {"wait": "2s"}))
        until = api.create_saga(_timer_saga(server, {"until": "$.input.ship_after"}))
        ship_after = (datetime.now(UTC) + timedelta(seconds=4)).replace(microsecond=0)
        first = api.execute(by_duration["id"], input={})["id"]
        second = api.execute(until["id"], input={"ship_after": ship_after.isoformat()})["id"]
        waited, held = api.wait(first, timeout_s=60), api.wait(second, timeout_s=60)
    assert waited["status"] == held["status"] == "COMPLETED", (waited, held)
    hold = _step(waited, "hold")
    since = datetime.fromisoformat(hold["waiting"]["since"])
    assert hold["waiting"]["completed_by"] == "timer"
    assert _started(waited, "ship") - since >= timedelta(seconds=2)
    assert datetime.fromisoformat(_step(held, "hold")["waiting"]["until"]) == ship_after
    assert _started(held, "ship") >= ship_after


def test_hostile_completions_are_refused_and_change_nothing(
        api: Api, webhooks: Served) -> None:
    partner = Partner(webhooks.base)
    with serving(partner.respond) as server:
        saga = api.create_saga(_saga(server))
        first = api.execute(saga["id"], input={})["id"]
        second = api.execute(saga["id"], input={})["id"]
        _wait_for(lambda: first in partner.links and second in partner.links)
        for execution_id in (first, second):
            api.wait(execution_id, until=lambda e: _step(e, "confirm")["status"] == "WAITING",
                     timeout_s=30)
        base = f"{webhooks.base}/api/v1/saga/callbacks"
        unknown = http("POST", f"{base}/cb_{'x' * 32}/succeed?secret=abc", b"{}")
        assert unknown.status == 403  # a secret that completes nothing: no hint either way
        missing = http("POST", f"{base}/cb_{'x' * 32}/succeed", b"{}")
        assert missing.status == 404 and missing.json()["error"]["code"] == "not_found"
        wrong = http("POST", f"{base}/{partner.links[first]['id']}/succeed?secret=guess", b"{}")
        assert wrong.status == 403 and "secret" in wrong.json()["error"]["message"]
        # Another execution's secret completes nothing here.
        other_secret = urllib.parse.parse_qs(urllib.parse.urlsplit(
            partner.links[second]["succeed_url"]).query)["secret"][0]
        status, _ = partner.call(first, "succeed", {"result": {}}, secret=other_secret)
        assert status == 403
        bad = http("POST", partner.links[first]["fail_url"].replace(LOCAL_BASE, webhooks.base),
                   b'{"error": "", "reason": 3}')
        assert bad.status == 400 and "Traceback" not in bad.raw.decode()
        huge_id = http("POST", f"{base}/{'c' * 300}/succeed", b"{}")
        assert huge_id.status in (400, 404)

        # 8 webhooks at once on one callback: completed exactly once.
        def succeed(n: int) -> int:
            return partner.call(first, "succeed", {"result": {"n": n}})[0]

        with ThreadPoolExecutor(8) as pool:
            statuses = sorted(pool.map(succeed, range(8)))
        assert statuses == [200] + [409] * 7, statuses
        done = api.wait(first, timeout_s=40)
        received = [e for e in _events(first) if e["type"] == event_types.STEP_CALLBACK_RECEIVED]
        assert len(received) == 1 and done["status"] == "COMPLETED"
        # The other execution is still waiting, untouched; failing it compensates the rest.
        status, body = partner.call(second, "fail", {"error": "PaymentDeclined",
                                                     "reason": "card declined"})
        assert status == 200, body
        failed = api.wait(second, timeout_s=40)
    assert failed["status"] == "COMPENSATED", failed
    confirm = _step(failed, "confirm")
    assert confirm["status"] == "FAILED" and confirm["error"]["type"] == "PaymentDeclined"
    # A failure for good did nothing: its own compensation never ran, the reservation's did.
    assert all(c["execution_id"] != second or c["step_id"] != "confirm"
               for c in partner.compensations)


def _with_deadline(saga: dict[str, Any], deadline: str, *, pivot: bool) -> dict[str, Any]:
    saga = {**saga, "deadline": deadline}
    if pivot:  # reserve becomes the point of no return, confirm an approval after it
        saga["steps"] = [{**saga["steps"][0], "kind": "pivot"},
                         {"id": "approve", "name": "Approve", "order": 2, "kind": "callback",
                          "description": "A person approves the shipment", "timeout": "60s"},
                         {**{k: v for k, v in saga["steps"][2].items()
                             if k not in ("compensation", "max_retries")},
                          "kind": "retriable"}]
    return saga


def test_a_saga_deadline_compensates_while_a_later_step_waits_and_parks_past_the_pivot(
        api: Api, webhooks: Served) -> None:
    partner = Partner(webhooks.base)
    with serving(partner.respond) as server:
        # Both wait 60 s for their callback; the saga's deadline is 8 s.
        undone = api.create_saga(_with_deadline(_saga(server, timeout="60s"), "8s",
                                                pivot=False))
        parked = api.create_saga(_with_deadline(_saga(server, timeout="60s"), "8s",
                                                pivot=True))
        assert undone["deadline"] == "8s"
        compensate_id = api.execute(undone["id"], input={})["id"]
        park_id = api.execute(parked["id"], input={})["id"]
        waiting = api.wait(compensate_id, timeout_s=30,
                           until=lambda e: _step(e, "confirm")["status"] == "WAITING")
        assert waiting["status"] == "RUNNING"
        done = api.wait(compensate_id, timeout_s=45)
        held = api.wait(park_id, timeout_s=45)
        # The callback link the partner holds is refused from now on.
        status, body = partner.call(compensate_id, "succeed", {"result": {"late": True}})
    assert done["status"] == "COMPENSATED", done
    assert done["error"]["type"] == "Deadline" and done["error"]["step_id"] == "confirm"
    started, ended = (datetime.fromisoformat(done[key]) for key in ("started_at", "ended_at"))
    # At the deadline, while confirm still had 50 s to wait: not at its own timeout.
    assert timedelta(seconds=8) <= ended - started < timedelta(seconds=40), done
    assert [_step(done, s)["status"] for s in ("reserve", "confirm", "ship")] == [
        "COMPENSATED", "COMPENSATED", "PENDING"]
    # The abandoned step was compensated with what its call had answered.
    undo = next(c for c in partner.compensations if c["execution_id"] == compensate_id)
    assert undo["action_result"] == {"intent": f"pi-{compensate_id[:8]}", "accepted": True}
    assert status == 409, body
    events = _events(compensate_id)
    compensating = next(e for e in events if e["type"] == event_types.COMPENSATION_STARTED)
    assert compensating["data"]["reason"] == "deadline"
    unknown = next(e for e in events if e["type"] == event_types.STEP_OUTCOME_UNKNOWN)
    assert (unknown["data"]["step_id"], unknown["data"]["error"]["type"]) == (
        "confirm", "Deadline")
    # Past the pivot nothing is undone: the execution parks for an operator.
    assert held["status"] == "PARKED", held
    assert held["error"]["type"] == "Deadline" and held["error"]["step_id"] == "approve"
    assert _step(held, "reserve")["status"] == "SUCCEEDED"
    assert not [c for c in partner.compensations if c["execution_id"] == park_id]
    parked_event = next(e for e in _events(park_id) if e["type"] == event_types.SAGA_PARKED)
    assert parked_event["data"]["reason"] == "deadline"
