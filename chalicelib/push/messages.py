"""What a WebSocket client may say, and what it is told back.

    {"action": "subscribe", "saga_id": "payment-saga"}      -> {"type": "subscribed", ...}
    {"action": "subscribe", "execution_id": "..."}
    {"action": "subscribe", "all": true}
    {"action": "unsubscribe", ...same keys...}               -> {"type": "unsubscribed", ...}
    {"action": "ping"}                                       -> {"type": "pong"}

Events arrive as {"type": "event", "event": <envelope>}.
"""

from __future__ import annotations

import json
from typing import Any

from chalicelib.push.pusher import Pusher
from chalicelib.push.subscriptions import Subscriptions, topics_from


def handle_message(connection_id: str, body: str, subscriptions: Subscriptions,
                   pusher: Pusher) -> dict[str, Any]:
    reply = _answer(connection_id, body, subscriptions)
    pusher.send(connection_id, reply)
    return reply


def _answer(connection_id: str, body: str, subscriptions: Subscriptions) -> dict[str, Any]:
    try:
        request = json.loads(body)
    except (TypeError, json.JSONDecodeError):
        return {"type": "error", "message": "messages are JSON objects such as "
                '{"action": "subscribe", "saga_id": "payment-saga"}'}
    if not isinstance(request, dict):
        return {"type": "error", "message": "a message is a JSON object"}
    action = request.get("action")
    if action == "ping":
        return {"type": "pong"}
    if action not in ("subscribe", "unsubscribe"):
        return {"type": "error", "message": "action must be subscribe, unsubscribe or ping"}
    topics = topics_from(request)
    if not topics:
        return {"type": "error", "message": f"{action} needs saga_id, execution_id or "
                "all: true"}
    if action == "subscribe":
        return {"type": "subscribed", "topics": subscriptions.subscribe(connection_id, topics)}
    return {"type": "unsubscribed", "topics": subscriptions.unsubscribe(connection_id, topics)}
