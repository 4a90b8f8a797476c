"""A client that never reads must not slow the read model or the other clients: pushes are
queued per connection, and the slow client is dropped within a bounded time."""

from __future__ import annotations

import base64
import json
import os
import socket
import time
import uuid
from typing import Any

from websockets.sync.client import connect

from chalicelib import runtime
from chalicelib.push.queued import QueuedPusher
from infra.ws_gateway import LocalWebsocketGateway

EVENTS = 60
EVENT_BYTES = 110 * 1024


def _never_reading_client(port: int, saga_id: str) -> socket.socket:
    """A WebSocket handshake over a socket with a tiny receive buffer that is never read."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((f"GET /ws?saga_id={saga_id} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                  "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                  f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    assert b" 101 " in sock.recv(1024).split(b"\r\n")[0] + b" "
    return sock


def _event(saga_id: str, execution_id: str, sequence: int) -> dict[str, Any]:
    return {"id": str(uuid.uuid4()), "type": "saga.step.succeeded", "key": execution_id,
            "sequence": sequence, "time": "2026-01-01T00:00:00+00:00",
            "data": {"saga_id": saga_id, "step_id": "a", "blob": "x" * EVENT_BYTES}}


def _listeners(saga_id: str) -> set[str]:
    return set(runtime.container().subscriptions.listeners([f"saga:{saga_id}"]))


def _wait_for(predicate: Any, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def test_a_client_that_never_reads_delays_nobody_and_is_dropped(
        ws_gateway: LocalWebsocketGateway) -> None:
    saga_id, execution_id = f"push-{uuid.uuid4().hex[:8]}", f"ex-{uuid.uuid4().hex[:8]}"
    pushes = QueuedPusher(runtime.container().pusher)
    url = f"ws://127.0.0.1:{ws_gateway.ws_port}/ws?saga_id={saga_id}"
    with connect(url, max_size=2**22) as normal:
        assert _wait_for(lambda: len(_listeners(saga_id)) == 1, 10)
        slow = _never_reading_client(ws_gateway.ws_port, saga_id)
        try:
            assert _wait_for(lambda: len(_listeners(saga_id)) == 2, 10)
            started = time.monotonic()
            enqueue_s = []
            for sequence in range(1, EVENTS + 1):
                before = time.perf_counter()
                pushes.push_event(_event(saga_id, execution_id, sequence))
                enqueue_s.append(time.perf_counter() - before)
            got = []
            while len(got) < EVENTS and time.monotonic() - started < 30:
                message = json.loads(normal.recv(timeout=30))
                if message.get("type") == "event":
                    got.append(message["event"]["sequence"])
            received_s = time.monotonic() - started
            dropped = _wait_for(lambda: len(_listeners(saga_id)) == 1, 15)
            dropped_s = time.monotonic() - started
        finally:
            slow.close()
    print(f"\nenqueue per event: max {max(enqueue_s) * 1000:.1f} ms, total "
          f"{sum(enqueue_s) * 1000:.0f} ms; normal client got {EVENTS} x 110 KB in "
          f"{received_s:.2f} s; slow client dropped after {dropped_s:.2f} s")
    assert got == list(range(1, EVENTS + 1))  # all, in order
    assert max(enqueue_s) < 0.5  # the projector's path never waits on a client
    assert received_s < 10
    assert dropped and len(pushes.dropped) == 1 and dropped_s < 15
