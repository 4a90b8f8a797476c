"""`saga serve` in its own process with its own settings (auth on, another database...), for
tests that need an app configured differently from the test session's."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from infra.stack.paths import PROJECT_ROOT


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class Answer:
    status: int
    raw: bytes
    headers: dict[str, str]

    def json(self) -> Any:
        return json.loads(self.raw) if self.raw else None


def http(method: str, url: str, body: bytes | None = None,
         headers: dict[str, str] | None = None, timeout_s: float = 60) -> Answer:
    """One request as a client sends it; an error status is an answer, not an exception."""
    request = urllib.request.Request(url, data=body, method=method, headers={
        "Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return Answer(response.status, response.read(), dict(response.headers))
    except urllib.error.HTTPError as error:
        return Answer(error.code, error.read(), dict(error.headers))


@dataclass(frozen=True)
class Served:
    base: str
    ws: str


@contextlib.contextmanager
def served(settings: dict[str, str], timeout_s: float = 60,
           events: bool = False, stage: str = "test") -> Iterator[Served]:
    """The API and WebSocket gateway on free ports, stopped by PID; with `events`, also the
    outbox relay and the projector, as `saga serve` runs them."""
    port, ws_port, management_port = free_port(), free_port(), free_port()
    env = {**os.environ, **settings, "SAGA__WEBSOCKET__PORT": str(ws_port),
           "SAGA__WEBSOCKET__MANAGEMENT_ENDPOINT": f"http://127.0.0.1:{management_port}",
           "SAGA_ACCESS_LOG": "0"}
    server = subprocess.Popen(
        [sys.executable, "-m", "infra.cli", "serve", "--port", str(port), "--stage", stage,
         *([] if events else ["--no-events"])], cwd=PROJECT_ROOT, env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=5):
                    break
            except urllib.error.HTTPError:
                break  # answering (503 while a component is down is still up)
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("saga serve did not start") from None
                time.sleep(0.2)
        yield Served(base=base, ws=f"ws://127.0.0.1:{ws_port}/ws")
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)
