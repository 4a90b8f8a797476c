"""The event bus (what the outbox relay publishes to) and the WebSocket push, in memory."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from chalicelib.adapters.push.subscriptions import topics_of
from chalicelib.domain.event_records import EventRecord


class BusDown(ConnectionError):
    """What publish raises while the fake broker is told to be down."""


@dataclass
class InMemoryEventBus:
    """KafkaPublisher's contract: every record acknowledged or refused for good (by index,
    with the reason), or an exception when the broker can't be reached (the batch is retried).
    """

    down: bool = False
    refuse_keys: set[str] = field(default_factory=set)  # records with these keys are refused
    topics: dict[str, list[EventRecord]] = field(default_factory=dict)

    def publish(self, topic: str, records: Sequence[EventRecord]) -> dict[int, str]:
        if self.down:
            raise BusDown("the broker cannot be reached")
        refused = {index: "refused by the test" for index, record in enumerate(records)
                   if record.key in self.refuse_keys}
        self.topics.setdefault(topic, []).extend(
            record for index, record in enumerate(records) if index not in refused)
        return refused

    def events(self, topic: str) -> list[dict[str, Any]]:
        return [json.loads(record.value) for record in self.topics.get(topic, [])]

    def close(self) -> None:
        pass


@dataclass
class RecordingPusher:
    """The Pusher's contract: push an event to its subscribers, say how many got it."""

    # topic (as chalicelib.adapters.push.subscriptions names them) -> connection ids
    subscribers: dict[str, set[str]] = field(default_factory=dict)
    sent: list[tuple[str, Mapping[str, Any]]] = field(default_factory=list)

    def push_event(self, event: Mapping[str, Any]) -> int:
        connections = sorted(set().union(*(self.subscribers.get(t, set())
                                           for t in topics_of(event))))
        for connection_id in connections:
            self.sent.append((connection_id, {"type": "event", "event": event}))
        return len(connections)
