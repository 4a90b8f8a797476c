"""What a WebSocket client may say, and what it is told back.

    {"action": "subscribe", "saga_id": "payment-saga"}      -> {"type": "subscribed", ...}
    {"action": "subscribe", "execution_id": "..."}
    {"action": "subscribe", "all": true}
    {"action": "unsubscribe", ...same keys...}               -> {"type": "unsubscribed", ...}
    {"action": "ping"}                                       -> {"type": "pong"}
    anything else                                            -> {"type": "error", "message",
                                                                 "problems": [{"field", ...}]}

Events arrive as {"type": "event", "event": <envelope>}. The messages are parsed by
chalicelib.adapters.push.filters: unknown fields and ids over 100 characters are refused.
"""

from __future__ import annotations

from typing import Any

from chalicelib.adapters.push.filters import FilterRefused, parse_message
from chalicelib.adapters.push.pusher import Pusher
from chalicelib.adapters.push.subscriptions import Subscriptions


def handle_message(connection_id: str, body: str, subscriptions: Subscriptions,
                   pusher: Pusher) -> dict[str, Any]:
    reply = _answer(connection_id, body, subscriptions)
    pusher.send(connection_id, reply)
    return reply


def _answer(connection_id: str, body: str, subscriptions: Subscriptions) -> dict[str, Any]:
    try:
        message = parse_message(body)
    except FilterRefused as refused:
        return {"type": "error", "message": refused.message,
                "problems": [problem.as_dict() for problem in refused.problems]}
    if message.action == "ping":
        return {"type": "pong"}
    if message.action == "subscribe":
        return {"type": "subscribed",
                "topics": subscriptions.subscribe(connection_id, message.topics())}
    return {"type": "unsubscribed",
            "topics": subscriptions.unsubscribe(connection_id, message.topics())}
