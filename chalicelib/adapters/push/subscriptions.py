"""Who listens to what: WebSocket connections and their subscriptions, in MongoDB.

Topics: "all", "saga:<saga id>", "execution:<execution id>", matched exactly (an event's topics
are compared whole with a connection's, never by prefix). A connection opened without a filter
gets "all" as a default that its first subscribe replaces: a client that connects and then
subscribes to one saga watches that saga, not that saga on top of everything.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from pymongo import ReturnDocument
from pymongo.database import Database

from chalicelib.domain import event_types

CONNECTIONS = "ws_connections"
ALL = "all"


def topics_of(event: Mapping[str, Any]) -> list[str]:
    """The topics an event is published to."""
    topics = [ALL]
    saga_id = event.get("data", {}).get("saga_id")
    if saga_id:
        topics.append(f"saga:{saga_id}")
    if event.get("type") in event_types.DEFINITION_EVENTS:  # keyed by saga id, not an execution's
        return topics
    topics.append(f"execution:{event['key']}")
    return topics


class Subscriptions:
    def __init__(self, db: Database) -> None:
        self._connections = db[CONNECTIONS]
        self._connections.create_index("topics")

    def connect(self, connection_id: str, topics: Iterable[str], principal: str, *,
                default: bool = False) -> None:
        """`default`: the topics are the no-filter default, replaced by the first subscribe."""
        self._connections.replace_one(
            {"_id": connection_id},
            {"_id": connection_id, "topics": sorted(set(topics)), "default": default,
             "principal": principal, "connected_at": datetime.now(UTC)}, upsert=True)

    def disconnect(self, connection_id: str) -> None:
        self._connections.delete_one({"_id": connection_id})

    def subscribe(self, connection_id: str, topics: Iterable[str]) -> list[str]:
        wanted = sorted(set(topics))
        # Each update is atomic on its document, so of two subscribes racing on a default
        # connection one replaces the default and the other adds to what it set.
        doc = self._connections.find_one_and_update(
            {"_id": connection_id, "default": True},
            {"$set": {"topics": wanted, "default": False}},
            return_document=ReturnDocument.AFTER)
        if doc is None:
            doc = self._connections.find_one_and_update(
                {"_id": connection_id}, {"$addToSet": {"topics": {"$each": wanted}}},
                return_document=ReturnDocument.AFTER)
        return sorted(doc["topics"]) if doc else []

    def unsubscribe(self, connection_id: str, topics: Iterable[str]) -> list[str]:
        doc = self._connections.find_one_and_update(
            {"_id": connection_id}, {"$pullAll": {"topics": list(topics)}},
            return_document=ReturnDocument.AFTER)
        return sorted(doc["topics"]) if doc else []

    def listeners(self, topics: Iterable[str]) -> list[str]:
        return [doc["_id"] for doc in
                self._connections.find({"topics": {"$in": list(topics)}}, {"_id": 1})]

    def listens(self, connection_id: str, topics: Iterable[str]) -> bool:
        """Whether the connection is (still) here and subscribed to one of `topics`."""
        return self._connections.find_one(
            {"_id": connection_id, "topics": {"$in": list(topics)}}, {"_id": 1}) is not None
