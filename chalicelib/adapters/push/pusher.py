"""Sends to WebSocket clients through the API Gateway management API (`@connections`), the
same code locally (against the local gateway) and on AWS; drops connections that are gone."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.adapters.push.subscriptions import Subscriptions, topics_of

logger = logging.getLogger(__name__)
# API Gateway WebSocket frames carry at most 128 KB; an event bigger than this (a large saga
# input) is pushed without its input, which the REST API still serves.
MAX_PUSH_BYTES = 120 * 1024


def within_frame_limit(event: Mapping[str, Any]) -> Mapping[str, Any]:
    data = event.get("data")
    if not isinstance(data, Mapping) or "input" not in data:
        return event
    size = len(json.dumps(event, default=str).encode())
    if size <= MAX_PUSH_BYTES:
        return event
    trimmed = {k: v for k, v in data.items() if k != "input"}
    return {**event, "data": {**trimmed, "input_omitted_bytes": size}}


class Pusher:
    def __init__(self, management_client: Any, subscriptions: Subscriptions) -> None:
        self._api = management_client
        self._subscriptions = subscriptions

    def send(self, connection_id: str, message: Mapping[str, Any]) -> bool:
        """False (and the connection forgotten) when the client is gone."""
        try:
            self._api.post_to_connection(ConnectionId=connection_id,
                                         Data=json.dumps(message, default=str).encode())
            return True
        except ClientError as error:
            if error.response["Error"]["Code"] in ("GoneException", "410"):
                self._subscriptions.disconnect(connection_id)
                return False
            raise

    def push_event(self, event: Mapping[str, Any]) -> int:
        """Send an event to every connection subscribed to one of its topics; how many got it.
        A failure is logged, never raised: the read model must not wait on a client."""
        sent = 0
        message = None
        for connection_id in self._subscriptions.listeners(topics_of(event)):
            message = message or {"type": "event", "event": within_frame_limit(event)}
            try:
                sent += self.send(connection_id, message)
            except Exception:
                logger.exception("push to %s failed", connection_id)
        return sent
