"""The API on 127.0.0.1, as API Gateway would serve it: Chalice's local gateway with the stage's
environment, and a 404 for unknown routes (API Gateway's default is a 403 "Missing Authentication
Token"; the deployed API maps it to 404 with a gateway response, and so does this server).
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Iterator
from typing import Any

from chalice import local
from chalice.cli.factory import CLIFactory

from infra.stack.paths import PROJECT_ROOT


class _RequestHandler(local.ChaliceRequestHandler):
    def _send_error_response(self, error: local.LocalGatewayException) -> None:
        if error.CODE == 403 and b"Missing Authentication Token" in (error.body or b""):
            path = self.path.split("?", 1)[0]
            body = json.dumps({"error": {"code": "route_not_found",
                                         "message": f"no route for {self.command} {path}"}})
            self._send_http_response(404, {"Content-Type": "application/json"}, body)
            return
        super()._send_error_response(error)

    def log_message(self, format: str, *args: Any) -> None:
        if os.environ.get("SAGA_ACCESS_LOG", "1") != "0":
            super().log_message(format, *args)


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
    return local.LocalDevServer(app, config, host, port, handler_cls=_RequestHandler)


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
