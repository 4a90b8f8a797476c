"""A tiny client of the orchestrator's REST API, standard library only: store a saga, execute
it, wait for the execution to end. What the quickstart and the pytest plugin use.

    api = SagaApi()                      # $SAGA_API, else http://127.0.0.1:8000 (`make run`)
    api.create_saga(definition, exist_ok=True)
    done = api.run("order", {"sku": "sku-1", "quantity": 1}, timeout_s=60)
    done["status"]                       # COMPLETED, COMPENSATED, ...
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Mapping
from typing import Any, Optional, Union

DEFAULT_API = "http://127.0.0.1:8000"
PREFIX = "/api/v1/saga"
# The statuses an execution ends in (until an operator acts on it).
FINAL_STATUSES = frozenset({"COMPLETED", "COMPENSATED", "COMPENSATION_FAILED", "FAILED",
                            "TIMED_OUT", "PARKED"})


class ApiError(Exception):
    """The API answered with an error (`status`, `body`), or could not be reached (status 0)."""

    def __init__(self, status: int, message: str, body: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.body = body


def api_url() -> str:
    """The API's base URL: $SAGA_API, else $SAGA_API_URL (the `saga` command's), else
    http://127.0.0.1:8000."""
    return (os.environ.get("SAGA_API") or os.environ.get("SAGA_API_URL")
            or DEFAULT_API).rstrip("/")


class SagaApi:
    """The orchestrator's REST API at `url` (its base: `/api/v1/saga` is added). `token`, if
    any (else $SAGA_TOKEN), is sent as a bearer token; `make run` needs none."""

    def __init__(self, url: Optional[str] = None, *, token: Optional[str] = None,
                 timeout_s: float = 30.0) -> None:
        self.url = (url or api_url()).rstrip("/")
        self.token = token if token is not None else os.environ.get("SAGA_TOKEN") or None
        self.timeout_s = timeout_s

    def __repr__(self) -> str:
        return f"SagaApi({self.url!r})"

    def call(self, method: str, path: str, body: Any = None) -> Any:
        """One call under the API's prefix (`/health` is outside it): the answer's JSON, or
        ApiError."""
        url = self.url + (path if path == "/health" else PREFIX + path)
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                raw = response.read()
        except urllib.error.HTTPError as error:
            raw = error.read()
            try:
                payload = json.loads(raw)
            except ValueError:
                payload = {"error": {"message": raw.decode(errors="replace")[:500]}}
            problem = payload.get("error") if isinstance(payload, dict) else None
            message = (problem.get("message") if isinstance(problem, dict) else None) \
                or f"HTTP {error.code}"
            raise ApiError(error.code, f"{method} {path}: {error.code} {message}",
                           payload) from None
        except OSError as error:
            reason = getattr(error, "reason", error)
            raise ApiError(0, f"cannot reach the API at {self.url}: {reason} (is `make run` "
                              "up? or set SAGA_API)") from None
        return json.loads(raw) if raw else None

    def health(self) -> dict[str, Any]:
        return dict(self.call("GET", "/health"))

    def create_saga(self, definition: Mapping[str, Any], *,
                    exist_ok: bool = False) -> dict[str, Any]:
        """Store a saga (a new id, or a higher version of one). With exist_ok, a version
        already stored (409) is read back instead: rerunning a script is harmless, but a
        changed definition needs a higher `version`."""
        try:
            return dict(self.call("POST", "/sagas", dict(definition)))
        except ApiError as error:
            if not (exist_ok and error.status == 409):
                raise
        saga_id = urllib.parse.quote(str(definition["id"]), safe="")
        version = urllib.parse.quote(str(definition.get("version", "")), safe="")
        return dict(self.call("GET", f"/sagas/{saga_id}?version={version}"))

    def execute(self, saga_id: str, input: Optional[Mapping[str, Any]] = None, *,
                execution_id: Optional[str] = None) -> dict[str, Any]:
        """Start an execution (its id is made here, so a retried call starts it once): the
        execution as the API answers (status RUNNING)."""
        body = {"input": dict(input or {}), "execution_id": execution_id or str(uuid.uuid4())}
        quoted = urllib.parse.quote(saga_id, safe="")
        return dict(self.call("POST", f"/sagas/{quoted}/execute", body))

    def execution(self, execution_id: str) -> dict[str, Any]:
        quoted = urllib.parse.quote(execution_id, safe="")
        return dict(self.call("GET", f"/executions/{quoted}"))

    def wait(self, execution: Union[str, Mapping[str, Any]], timeout_s: float = 60.0,
             poll_s: float = 0.25) -> dict[str, Any]:
        """The execution once it has ended (a final status), polled; TimeoutError otherwise.
        Given the execution `execute` answered, waits until the read model has caught up
        with it too."""
        if isinstance(execution, str):
            execution_id, floor = execution, 0
        else:
            execution_id = str(execution["id"])
            floor = int((execution.get("consistency") or {}).get("sequence") or 0)
        deadline = time.monotonic() + timeout_s
        while True:
            seen = self.execution(execution_id)
            sequence = int((seen.get("consistency") or {}).get("sequence") or 0)
            if seen.get("status") in FINAL_STATUSES and sequence >= floor:
                return seen
            if time.monotonic() > deadline:
                raise TimeoutError(f"execution {execution_id} did not end within "
                                   f"{timeout_s:g} s; it is {seen.get('status')}")
            time.sleep(poll_s)

    def run(self, saga_id: str, input: Optional[Mapping[str, Any]] = None, *,
            timeout_s: float = 60.0) -> dict[str, Any]:
        """Execute and wait for the end: the ended execution."""
        return self.wait(self.execute(saga_id, input), timeout_s=timeout_s)
