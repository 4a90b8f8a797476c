"""Steps that branch and fan out reach WebSocket subscribers as every step event does: the
push has no list of event types (it sends what the projector applied, to the event's topics),
so what is checked here is that the projector applies saga.step.skipped, saga.step.fanned_out
and an item's events, and that each is sent to its execution's, its saga's and everything's
subscribers, and to no one else."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from chalicelib.adapters.push.pusher import Pusher
from chalicelib.adapters.push.subscriptions import ALL, topics_of
from chalicelib.domain import event_types, events
from chalicelib.domain.fanout import item_run_id
from chalicelib.domain.read_documents import APPLIED

T = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


class _Registry:
    """Subscriptions in memory: connection id -> topics."""

    def __init__(self, topics: dict[str, set[str]]) -> None:
        self.topics = topics

    def listeners(self, topics: Iterable[str]) -> list[str]:
        return [c for c, mine in self.topics.items() if mine & set(topics)]

    def disconnect(self, connection_id: str) -> None:
        self.topics.pop(connection_id, None)


class _Gateway:
    def __init__(self) -> None:
        self.posts: list[tuple[str, dict[str, Any]]] = []

    def post_to_connection(self, ConnectionId: str, Data: bytes) -> None:  # boto3's names
        self.posts.append((ConnectionId, json.loads(Data)))


def _branch_events() -> list[dict[str, Any]]:
    """A skip, a fan-out of two items, an item's attempt, the fan-out's end: as enveloped."""
    item = item_run_id("reserve", 1)
    attempt = events.StepAttempt(saga_id="order", step_id=item, attempt=1, phase="action",
                                 started=T, ended=T)
    built = [
        events.step_skipped(saga_id="order", step_id="ship", at=T, step={"status": "SKIPPED"},
                            condition={"when": '$.input.kind != "digital"', "value": False,
                                       "operands": {"$.input.kind": "digital"}}),
        events.step_fanned_out(saga_id="order", step_id="reserve", at=T,
                               plan={"items": 2, "max_concurrency": 2, "tolerated": 0},
                               step={"status": "RUNNING"}),
        events.step_succeeded(attempt, result={"r": 1}, step={
            "status": "SUCCEEDED", "item": {"of": "reserve", "index": 1}}),
        events.step_failed(attempt, error={"type": "OutOfStock", "message": "none"},
                           outcome="failed", step={"status": "FAILED",
                                                   "item": {"of": "reserve", "index": 1}}),
    ]
    return [events.envelope(event.type, key="o-1", subject="execution/o-1", sequence=n + 2,
                            data=event.data) for n, event in enumerate(built)]


def test_the_projector_applies_and_so_pushes_skips_fan_outs_and_items() -> None:
    assert {event_types.STEP_SKIPPED, event_types.STEP_FANNED_OUT} <= APPLIED
    assert all(event["type"] in APPLIED for event in _branch_events())


def test_each_goes_to_its_execution_its_saga_and_everything() -> None:
    for event in _branch_events():
        assert topics_of(event) == [ALL, "saga:order", "execution:o-1"], event["type"]


def test_subscribers_get_them_and_others_do_not() -> None:
    registry = _Registry({"execution": {"execution:o-1"}, "saga": {"saga:order"},
                          "everything": {ALL}, "other-execution": {"execution:o-2"},
                          "other-saga": {"saga:pay"}})
    gateway = _Gateway()
    pusher = Pusher(gateway, registry)  # type: ignore[arg-type]
    sent = _branch_events()
    for event in sent:
        assert pusher.push_event(event) == 3, event["type"]
    received: dict[str, list[str]] = {}
    for connection, message in gateway.posts:
        assert message["type"] == "event"
        received.setdefault(connection, []).append(message["event"]["type"])
    types = [event["type"] for event in sent]
    assert received == {"execution": types, "saga": types, "everything": types}
    # An item's event names its run and says which item it is.
    item = next(m["event"] for c, m in gateway.posts
                if c == "execution" and m["event"]["type"] == event_types.STEP_SUCCEEDED)
    assert item["data"]["step_id"] == "reserve[1]"
    assert item["data"]["step"]["item"] == {"of": "reserve", "index": 1}
