"""The API on 127.0.0.1, as API Gateway would serve it: Chalice's local gateway with the stage's
environment, and a 404 for unknown routes (API Gateway's default is a 403 "Missing Authentication
Token"; the deployed API maps it to 404 with a gateway response, and so does this server).
Responses from the stage's `minimum_compression_size` bytes up are gzipped for clients that
accept it, as API Gateway does with its MinimumCompressionSize.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import threading
from collections.abc import Iterator
from typing import Any, ClassVar

from chalice import local
from chalice.cli.factory import CLIFactory

from chalicelib.domain.errors import ErrorKind
from chalicelib.http.auth import MISSING_TOKEN, TokenRejected
from chalicelib.http.http_errors import http_error
from infra.stack.paths import PROJECT_ROOT


def _error(code: str, message: str) -> str:
    return json.dumps({"error": {"code": code, "message": message}})


# A refused token, answered as the app answers Unauthenticated.
UNAUTHENTICATED, UNAUTHENTICATED_CODE = http_error(ErrorKind.UNAUTHENTICATED)


def accepts_gzip(accept_encoding: str | None) -> bool:
    """Whether an Accept-Encoding header admits gzip (named or `*`, with a q above 0)."""
    for item in (accept_encoding or "").split(","):
        name, _, params = item.strip().partition(";")
        if name.strip().lower() not in ("gzip", "*"):
            continue
        quality = params.strip().lower()
        if quality.startswith("q="):
            try:
                return float(quality[2:]) > 0
            except ValueError:
                return False
        return True
    return False


class _RequestHandler(local.ChaliceRequestHandler):
    # None: no compression (the stage sets no minimum_compression_size).
    minimum_compression_size: int | None = None
    # The app's route table (path -> method -> entry): what a 405's Allow header lists.
    handler_routes: ClassVar[dict[str, dict[str, Any]]] = {}

    def _send_http_response_with_body(self, code: int, headers: Any,
                                      body: str | bytes) -> None:
        data = body.encode("utf-8") if isinstance(body, str) else body
        threshold = self.minimum_compression_size
        if threshold is not None and len(data) >= threshold:
            headers = {**headers, "Vary": "Accept-Encoding"}
            if (accepts_gzip(self.headers.get("Accept-Encoding"))
                    and "Content-Encoding" not in headers):
                data = gzip.compress(data, compresslevel=5)
                headers["Content-Encoding"] = "gzip"
        super()._send_http_response_with_body(code, headers, data)

    def _generic_handle(self) -> None:
        # The authorizer refuses a token by raising (API Gateway's contract for a 401);
        # Chalice's local gateway would let that escape, so it is answered here.
        try:
            super()._generic_handle()
        except TokenRejected as rejected:
            self._send_http_response(UNAUTHENTICATED, {"Content-Type": "application/json"},
                                     _error(UNAUTHENTICATED_CODE, rejected.reason))

    def send_error(self, code: int, message: str | None = None,
                   explain: str | None = None) -> None:
        if code == 501:  # a method no route has (TRACE, ...): API Gateway refuses it too
            # Its body is read (and dropped): left on a kept-alive connection it would be
            # read as the start of the next request.
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            allowed = allowed_methods(self.handler_routes, self.path.split("?", 1)[0])
            self._send_http_response(405, {"Content-Type": "application/json",
                                           **({"Allow": allowed} if allowed else {})},
                                     _error("method_not_allowed",
                                            f"method {self.command} is not allowed"))
            return
        super().send_error(code, message, explain)

    # The base class binds each verb to its own _generic_handle at class creation.
    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = do_PATCH = do_OPTIONS = _generic_handle

    def _send_error_response(self, error: local.LocalGatewayException) -> None:
        body = error.body or b""
        if error.CODE == 403 and b"Missing Authentication Token" in body:
            path = self.path.split("?", 1)[0]
            self._send_http_response(404, {"Content-Type": "application/json"}, _error(
                "route_not_found", f"no route for {self.command} {path}"))
            return
        if error.CODE == 401:  # no Authorization header at all
            self._send_http_response(UNAUTHENTICATED, {"Content-Type": "application/json"},
                                     _error(UNAUTHENTICATED_CODE, MISSING_TOKEN))
            return
        super()._send_error_response(error)

    def log_message(self, format: str, *args: Any) -> None:
        if os.environ.get("SAGA_ACCESS_LOG", "1") != "0":
            super().log_message(format, *args)


class _Server(local.ThreadedHTTPServer):
    # socketserver's default backlog of 5 resets connections when dozens of callers connect
    # at once.
    request_queue_size = 128
    daemon_threads = True


def create_server(host: str = "127.0.0.1", port: int = 8000,
                  stage: str = "local") -> local.LocalDevServer:
    factory = CLIFactory(project_dir=str(PROJECT_ROOT), environ=os.environ)
    config = factory.create_config_obj(chalice_stage_name=stage)
    app = factory.load_chalice_app(config.environment_variables)
    # What chalice.local.create_local_server does, with our request handler; once per app
    # object (the app module is imported once, and a second swap would make a class cycle).
    if not isinstance(app, local.CustomLocalChalice):
        local.CustomLocalChalice.__bases__ = (local.LocalChalice, app.__class__)
        app.__class__ = local.CustomLocalChalice
    size = config.minimum_compression_size
    handler = type("RequestHandler", (_RequestHandler,), {
        "minimum_compression_size": int(size) if size not in (None, "") else None,
        "handler_routes": app.routes})
    return local.LocalDevServer(app, config, host, port, handler_cls=handler,
                                server_cls=_Server)


@contextlib.contextmanager
def running(stage: str, port: int = 0) -> Iterator[str]:
    """The API served from a thread on 127.0.0.1 (a free port by default); yields its URL."""
    server = create_server("127.0.0.1", port, stage)
    thread = threading.Thread(target=server.serve_forever, name="local-api", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server.server_address[1]}"
    finally:
        server.shutdown()
        server.server.server_close()
        thread.join(timeout=10)


def allowed_methods(routes: dict[str, dict[str, Any]], path: str) -> str:
    """What a 405 for `path` lists in its Allow header: its route's methods ("" for none)."""
    try:
        matched = local.RouteMatcher(list(routes)).match_route(path)
    except ValueError:
        return ""
    return ", ".join(sorted(routes.get(matched.route, {})))
