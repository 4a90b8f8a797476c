"""A participant that keeps a ledger, as a team's service would, misbehaving on request.

Each action works for a while, then commits its effect only if its deadline has not passed
(the contract's rule), then answers, possibly late and possibly oddly; each compensation
undoes whatever that idempotency key committed. A test then checks that every committed effect
was undone exactly once. What it does is chosen by the request's input:

    {"work_s": 1.2, "answer_after_s": 1.0, "answer": "nan"}

`answer` is one of ok (default), nan, deep, keys, html, array, huge, 302, 307; "work_s" is
how long the action works before committing, "answer_after_s" how long it waits after;
"slow_first" makes the first attempt of /book work past its deadline (so it never commits).
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.support.participants import served

ODD_ANSWERS = ("nan", "deep", "keys", "html", "array", "huge", "302", "307")


@dataclass
class Ledger:
    """Effects committed per action idempotency key, and their undoing."""

    committed: dict[str, int] = field(default_factory=dict)
    undone: dict[str, int] = field(default_factory=dict)
    # Committed before the deadline, answered after the cut: the case the rule is about.
    committed_then_cut: int = 0
    compensations: list[dict[str, Any]] = field(default_factory=list)
    redirects_followed: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def balanced(self) -> list[str]:
        """Every committed effect undone exactly once, nothing undone that was not done."""
        with self.lock:
            keys = set(self.committed) | set(self.undone)
            return [f"{key}: committed {self.committed.get(key, 0)}, undone "
                    f"{self.undone.get(key, 0)}" for key in sorted(keys)
                    if self.committed.get(key, 0) != self.undone.get(key, 0)
                    or self.committed.get(key, 0) > 1]


class LedgerServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.ledger = Ledger()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


def _deep(levels: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(levels):
        value = {"a": value}
    return value


class _Handler(BaseHTTPRequestHandler):
    server: LedgerServer

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        request = json.loads(self.rfile.read(length))
        if self.path == "/moved":
            with self.server.ledger.lock:
                self.server.ledger.redirects_followed += 1
            self._send(200, b"{}")
            return
        if request["phase"] == "compensation":
            self._compensate(request)
            return
        self._act(request)

    def _act(self, request: dict[str, Any]) -> None:
        how = request["input"]
        ledger = self.server.ledger
        deadline = datetime.fromisoformat(request["deadline"])
        work_s = float(how.get("work_s", 0))
        if how.get("slow_first") and request["attempt"] == 1 and self.path == "/book":
            work_s = (deadline.timestamp() - time.time()) + 1.0  # past its deadline
        time.sleep(max(0.0, work_s))
        key = request["idempotency_key"]
        committed = False
        with ledger.lock:
            # Never commit after the deadline, and once per idempotency key: a retry of an
            # attempt that committed finds it done.
            if time.time() < deadline.timestamp() and not ledger.committed.get(key):
                ledger.committed[key] = 1
                committed = True
        time.sleep(float(how.get("answer_after_s", 0)))
        if committed and time.time() >= deadline.timestamp():
            with ledger.lock:
                ledger.committed_then_cut += 1
        answer = how.get("answer", "ok")
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self._answer(answer, key)

    def _answer(self, answer: str, key: str) -> None:
        if answer in ("302", "307"):
            self.send_response(int(answer))
            self.send_header("Location", f"{self.server.url}/moved")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if answer == "html":
            self._send(200, b"<html>Bad gateway</html>", "text/html")
            return
        if answer == "huge":
            self._send(200, b'{"blob": "' + b"x" * 5_000_000 + b'"}')
            return
        body = {"ok": json.dumps({"booking": key}), "nan": '{"v": NaN}',
                "deep": json.dumps(_deep(30)), "keys": '{"$set": 1, "a.b": 2}',
                "array": '[1, 2, 3]'}[answer]
        self._send(200, body.encode())

    def _compensate(self, request: dict[str, Any]) -> None:
        ledger = self.server.ledger
        action_key = request["idempotency_key"].rsplit(":", 1)[0] + ":action"
        with ledger.lock:
            ledger.compensations.append({**request, "received_at": time.time()})
            if ledger.committed.get(action_key) and not ledger.undone.get(action_key):
                ledger.undone[action_key] = 1
        self._send(200, b'{"undone": true}')

    def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def ledger_participant() -> contextlib.AbstractContextManager[LedgerServer]:
    """A LedgerServer, up for the `with` block."""
    return served(LedgerServer())
