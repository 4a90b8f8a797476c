"""A pytest plugin (registered as `saga_participant.testing` through the `pytest11` entry
point): serve participants in-process and point sagas at them on the local stack.

    def test_a_declined_card_releases_the_stock(participant_server, saga_api):
        stock = participant_server(reserve, release)     # http://127.0.0.1:<free port>
        cards = participant_server(charge, refund)
        saga_api.create_saga(order_saga(stock, cards))
        done = saga_api.run("order", {"card": "4000-0000-0000-0002"})
        assert done["status"] == "COMPENSATED"
        assert [r["phase"] for r in stock.requests] == ["action", "compensation"]

`participant_server(action, compensation)` serves `wsgi_app(action, compensation)` on
127.0.0.1, on a free port, from a thread, until the test ends; it returns the URL (a `str`,
with `.requests`: the JSON bodies it was sent, in order). `participant_server(app=...)` serves
any WSGI app. `saga_api` is a `SagaApi` (`saga_participant.client`) for $SAGA_API, else
http://127.0.0.1:8000 (`make run`): `url`, `create_saga`, `execute`, `wait`, `run`.
`saga_verify(saga_id, check=...)` runs `saga verify` (every failure point of the saga, each
compensation path checked; the orchestrator's CLI, $SAGA_CLI or `saga`) and fails the test
with the cases that fail; its check is a shell command or a Python function that looks at the
participants' own state for each case's execution.
"""

from __future__ import annotations

import io
import json
import socketserver
import threading
from collections.abc import Iterable, Iterator
from typing import Any, Callable, Optional, Union
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest
from aws_lambda_powertools.utilities.idempotency.persistence.base import BasePersistenceLayer

from saga_participant.client import SagaApi
from saga_participant.participant import Work, WsgiApp, wsgi_app


class _ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # one line per request: none
        pass


class ServedParticipant(str):
    """The URL of a served participant; `requests` holds the JSON bodies it was sent."""

    requests: list[Any]


class ParticipantServer:
    """One WSGI app served on host:port (0: a free one) from a thread."""

    def __init__(self, app: WsgiApp, host: str = "127.0.0.1", port: int = 0) -> None:
        self.requests: list[Any] = []
        self._lock = threading.Lock()
        self._server = make_server(host, port, self._recording(app),
                                   server_class=_ThreadingServer, handler_class=_QuietHandler)
        self.url = f"http://{host}:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05},
                                        name=f"participant {self.url}", daemon=True)

    def _recording(self, app: WsgiApp) -> WsgiApp:
        def recording(environ: dict[str, Any],
                      start_response: Callable[..., Any]) -> Iterable[bytes]:
            if environ.get("REQUEST_METHOD") == "POST":
                length = int(environ.get("CONTENT_LENGTH") or 0)
                body = environ["wsgi.input"].read(length)
                try:
                    seen: Any = json.loads(body)
                except ValueError:
                    seen = body
                with self._lock:
                    self.requests.append(seen)
                environ["wsgi.input"] = io.BytesIO(body)
            return app(environ, start_response)

        return recording

    def start(self) -> ParticipantServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)


ServeParticipant = Callable[..., ServedParticipant]


@pytest.fixture
def participant_server() -> Iterator[ServeParticipant]:
    """A factory: `participant_server(action, compensation, persistence=None)` or
    `participant_server(app=wsgi_app)` serves it on 127.0.0.1 (a free port) until the test
    ends, and returns its URL (with `.requests`)."""
    servers: list[ParticipantServer] = []

    def serve(action: Optional[Work] = None, compensation: Optional[Work] = None, *,
              app: Optional[WsgiApp] = None,
              persistence: Optional[BasePersistenceLayer] = None,
              host: str = "127.0.0.1", port: int = 0) -> ServedParticipant:
        if app is None:
            if action is None or compensation is None:
                raise TypeError("participant_server needs an action and a compensation, "
                                "or app=")
            app = wsgi_app(action, compensation, persistence=persistence)
        elif action is not None or compensation is not None:
            raise TypeError("participant_server takes an action and a compensation, or app=, "
                            "not both")
        server = ParticipantServer(app, host, port).start()
        servers.append(server)
        url = ServedParticipant(server.url)
        url.requests = server.requests
        return url

    yield serve
    for server in servers:
        server.stop()


@pytest.fixture(scope="session")
def saga_api() -> SagaApi:
    """The orchestrator's API ($SAGA_API, else http://127.0.0.1:8000): a `SagaApi`."""
    return SagaApi()


class VerifyFailed(AssertionError):
    """`saga verify` found cases that fail: each listed with its problems."""


def run_verify(saga_id: str, *, api: str, saga_input: Optional[str] = None,
               check: Optional[str] = None, cases: Iterable[str] = (),
               cli: Optional[str] = None, timeout_s: float = 1800) -> list[dict[str, Any]]:
    """`saga verify SAGA --json` (the orchestrator's CLI: $SAGA_CLI, else `saga` on the PATH):
    one run per failure point of the saga on the local stack; returns each case's result
    ({case, execution_id, status, passed, problems})."""
    import os
    import shlex
    import subprocess

    command = shlex.split(cli or os.environ.get("SAGA_CLI", "saga"))
    command += ["verify", saga_id, "--json", "--api", api]
    if saga_input is not None:
        command += ["--input", saga_input]
    if check is not None:
        command += ["--check", check]
    for case in cases:
        command += ["--case", case]
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s,
                          check=False)
    try:
        results = json.loads(done.stdout)
    except ValueError:
        raise RuntimeError(f"saga verify gave no results (exit {done.returncode}): "
                           f"{(done.stdout + done.stderr)[-2000:]}") from None
    return list(results)


# A check in Python: told one case's result ({case, execution_id, status, ...}) once the runs
# have ended, it looks at the participants' own state and returns what it finds wrong (or
# raises AssertionError).
Check = Callable[[dict[str, Any]], Optional[Iterable[str]]]


def checked(results: list[dict[str, Any]], check: Check) -> list[dict[str, Any]]:
    """The results with a Python check's findings added to each case's problems."""
    for result in results:
        try:
            found = [str(problem) for problem in check(result) or ()]
        except AssertionError as failed:
            found = [str(failed) or "the check failed"]
        if found:
            result["problems"] = [*result.get("problems", []),
                                  *(f"the check found: {problem}" for problem in found)]
            result["passed"] = False
    return results


@pytest.fixture
def saga_verify(saga_api: SagaApi) -> Callable[..., list[dict[str, Any]]]:
    """`saga_verify(saga_id, input=FILE, check=CMD or a function, cases=[...],
    expect_failures=False, api=URL)`: runs `saga verify` against `saga_api` (or `api`) and,
    unless failures are expected, fails the test with every failing case and its problems;
    returns the results either way. A check given as a command is run by `saga verify` after
    each case; one given as a function (see `Check`) is called with each case's result."""

    def verify(saga_id: str, *, input: Optional[str] = None,
               check: Union[str, Check, None] = None, cases: Iterable[str] = (),
               expect_failures: bool = False, cli: Optional[str] = None,
               api: Optional[str] = None) -> list[dict[str, Any]]:
        results = run_verify(saga_id, api=api or saga_api.url, saga_input=input,
                             check=check if isinstance(check, str) else None, cases=cases,
                             cli=cli)
        if check is not None and not isinstance(check, str):
            results = checked(results, check)
        failed = [r for r in results if not r["passed"]]
        if failed and not expect_failures:
            raise VerifyFailed("\n".join(f"{r['case']}: {'; '.join(r['problems'])}"
                                         for r in failed))
        return results

    return verify
