"""Who listens to what: WebSocket connections and their subscriptions, in MongoDB.

Topics: "all", "saga:<saga id>", "execution:<execution id>".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from pymongo.database import Database

CONNECTIONS = "ws_connections"
ALL = "all"


def topics_of(event: Mapping[str, Any]) -> list[str]:
    """The topics an event is published to."""
    topics = [ALL]
    saga_id = event.get("data", {}).get("saga_id")
    if saga_id:
        topics.append(f"saga:{saga_id}")
    if event.get("type", "").startswith("saga.definition."):
        return topics
    topics.append(f"execution:{event['key']}")
    return topics


def topics_from(request: Mapping[str, Any]) -> list[str]:
    """Topics a subscribe/unsubscribe message (or a $connect query) names."""
    topics = []
    if request.get("all") in (True, "true", "1"):
        topics.append(ALL)
    for name in ("saga_id", "execution_id"):
        value = request.get(name)
        if isinstance(value, str) and 0 < len(value) <= 100:
            topics.append(f"{name.removesuffix('_id')}:{value}")
    return topics


class Subscriptions:
    def __init__(self, db: Database) -> None:
        self._connections = db[CONNECTIONS]
        self._connections.create_index("topics")

    def connect(self, connection_id: str, topics: Iterable[str], principal: str) -> None:
        self._connections.replace_one(
            {"_id": connection_id},
            {"_id": connection_id, "topics": sorted(set(topics)), "principal": principal,
             "connected_at": datetime.now(UTC)}, upsert=True)

    def disconnect(self, connection_id: str) -> None:
        self._connections.delete_one({"_id": connection_id})

    def subscribe(self, connection_id: str, topics: Iterable[str]) -> list[str]:
        doc = self._connections.find_one_and_update(
            {"_id": connection_id}, {"$addToSet": {"topics": {"$each": list(topics)}}},
            return_document=True)
        return sorted(doc["topics"]) if doc else []

    def unsubscribe(self, connection_id: str, topics: Iterable[str]) -> list[str]:
        doc = self._connections.find_one_and_update(
            {"_id": connection_id}, {"$pullAll": {"topics": list(topics)}},
            return_document=True)
        return sorted(doc["topics"]) if doc else []

    def listeners(self, topics: Iterable[str]) -> list[str]:
        return [doc["_id"] for doc in
                self._connections.find({"topics": {"$in": list(topics)}}, {"_id": 1})]
