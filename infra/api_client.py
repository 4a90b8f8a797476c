"""The service's REST API and WebSocket feed, as the `saga` command uses them."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from websockets.sync.client import connect

from chalicelib.http.paths import API_PREFIX

DEFAULT_API = "http://127.0.0.1:8000"
DEFAULT_WS = "ws://127.0.0.1:8001/ws"
PREFIX = API_PREFIX


class ApiError(Exception):
    """The API answered with an error, or could not be reached (status 0)."""

    def __init__(self, status: int, message: str, body: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.body = body


@dataclass(frozen=True)
class ApiClient:
    base_url: str = DEFAULT_API
    ws_url: str = DEFAULT_WS
    timeout_s: float = 30.0

    @classmethod
    def from_env(cls, api: str | None = None, ws: str | None = None) -> ApiClient:
        return cls(api or os.environ.get("SAGA_API_URL", DEFAULT_API),
                   ws or os.environ.get("SAGA_WS_URL", DEFAULT_WS))

    def call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{self.base_url}{PREFIX}{path}", data=data,
                                         method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                raw = response.read()
        except urllib.error.HTTPError as error:
            raw = error.read()
            try:
                payload = json.loads(raw)
            except json.JSONDecodeError:
                payload = {"error": {"message": raw.decode(errors="replace")[:500]}}
            message = (payload.get("error", {}).get("message") or payload.get("Message")
                       or f"HTTP {error.code}")
            raise ApiError(error.code, message, payload) from None
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise ApiError(0, f"cannot reach the API at {self.base_url}: {reason} "
                           "(is `make run` up? or set SAGA_API_URL)") from None
        return json.loads(raw) if raw else None

    def events(self, *, execution_id: str, timeout_s: float) -> Iterator[dict[str, Any]]:
        """The execution's events as the WebSocket feed delivers them, until its end (or the
        timeout): connect and subscribe before the execution starts to miss none."""
        try:
            socket = connect(f"{self.ws_url}?execution_id={execution_id}",
                             open_timeout=10)
        except OSError as error:
            raise ApiError(0, f"cannot reach the WebSocket feed at {self.ws_url}: {error} "
                           "(or set SAGA_WS_URL)") from None
        with socket:
            yield {"type": "connected"}
            while True:
                try:
                    message = json.loads(socket.recv(timeout=timeout_s))
                except TimeoutError:
                    return
                if message.get("type") == "event":
                    yield message["event"]
