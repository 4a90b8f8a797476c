"""A participant whose state `saga verify`'s check hook reads: per execution, which of its
steps did their work and which undid it. Its /undo-nothing compensation answers success and
undoes nothing: the bug only the participant's own state shows."""

from __future__ import annotations

import contextlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.support.participants import served


class StateServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        # execution id -> step id -> "done" | "undone"
        self.state: dict[str, dict[str, str]] = {}
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: StateServer

    def do_POST(self) -> None:
        request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        steps = self.server.state.setdefault(request["execution_id"], {})
        with self.server.lock:
            if request["phase"] == "action":
                steps[request["step_id"]] = "done"
            elif self.path != "/undo-nothing" and steps.get(request["step_id"]) == "done":
                steps[request["step_id"]] = "undone"
        self._send({"ok": True})

    def do_GET(self) -> None:
        execution = parse_qs(urlsplit(self.path).query).get("execution", [""])[0]
        with self.server.lock:
            self._send(dict(self.server.state.get(execution, {})))

    def _send(self, body: Any) -> None:
        payload = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def state_participant() -> contextlib.AbstractContextManager[StateServer]:
    return served(StateServer())
