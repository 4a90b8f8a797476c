"""A team's HTTP participant as the tests need one: a server on 127.0.0.1 that records every
POST it receives and answers it as the test says, served from a thread and stopped after."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: Any


ServerT = TypeVar("ServerT", bound=ThreadingHTTPServer)

# What the participant answers a request with: a status and a JSON body.
Respond = Callable[[Received], tuple[int, Any]]


class ParticipantServer(ThreadingHTTPServer):
    def __init__(self, respond: Respond) -> None:
        super().__init__(("127.0.0.1", 0), _JsonHandler)
        self.respond = respond
        self.received: list[Received] = []
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def record(self, request: Received) -> None:
        with self._lock:
            self.received.append(request)


class _JsonHandler(BaseHTTPRequestHandler):
    server: ParticipantServer

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        request = Received(self.path, dict(self.headers.items()), body)
        self.server.record(request)
        status, reply = self.server.respond(request)
        payload = json.dumps(reply).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def served(server: ServerT) -> Iterator[ServerT]:
    """Any test HTTP server, served from a thread for the `with` block, then stopped."""
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def serving(respond: Respond) -> contextlib.AbstractContextManager[ParticipantServer]:
    """A ParticipantServer answering with `respond`, up for the `with` block."""
    return served(ParticipantServer(respond))
