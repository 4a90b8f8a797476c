"""A participant's HTTP endpoint as a step: the contract's request POSTed within the attempt's
deadline, and the answer judged by the late-action rule (chalicelib.domain.lifecycle).

The call is cut at the deadline, headers and body alike (every recv is bounded by the time
left); nothing follows a redirect; a 2xx counts only as a JSON object that can be stored, read
no further than saga.max_result_bytes. What is neither a clear refusal (4xx), a clear "not
done" (5xx, or nothing sent) nor such a success is an unknown outcome: the step is
compensated. Error messages name the endpoint with its secrets redacted.
"""

from __future__ import annotations

import functools
import http.client
import io
import json
import re
import socket
import ssl
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, NoReturn
from urllib.parse import urljoin, urlsplit

from chalicelib.adapters.participants.errors import parse_error
from chalicelib.adapters.participants.lambdas import request_body
from chalicelib.config import DEFAULT_MAX_RESULT_BYTES
from chalicelib.domain.contract import (
    CONTRACT,
    CONTRACT_HEADER,
    IDEMPOTENCY_KEY_HEADER,
)
from chalicelib.domain.redaction import redacted_url
from chalicelib.domain.step_context import (
    ActionFn,
    OutcomeUnknown,
    PermanentError,
    RetryableError,
    StepContext,
)
from chalicelib.domain.storable import NotStorable, check_result, json_type

# Statuses that refuse for now, not for good: retried like a 5xx.
_RETRIED_4XX = frozenset({408, 409, 425, 429})
# How much of a refusal's body its error message carries.
_DETAIL_BYTES = 500
# How much of an error answer is read: a typed error's message and details fit.
_ERROR_BYTES = 5 * 1024
# A media type ending in +json (RFC 6839), e.g. application/problem+json.
_JSON_SUFFIXED = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*\+json")
# An error's description in a message (the message is recorded and shown, one line).
_MAX_DESCRIPTION = 200


def _one_line(text: str, limit: int) -> str:
    printable = "".join(char if char.isprintable() else " " for char in text)
    return " ".join(printable.split())[:limit]


def _describe(error: BaseException) -> str:
    """The error's type and text, one line, no traceback."""
    text = str(error)
    return _one_line(f"{type(error).__name__}: {text}" if text else type(error).__name__,
                     _MAX_DESCRIPTION)


@functools.cache
def _tls_context() -> ssl.SSLContext:
    # The default context: certificates and host names verified. Built once per process.
    return ssl.create_default_context()


class _DeadlineReader(io.RawIOBase):
    """The connection's socket as http.client reads the answer from it, every recv bounded by
    the time left: a participant that drips its answer is cut at the deadline, not one socket
    timeout after each byte."""

    def __init__(self, sock: socket.socket, end: float) -> None:
        super().__init__()
        self._sock = sock
        self._end = end
        # Like http.client's own makefile: keeps the socket open while the answer is read,
        # even after the connection hands it over (an HTTP/1.0 or "Connection: close" answer).
        self._raw = sock.makefile("rb", buffering=0)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int | None:  # type: ignore[override]
        left = self._end - time.monotonic()
        if left <= 0:
            raise TimeoutError("the deadline passed")
        self._sock.settimeout(left)
        return self._raw.readinto(buffer)

    def close(self) -> None:
        if not self.closed:
            self._raw.close()
        super().close()


class _DeadlineSocket:
    """What http.client's HTTPResponse takes as its socket: it only calls makefile("rb")."""

    def __init__(self, sock: socket.socket, end: float) -> None:
        self._sock = sock
        self._end = end

    def makefile(self, mode: str) -> io.BufferedReader:
        return io.BufferedReader(_DeadlineReader(self._sock, self._end))


def _response_class(end: float) -> Callable[..., http.client.HTTPResponse]:
    def build(sock: socket.socket, *args: Any, **kwargs: Any) -> http.client.HTTPResponse:
        return http.client.HTTPResponse(_DeadlineSocket(sock, end),  # type: ignore[arg-type]
                                        *args, **kwargs)

    return build


def _left(end: float) -> float:
    return end - time.monotonic()


def _connect(url: str, where: str, end: float) -> tuple[http.client.HTTPConnection, str]:
    """An open connection and the request target; nothing sent yet, so every failure here is
    permanent (the URL) or retryable (the network), never unknown."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:
        raise PermanentError(f"{where} is not a valid URL; nothing was sent") from None
    if parts.scheme not in ("http", "https") or not host:
        raise PermanentError(f"{where} is not an http(s) URL with a host; nothing was sent")
    left = _left(end)
    if left <= 0:
        raise RetryableError(f"{where}: the deadline passed before the call; nothing was sent")
    connection: http.client.HTTPConnection
    try:
        if parts.scheme == "https":
            connection = http.client.HTTPSConnection(host, port, timeout=left,
                                                     context=_tls_context())
        else:
            connection = http.client.HTTPConnection(host, port, timeout=left)
    except (ValueError, http.client.HTTPException) as error:
        raise PermanentError(f"{where} cannot be called ({_describe(error)}); nothing was sent") \
            from None
    connection.response_class = _response_class(end)  # type: ignore[assignment]
    try:
        connection.connect()  # TCP (and TLS) with timeout = the time left
    except OSError as error:
        connection.close()
        raise RetryableError(f"could not connect to {where} ({_describe(error)}); nothing "
                             "was sent") from None
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return connection, target


def _send(connection: http.client.HTTPConnection, target: str, headers: dict[str, str],
          body: bytes, where: str, end: float) -> None:
    try:  # putrequest and putheader only buffer: a refusal here sent nothing
        connection.putrequest("POST", target)
        for name, value in headers.items():
            connection.putheader(name, value)
        connection.putheader("Content-Length", str(len(body)))
    except (ValueError, http.client.HTTPException) as error:
        raise PermanentError(f"{where} cannot be called ({_describe(error)}); nothing was "
                             "sent") from None
    left = _left(end)
    if left <= 0:
        raise RetryableError(f"{where}: the deadline passed before the call; nothing was sent")
    try:
        assert connection.sock is not None  # connect() opened it
        connection.sock.settimeout(left)
        connection.endheaders(body)
    except (OSError, http.client.HTTPException) as error:
        # Part of the request may have arrived, and a participant may act on its headers.
        raise OutcomeUnknown(f"{where}: the request was cut off while being sent "
                             f"({_describe(error)}); its outcome is unknown") from None


def _unanswered(where: str, error: BaseException) -> OutcomeUnknown:
    if isinstance(error, OSError):  # a timeout, the deadline, a reset or a closed connection
        return OutcomeUnknown(f"{where} did not answer by its deadline ({_describe(error)}); "
                              "its outcome is unknown")
    return OutcomeUnknown(f"{where} gave no valid HTTP answer ({_describe(error)}); its "
                          "outcome is unknown")


def _answer(connection: http.client.HTTPConnection, where: str, end: float,
            max_result_bytes: int) -> dict[str, Any]:
    try:
        response = connection.getresponse()
    except (OSError, http.client.HTTPException) as error:
        raise _unanswered(where, error) from None
    try:
        return _outcome(response, where, end, max_result_bytes)
    finally:
        # The answer holds the socket open (past the connection's own close) until it closes:
        # a participant still sending must see the hang-up now, not when this is collected.
        response.close()


def _outcome(response: http.client.HTTPResponse, where: str, end: float,
             max_result_bytes: int) -> dict[str, Any]:
    status = response.status
    if 200 <= status < 300:
        return _success(response, where, end, max_result_bytes)
    if 300 <= status < 400:
        location = response.getheader("Location")
        # A relative Location resolves against the (already redacted) endpoint.
        shown = _one_line(redacted_url(urljoin(where, location)), 300) if location else ""
        to = f" to {shown}" if shown else ""
        raise OutcomeUnknown(f"{where} answered a redirect ({status}){to}; redirects are not "
                             "followed, so its outcome is unknown")
    if 400 <= status < 600:
        body = _error_body(response)
        typed = parse_error(body)
        message = (f"{where} answered {status}: "
                   f"{typed.message if typed else _one_line(body, _DETAIL_BYTES)}")
        error_type, details = (typed.type, typed.details) if typed else (None, None)
        if status < 500 and status not in _RETRIED_4XX:
            raise PermanentError(message, error_type=error_type, details=details)
        # A 5xx: the participant says it did not do it.
        raise RetryableError(message, error_type=error_type, details=details)
    raise OutcomeUnknown(f"{where} answered {status}, which is not a final answer; its "
                         "outcome is unknown")


def _error_body(response: http.client.HTTPResponse) -> str:
    """The start of a refusal's body: enough for a typed error with its details (the
    contract's {"error": {...}}), never more."""
    try:
        return response.read(_ERROR_BYTES).decode(errors="replace")
    except (OSError, http.client.HTTPException) as error:
        return f"(its body could not be read: {_describe(error)})"


def _is_json(media_type: str) -> bool:
    return media_type == "application/json" or bool(_JSON_SUFFIXED.fullmatch(media_type))


def _no_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON")


def _read_body(response: http.client.HTTPResponse, limit: int, where: str) -> bytes:
    """At most `limit` bytes of the body, and never more."""
    body = bytearray()
    try:
        while len(body) < limit:
            chunk = response.read(limit - len(body))
            if not chunk:
                break
            body += chunk
    except (OSError, http.client.HTTPException) as error:
        raise _unanswered(where, error) from None
    if len(body) < limit and response.length:  # the connection closed before Content-Length
        raise OutcomeUnknown(f"{where} closed its connection {response.length} bytes short of "
                             "its answer; its outcome is unknown")
    return bytes(body)


def _success(response: http.client.HTTPResponse, where: str, end: float,
             max_result_bytes: int) -> dict[str, Any]:
    status = response.status
    if status == 204 or response.length == 0:  # http.client sets length 0 for a 204 too
        return {}
    content_type = response.getheader("Content-Type") or ""
    media_type = content_type.partition(";")[0].strip().lower()
    if not _is_json(media_type):
        shown = _one_line(media_type, 100) or "none"
        raise OutcomeUnknown(f"{where} answered {status} with content type {shown!r}, not "
                             "JSON; its outcome is unknown")
    too_large = OutcomeUnknown(f"{where} answered more than {max_result_bytes} bytes (config "
                               "saga.max_result_bytes); its outcome is unknown")
    if response.length is not None and response.length > max_result_bytes:
        raise too_large  # not read at all
    body = _read_body(response, max_result_bytes + 1, where)
    if len(body) > max_result_bytes:
        raise too_large
    late = _left(end) < 0  # every recv is bounded by the deadline; this is the last check
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise OutcomeUnknown(f"{where} answered {status} with text that is not UTF-8; its "
                             "outcome is unknown") from None
    try:
        result = json.loads(text, parse_constant=_no_constant)
    except (ValueError, RecursionError) as error:
        raise OutcomeUnknown(f"{where} answered {status} with invalid JSON "
                             f"({_describe(error)}); its outcome is unknown") from None
    if not isinstance(result, dict):
        raise OutcomeUnknown(f"{where} answered {json_type(result)}, not a JSON object; "
                             "its outcome is unknown")
    try:
        check_result(result, max_bytes=max_result_bytes)
    except NotStorable as error:
        raise OutcomeUnknown(f"{where} answered what cannot be recorded: {error.message}; its "
                             "outcome is unknown") from None
    if late:  # a success after the deadline: kept, so its compensation is sent what it did
        raise OutcomeUnknown(f"{where} answered after its deadline; its outcome is unknown",
                             result=result)
    return result


def http_participant(url: str, *,
                     max_result_bytes: int = DEFAULT_MAX_RESULT_BYTES) -> ActionFn:
    """POST the contract's request to the participant's endpoint, within the attempt's
    deadline. A 4xx is permanent; a 5xx, 408/409/425/429 or a failure before anything was sent
    is retried; anything else that is not a storable JSON object answered in time (a timeout
    after sending, a redirect, HTML, NaN, too large) is an unknown outcome, compensated."""
    where = redacted_url(url)

    def run(ctx: StepContext) -> dict[str, Any]:
        body = request_body(ctx)
        assert ctx.deadline is not None, "the runtime sets a participant's deadline"
        # Measured on the monotonic clock from here on: a wall-clock step cannot stretch it.
        end = time.monotonic() + (ctx.deadline - datetime.now(UTC)).total_seconds()
        headers = {"Content-Type": "application/json",
                   IDEMPOTENCY_KEY_HEADER: ctx.idempotency_key, CONTRACT_HEADER: CONTRACT}
        connection, target = _connect(url, where, end)
        try:
            _send(connection, target, headers, body, where, end)
            return _answer(connection, where, end, max_result_bytes)
        finally:
            connection.close()

    return run
