"""An HTTP participant against a real server on 127.0.0.1: whatever it does wrong (answers
late, drips, redirects, answers HTML, NaN, an array, too much) is an unknown outcome, never
"nothing happened" and never a clean success; only a refusal or a failure before anything was
sent is a PermanentError or a RetryableError."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from chalicelib.adapters.participants import http_client as participants
from chalicelib.adapters.participants.http_client import http_participant
from chalicelib.config import DEFAULT_MAX_RESULT_BYTES
from chalicelib.domain.contract import CONTRACT
from chalicelib.domain.redaction import redacted_url
from chalicelib.domain.step_context import (
    OutcomeUnknown,
    PermanentError,
    RetryableError,
    StepContext,
)
from chalicelib.roots.step_registry import ActionRegistry

HUGE_BYTES = 5_000_000
# The longest a handler waits (a slow answer, a drip): bounded, and cut by teardown.
HANDLER_WAIT_S = 3.0
# A drip's pace: each byte well within any read's timeout, so only the deadline can cut it.
DRIP_S = 0.1
# How late after its deadline a call may return.
SLACK_S = 0.5


class Recorder:
    """What the handlers saw, shared with the tests (handlers run in the server's threads)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.hits: Counter[str] = Counter()
        self.headers: dict[str, dict[str, str]] = {}
        self.bodies: dict[str, Any] = {}
        self.written: dict[str, int] = {}
        self.write_failed: dict[str, bool] = {}
        self.done: dict[str, threading.Event] = {}
        self.stop = threading.Event()

    def finished(self, path: str) -> threading.Event:
        with self.lock:
            return self.done.setdefault(path, threading.Event())


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.recorder = Recorder()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class Handler(BaseHTTPRequestHandler):
    server: Server

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep the test output clean

    def _answer(self, status: int, body: bytes, content_type: str | None = "application/json",
                extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _json(self, value: Any, status: int = 200) -> None:
        self._answer(status, json.dumps(value).encode())

    def do_POST(self) -> None:
        recorder = self.server.recorder
        path = self.path.partition("?")[0]
        raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        with recorder.lock:
            recorder.hits[path] += 1
            recorder.headers[path] = dict(self.headers.items())
            recorder.bodies[path] = json.loads(raw) if raw else None
        try:
            self._route(path)
        except OSError:  # the client hung up, as it should when an answer is cut
            pass
        finally:
            recorder.finished(path).set()

    def _route(self, path: str) -> None:
        recorder = self.server.recorder
        if path == "/ok":
            self._json({"booking": "b-1", "phase": recorder.bodies[path]["phase"]})
        elif path == "/suffixed":
            self._answer(200, b'{"ok": true}', "application/vnd.trip+json; charset=utf-8")
        elif path == "/nan":
            self._answer(200, b'{"v": NaN}')
        elif path == "/deep":
            self._answer(200, (b'{"a":' * 40) + b"1" + (b"}" * 40))
        elif path == "/keys":
            self._answer(200, b'{"$set": 1, "a.b": 2}')
        elif path == "/html":
            self._answer(200, b"<html>Bad gateway</html>", "text/html; charset=utf-8")
        elif path == "/array":
            self._answer(200, b"[1, 2]")
        elif path == "/not-utf8":
            self._answer(200, b'{"v": "\xff\xfe"}')
        elif path == "/short":
            # Content-Length promises more than is sent before the connection closes.
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "100")
            self.end_headers()
            self.wfile.write(b'{"v": 1')
        elif path in ("/huge", "/huge-stream"):
            self._huge(path, with_length=path == "/huge")
        elif path == "/302":
            port = self.server.server_address[1]
            location = f"http://user:pw@127.0.0.1:{port}/target?token=abc"
            self._answer(302, b"", None, {"Location": location})
        elif path == "/307":
            self._answer(307, b"", None, {"Location": "/target"})
        elif path == "/target":
            self._json({"followed": True})
        elif path == "/slow":
            recorder.stop.wait(HANDLER_WAIT_S)
            self._json({"late": True})
        elif path == "/drip":
            self._drip(path)
        elif path == "/drip-headers":
            self.wfile.write(b"HTTP/1.0 200 OK\r\n")
            for _ in range(int(HANDLER_WAIT_S / DRIP_S)):
                if recorder.stop.wait(DRIP_S):
                    break
                self.wfile.write(b"X")
                self.wfile.flush()
        elif path == "/refuse":
            self._answer(422, b"unknown sku\n" + b"x" * 2000, "text/plain")
        elif path == "/out-of-stock":
            self._answer(422, json.dumps({"error": {
                "type": "OutOfStock", "message": "only 2 left",
                "details": {"sku": "A-1", "left": 2, "pad": "p" * 900}}}).encode(),
                "application/json")
        elif path == "/busy-typed":
            self._answer(503, b'{"error": {"type": "WarehouseBusy", "message": "later"}}',
                         "application/json")
        elif path == "/conflict":
            self._answer(409, b"locked", "text/plain")
        elif path == "/busy":
            self._answer(503, b"try later", "text/plain")
        elif path == "/empty":
            self._answer(204, b"", None)
        elif path == "/early-hints":
            self._answer(103, b"", None)
        else:
            self._answer(404, b"no such path", "text/plain")

    def _huge(self, path: str, *, with_length: bool) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        if with_length:
            self.send_header("Content-Length", str(HUGE_BYTES))
        self.end_headers()  # HTTP/1.0 without a length: the body runs until the close
        body = b'{"v": "' + b"x" * (HUGE_BYTES - 9) + b'"}'
        written = 0
        try:
            for start in range(0, HUGE_BYTES, 64 * 1024):
                self.wfile.write(body[start:start + 64 * 1024])
                written = min(start + 64 * 1024, HUGE_BYTES)
        except OSError:
            self.server.recorder.write_failed[path] = True
            raise
        finally:
            self.server.recorder.written[path] = written

    def _drip(self, path: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "100")
        self.end_headers()
        self.wfile.flush()
        for _ in range(int(HANDLER_WAIT_S / DRIP_S)):
            if self.server.recorder.stop.wait(DRIP_S):
                break
            self.wfile.write(b" ")
            self.wfile.flush()


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    httpd = Server()
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield httpd
    finally:
        httpd.recorder.stop.set()  # cut any handler still waiting
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)
        assert not thread.is_alive()


def _ctx(seconds: float) -> StepContext:
    return StepContext(execution_id="ex-1", saga_id="trip", step_id="book", phase="action",
                       attempt=1, saga_input={"sku": "a"}, config={},
                       cursor=None,  # type: ignore[arg-type]  # a participant never uses it
                       saga_version="1.0.0",
                       deadline=datetime.now(UTC) + timedelta(seconds=seconds))


def _call(server: Server, path: str, seconds: float = 1.5,
          max_result_bytes: int = DEFAULT_MAX_RESULT_BYTES) -> dict[str, Any]:
    return http_participant(f"{server.base}{path}",
                            max_result_bytes=max_result_bytes)(_ctx(seconds))


def _unknown(server: Server, path: str, match: str, seconds: float = 1.5,
             max_result_bytes: int = DEFAULT_MAX_RESULT_BYTES) -> OutcomeUnknown:
    with pytest.raises(OutcomeUnknown, match=match) as caught:
        _call(server, path, seconds, max_result_bytes)
    message = str(caught.value)
    assert "\n" not in message and "Traceback" not in message
    assert caught.value.result is None
    return caught.value


# -- answers that are kept ---------------------------------------------------------------------

def test_a_json_object_is_the_result_and_the_request_follows_the_contract(
        server: Server) -> None:
    assert _call(server, "/ok") == {"booking": "b-1", "phase": "action"}
    headers = server.recorder.headers["/ok"]
    assert headers["Idempotency-Key"] == "ex-1:book:action"
    assert headers["Saga-Contract"] == CONTRACT
    assert headers["Content-Type"] == "application/json"
    assert server.recorder.bodies["/ok"]["step_id"] == "book"


def test_a_json_suffixed_content_type_with_a_charset_is_json(server: Server) -> None:
    assert _call(server, "/suffixed") == {"ok": True}


def test_no_content_is_an_empty_result(server: Server) -> None:
    assert _call(server, "/empty") == {}


def test_the_registry_passes_the_result_limit_on(server: Server) -> None:
    registry = ActionRegistry({}, lambda_client=lambda: None, max_result_bytes=10)
    with pytest.raises(OutcomeUnknown, match="more than 10 bytes"):
        registry.resolve(f"{server.base}/ok")(_ctx(1.5))


# -- answers that cannot be recorded -------------------------------------------------------------

@pytest.mark.parametrize(("path", "match"), [
    ("/nan", "invalid JSON .*NaN is not JSON"),
    ("/deep", "cannot be recorded: the result nests"),
    ("/keys", r"cannot be recorded: .*must not start with '\$' or contain '\.'"),
    ("/html", "content type 'text/html', not JSON"),
    ("/array", "answered an array, not a JSON object"),
    ("/not-utf8", "not UTF-8"),
    ("/short", "closed its connection 93 bytes short"),
    ("/early-hints", "answered 103, which is not a final answer"),
])
def test_an_answer_that_cannot_be_recorded_is_an_unknown_outcome(
        server: Server, path: str, match: str) -> None:
    error = _unknown(server, path, match)
    assert str(error).startswith(f"{server.base}{path}")


def test_a_huge_answer_with_a_length_is_not_read_at_all(
        server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    received = _count_received(monkeypatch)
    _unknown(server, "/huge", "more than 16384 bytes \\(config saga.max_result_bytes\\)",
             max_result_bytes=16 * 1024)
    # Only the first buffer of headers and body start: none of the body was asked for.
    assert sum(received) <= 8192
    _assert_cut_off(server, "/huge")


def test_a_huge_answer_without_a_length_is_read_one_byte_past_the_limit_and_no_further(
        server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    received = _count_received(monkeypatch)
    _unknown(server, "/huge-stream", "more than 16384 bytes", max_result_bytes=16 * 1024)
    # The limit plus one, plus the headers and at most one read-ahead buffer.
    assert 16 * 1024 + 1 <= sum(received) <= 16 * 1024 + 1 + 8192 + 1024
    _assert_cut_off(server, "/huge-stream")


def _count_received(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    received: list[int] = []
    readinto = participants._DeadlineReader.readinto

    def counting(self: participants._DeadlineReader, buffer: bytearray | memoryview) -> int:
        n = readinto(self, buffer) or 0
        received.append(n)
        return n

    monkeypatch.setattr(participants._DeadlineReader, "readinto", counting)
    return received


def _assert_cut_off(server: Server, path: str) -> None:
    # The client hung up: the server could not write the whole body.
    assert server.recorder.finished(path).wait(5)
    assert server.recorder.write_failed.get(path) is True
    assert server.recorder.written[path] < HUGE_BYTES


# -- redirects -----------------------------------------------------------------------------------

def test_a_redirect_is_never_followed(server: Server) -> None:
    port = server.server_address[1]
    error = _unknown(server, "/302", "answered a redirect \\(302\\)")
    assert f"to http://127.0.0.1:{port}/target?token=***;" in str(error)
    assert "pw" not in str(error) and "abc" not in str(error)
    _unknown(server, "/307", f"redirect \\(307\\) to http://127.0.0.1:{port}/target;")
    time.sleep(0.1)  # a followed redirect would have been recorded by now
    assert server.recorder.hits["/target"] == 0
    assert server.recorder.hits["/302"] == 1 and server.recorder.hits["/307"] == 1


# -- the deadline --------------------------------------------------------------------------------

# The drips get a few bytes in before their deadline.
@pytest.mark.parametrize(("path", "seconds"), [("/slow", 0.3), ("/drip", 0.4),
                                               ("/drip-headers", 0.4)])
def test_an_answer_not_complete_by_the_deadline_is_an_unknown_outcome(
        server: Server, path: str, seconds: float) -> None:
    started = time.monotonic()
    _unknown(server, path, "did not answer by its deadline .*; its outcome is unknown",
             seconds=seconds)
    elapsed = time.monotonic() - started
    assert seconds - 0.1 <= elapsed <= seconds + SLACK_S
    assert server.recorder.hits[path] == 1  # it was sent: that is why the outcome is unknown


def test_a_success_read_after_the_deadline_is_unknown_but_keeps_its_result(
        server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    # Every recv is bounded by the deadline, so "late" can only be the last check (before
    # connecting, before sending, after reading): make that one find the time is up.
    left = participants._left
    calls: list[float] = []

    def third_is_late(end: float) -> float:
        calls.append(end)
        return -0.001 if len(calls) == 3 else left(end)

    monkeypatch.setattr(participants, "_left", third_is_late)
    with pytest.raises(OutcomeUnknown, match="/ok answered after its deadline") as caught:
        _call(server, "/ok")
    assert caught.value.result == {"booking": "b-1", "phase": "action"}
    assert len(calls) == 3


def test_a_deadline_already_past_sends_nothing(server: Server) -> None:
    before = sum(server.recorder.hits.values())
    with pytest.raises(RetryableError, match="deadline passed before the call; nothing was"):
        _call(server, "/ok", seconds=-1)
    time.sleep(0.1)  # a request that had been sent would have been recorded by now
    assert sum(server.recorder.hits.values()) == before


def test_a_refused_connection_is_retried() -> None:
    with socket.socket() as probe:  # a port nobody listens on once closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(RetryableError, match=f"could not connect to http://127.0.0.1:{port}"
                                             "/book.*nothing was sent") as caught:
        http_participant(f"http://127.0.0.1:{port}/book?token=abc")(_ctx(1.0))
    assert "abc" not in str(caught.value) and "?token=***" in str(caught.value)


# -- refusals ------------------------------------------------------------------------------------

def test_a_4xx_is_permanent_with_at_most_500_characters_of_its_body(server: Server) -> None:
    with pytest.raises(PermanentError, match="/refuse answered 422: unknown sku x") as caught:
        _call(server, "/refuse")
    message = str(caught.value)
    detail = message.partition("answered 422: ")[2]
    assert 400 < len(detail) <= 500 and "\n" not in message


@pytest.mark.parametrize(("path", "status"), [("/busy", 503), ("/conflict", 409)])
def test_a_5xx_or_a_passing_4xx_is_retried(server: Server, path: str, status: int) -> None:
    with pytest.raises(RetryableError, match=f"{path} answered {status}: "):
        _call(server, path)


def test_a_typed_refusal_keeps_its_type_message_and_details(server: Server) -> None:
    with pytest.raises(PermanentError) as caught:
        _call(server, "/out-of-stock")
    assert caught.value.error_type == "OutOfStock"
    assert caught.value.details == {"sku": "A-1", "left": 2, "pad": "p" * 900}
    assert str(caught.value).endswith("/out-of-stock answered 422: only 2 left")


def test_a_typed_passing_fault_is_retried_under_its_type(server: Server) -> None:
    with pytest.raises(RetryableError) as caught:
        _call(server, "/busy-typed")
    assert (caught.value.error_type, caught.value.details) == ("WarehouseBusy", None)


# -- redaction -----------------------------------------------------------------------------------

def test_an_endpoint_is_named_without_its_secrets() -> None:
    assert redacted_url("http://user:pw@127.0.0.1:1/p?token=abc&x=1") == \
        "http://127.0.0.1:1/p?token=***&x=***"
    assert redacted_url("https://h.example/a?secret#frag") == "https://h.example:443/a?***"
    assert redacted_url("http://[::1]:8080") == "http://[::1]:8080/"
    assert redacted_url("http://h:notaport/p") == "<an invalid URL>"
