"""WebSocket filters and messages parsed at the edge: unknown names and over-long ids are
refused with a message naming the field and the limit, never skipped (a skipped filter would
widen a subscription to everything); queued pushes go only to connections still listening."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable
from typing import Any

import pytest

from chalicelib.adapters.push.filters import (
    MAX_ID_LENGTH,
    FilterRefused,
    parse_connect,
    parse_message,
)
from chalicelib.adapters.push.messages import handle_message
from chalicelib.adapters.push.pusher import Pusher
from chalicelib.adapters.push.queued import QueuedPusher
from chalicelib.adapters.push.subscriptions import topics_of


def _refused_connect(query: dict[str, Any]) -> FilterRefused:
    with pytest.raises(FilterRefused) as refused:
        parse_connect(query)
    return refused.value


def _refused_message(body: str) -> FilterRefused:
    with pytest.raises(FilterRefused) as refused:
        parse_message(body)
    return refused.value


# -- $connect ----------------------------------------------------------------------------------

def test_a_connection_without_filters_gets_everything_as_a_default() -> None:
    for query in (None, {}, {"token": "abc"}):
        wanted = parse_connect(query)
        assert wanted.topics() == ["all"] and wanted.is_default


@pytest.mark.parametrize(("query", "topics"), [
    ({"saga_id": "payment-saga"}, ["saga:payment-saga"]),
    ({"execution_id": "ex-1"}, ["execution:ex-1"]),
    ({"saga_id": "a", "execution_id": "b"}, ["saga:a", "execution:b"]),
    ({"all": "true"}, ["all"]),
    ({"all": "1", "saga_id": "a"}, ["all", "saga:a"]),
    ({"all": "false"}, []),  # nothing until a subscribe message
    ({"all": "0", "execution_id": "e"}, ["execution:e"]),
    ({"saga_id": "x" * MAX_ID_LENGTH}, [f"saga:{'x' * MAX_ID_LENGTH}"]),
])
def test_connect_filters_name_exact_topics_and_are_no_default(query: dict[str, str],
                                                              topics: list[str]) -> None:
    wanted = parse_connect(query)
    assert wanted.topics() == topics and not wanted.is_default


@pytest.mark.parametrize("name", ["saga_id", "execution_id"])
def test_a_connect_filter_over_the_id_limit_is_refused_naming_it_and_the_limit(
        name: str) -> None:
    refused = _refused_connect({name: "x" * (MAX_ID_LENGTH + 1)})
    assert [p.field for p in refused.problems] == [name]
    assert refused.message == f"{name} must be at most 100 characters (it has 101)"


def test_an_unknown_or_empty_connect_filter_is_refused() -> None:
    refused = _refused_connect({"bogus": "1"})
    assert refused.message == "unknown filter 'bogus': only saga_id, execution_id, all"
    assert "must not be empty" in _refused_connect({"saga_id": ""}).message
    assert _refused_connect({"all": "yes"}).message == "all must be true or false"
    # Unknown names come first, and every problem is listed.
    both = _refused_connect({"saga_id": "x" * 500, "sagaid": "y"})
    assert [p.field for p in both.problems] == ["sagaid", "saga_id"]
    assert "(it has 500)" in both.message


def test_an_unknown_name_is_shown_bounded() -> None:
    refused = _refused_connect({"n" * 10_000: "1"})
    assert len(refused.message) < 200


# -- messages ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("body", "topics"), [
    ({"action": "subscribe", "saga_id": "s"}, ["saga:s"]),
    ({"action": "subscribe", "execution_id": "e"}, ["execution:e"]),
    ({"action": "unsubscribe", "all": True}, ["all"]),
    ({"action": "subscribe", "all": True, "saga_id": "s"}, ["all", "saga:s"]),
])
def test_a_message_names_exact_topics(body: dict[str, Any], topics: list[str]) -> None:
    assert parse_message(json.dumps(body)).topics() == topics


def test_a_100000_character_execution_id_is_refused_by_name_and_limit() -> None:
    refused = _refused_message(json.dumps({"action": "subscribe",
                                           "execution_id": "e" * 100_000}))
    assert refused.message == "execution_id must be at most 100 characters (it has 100000)"
    assert len(refused.message) < 100  # the value is never echoed


@pytest.mark.parametrize(("body", "field", "says"), [
    ({"action": "subscribe", "saga_id": "s", "bogus": 1}, "bogus", "unknown field 'bogus'"),
    ({"action": "subscribe", "sagaId": "s"}, "sagaId", "unknown field 'sagaId'"),
    ({"action": "subscribe", "saga_id": 7}, "saga_id", "saga_id must be a string"),
    ({"action": "subscribe", "all": "true"}, "all", "all must be true or false"),
    ({"action": "subscribe"}, "action", "subscribe needs saga_id, execution_id or all: true"),
    ({"action": "subscribe", "all": False}, "action", "subscribe needs saga_id"),
    ({"action": "shout"}, "action", "action must be one of subscribe, unsubscribe, ping"),
    ({"saga_id": "s"}, "action", "action is required"),
])
def test_a_wrong_message_is_refused_naming_the_field(body: dict[str, Any], field: str,
                                                     says: str) -> None:
    refused = _refused_message(json.dumps(body))
    assert refused.problems[0].field == field
    assert says in refused.message


@pytest.mark.parametrize("body", ["not json", "[1, 2]", "", "null"])
def test_a_message_that_is_no_json_object_is_refused(body: str) -> None:
    assert "JSON object" in _refused_message(body).message


def test_ping_needs_no_filter() -> None:
    assert parse_message('{"action": "ping"}').action == "ping"


class _Registry:
    """Subscriptions in memory: connection id -> topics."""

    def __init__(self, topics: dict[str, set[str]]) -> None:
        self.topics = topics
        self.lock = threading.Lock()

    def subscribe(self, connection_id: str, topics: Iterable[str]) -> list[str]:
        with self.lock:
            self.topics.setdefault(connection_id, set()).update(topics)
            return sorted(self.topics[connection_id])

    def unsubscribe(self, connection_id: str, topics: Iterable[str]) -> list[str]:
        with self.lock:
            self.topics.get(connection_id, set()).difference_update(topics)
            return sorted(self.topics.get(connection_id, set()))

    def listeners(self, topics: Iterable[str]) -> list[str]:
        with self.lock:
            return [c for c, mine in self.topics.items() if mine & set(topics)]

    def listens(self, connection_id: str, topics: Iterable[str]) -> bool:
        with self.lock:
            return bool(self.topics.get(connection_id, set()) & set(topics))

    def disconnect(self, connection_id: str) -> None:
        with self.lock:
            self.topics.pop(connection_id, None)


class _Gateway:
    """The management API: records posts; the first one waits until released."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, dict[str, Any]]] = []
        self.release = threading.Event()

    def post_to_connection(self, ConnectionId: str, Data: bytes) -> None:  # boto3's names
        self.release.wait(5)
        self.posts.append((ConnectionId, json.loads(Data)))


def test_an_error_frame_names_the_field_and_the_limit() -> None:
    gateway = _Gateway()
    gateway.release.set()
    registry = _Registry({"c1": {"all"}})
    reply = handle_message("c1", json.dumps({"action": "subscribe", "execution_id": "e" * 101}),
                           registry, Pusher(gateway, registry))  # type: ignore[arg-type]
    assert reply["type"] == "error"
    assert reply["problems"] == [{"field": "execution_id", "message": reply["message"]}]
    assert "at most 100 characters" in reply["message"]
    assert registry.topics == {"c1": {"all"}}  # nothing changed
    assert gateway.posts == [("c1", reply)]


def _event(saga_id: str, execution_id: str, sequence: int) -> dict[str, Any]:
    return {"id": f"{execution_id}-{sequence}", "type": "saga.step.succeeded",
            "key": execution_id, "sequence": sequence, "data": {"saga_id": saga_id}}


def test_events_queued_before_a_subscription_narrowed_are_not_sent_after_it() -> None:
    """The race of row 18: an event queued for a connection that then narrowed its
    subscription (or left) is checked again when its turn comes, and skipped."""
    registry = _Registry({"watcher": {"all"}, "leaver": {"all"}})
    gateway = _Gateway()  # holds the first send, so the others wait in the queues
    pushes = QueuedPusher(Pusher(gateway, registry))  # type: ignore[arg-type]
    for sequence in (1, 2, 3):
        assert pushes.push_event(_event("pay", "pay-1", sequence)) == 2
    registry.topics["watcher"] = {"saga:ws"}  # a subscribe replaced its default "all"
    registry.disconnect("leaver")
    gateway.release.set()
    assert pushes.drain(5)
    sent = [(c, m["event"]["sequence"]) for c, m in gateway.posts]
    # At most the send already under way when the subscription changed; never the rest.
    assert {c for c, _ in sent} <= {"watcher", "leaver"} and len(sent) <= 2
    assert all(sequence == 1 for _, sequence in sent)
    pushes.push_event(_event("ws", "ws-1", 1))
    assert pushes.drain(5)
    assert gateway.posts[-1] == ("watcher", {"type": "event", "event": _event("ws", "ws-1", 1)})
    assert topics_of(_event("ws", "ws-1", 1)) == ["all", "saga:ws", "execution:ws-1"]
