"""A local stand-in for API Gateway's WebSocket API (LocalStack's free edition has none).

Real WebSocket connections on 127.0.0.1 (ws://127.0.0.1:<port>/ws, any path) invoke the app's
own Chalice WebSocket handlers with API Gateway-shaped events; a second port serves the
`@connections` management API (POST to send, GET to describe, DELETE to hang up) that the push
code calls through boto3, exactly as it calls API Gateway on AWS.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import boto3
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from chalicelib.config import load_settings

logger = logging.getLogger(__name__)
HANDLERS = {"$connect": "ws_connect", "$default": "ws_message", "$disconnect": "ws_disconnect"}


@dataclass
class _Client:
    connection: ServerConnection
    opened: asyncio.Event = field(default_factory=asyncio.Event)
    connected_at: datetime = field(default_factory=lambda: datetime.now(UTC))


class LocalWebsocketGateway:
    def __init__(self, app: Any, *, stage: str, host: str = "127.0.0.1", ws_port: int = 8001,
                 management_port: int = 8002) -> None:
        self.app = app
        if app.websocket_api.session is None:
            # Chalice's WebSocket handlers read the region from AWS_REGION (always set in
            # Lambda) or, failing that, from this session.
            app.websocket_api.session = boto3.session.Session(
                region_name=load_settings().aws.region)
        self.stage = stage
        self.host = host
        self.ws_port = ws_port
        self.management_port = management_port
        self.clients: dict[str, _Client] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: Server | None = None
        self._ready = threading.Event()
        self._threads: list[threading.Thread] = []
        self._http: ThreadingHTTPServer | None = None

    # -- life cycle ---------------------------------------------------------------------------

    def start(self) -> LocalWebsocketGateway:
        self._http = ThreadingHTTPServer((self.host, self.management_port), _management(self))
        self.management_port = self._http.server_address[1]
        self._threads = [
            threading.Thread(target=self._run_loop, name="ws-gateway", daemon=True),
            threading.Thread(target=self._http.serve_forever, name="ws-management",
                             daemon=True)]
        for thread in self._threads:
            thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the WebSocket gateway did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._server is not None:
            self._loop.call_soon_threadsafe(self._server.close)
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
        for thread in self._threads:
            thread.join(timeout=10)

    def _run_loop(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        async with serve(self._session, self.host, self.ws_port,
                         process_request=self._connect) as server:
            self._server = server
            self.ws_port = server.sockets[0].getsockname()[1]
            self._ready.set()
            await server.wait_closed()

    # -- the WebSocket side -----------------------------------------------------------------------

    def _event(self, route: str, connection_id: str, *, body: str | None = None,
               query: dict[str, str] | None = None,
               headers: dict[str, str] | None = None) -> dict[str, Any]:
        event_type = {"$connect": "CONNECT", "$disconnect": "DISCONNECT"}.get(route, "MESSAGE")
        return {
            "requestContext": {
                "routeKey": route, "eventType": event_type, "connectionId": connection_id,
                "domainName": f"{self.host}:{self.ws_port}", "stage": self.stage,
                "apiId": "local", "requestId": str(uuid.uuid4()),
                "requestTimeEpoch": int(time.time() * 1000),
                "identity": {"sourceIp": self.host}},
            "queryStringParameters": query or None, "headers": headers or {},
            "body": body, "isBase64Encoded": False,
        }

    async def _invoke(self, route: str, event: dict[str, Any]) -> dict[str, Any]:
        handler = self.app.handler_map[HANDLERS[route]]
        result = await asyncio.get_running_loop().run_in_executor(None, handler, event, None)
        return result or {"statusCode": 200}

    async def _connect(self, connection: ServerConnection, request: Request) -> Response | None:
        connection_id = uuid.uuid4().hex[:16] + "="
        connection.saga_connection_id = connection_id  # type: ignore[attr-defined]
        self.clients[connection_id] = _Client(connection)
        # Blank values kept, as API Gateway passes them: `?saga_id=` is a filter to refuse,
        # not no filter (which would mean every event).
        query = dict(parse_qsl(urlsplit(request.path).query, keep_blank_values=True))
        headers = {k: v for k, v in request.headers.raw_items()}
        try:
            result = await self._invoke("$connect", self._event(
                "$connect", connection_id, query=query, headers=headers))
        except Exception:
            logger.exception("$connect failed")
            result = {"statusCode": 500}
        status = int(result.get("statusCode", 200))
        if status != 200:
            self.clients.pop(connection_id, None)
            body = json.dumps({"message": result.get("body") or "connection refused"}).encode()
            return Response(status, "Refused", Headers([("Content-Type", "application/json")]),
                            body)
        return None

    async def _session(self, connection: ServerConnection) -> None:
        connection_id: str = connection.saga_connection_id  # type: ignore[attr-defined]
        client = self.clients[connection_id]
        client.opened.set()
        try:
            async for message in connection:
                text = message if isinstance(message, str) else message.decode()
                try:
                    await self._invoke("$default", self._event(
                        "$default", connection_id, body=text))
                except Exception:
                    logger.exception("message handler failed")
        finally:
            self.clients.pop(connection_id, None)
            try:
                await self._invoke("$disconnect", self._event("$disconnect", connection_id))
            except Exception:
                logger.exception("$disconnect failed")

    # -- the management side (called from the HTTP thread) ---------------------------------------

    def post(self, connection_id: str, data: bytes) -> bool:
        client = self.clients.get(connection_id)
        if client is None or self._loop is None:
            return False

        async def send() -> None:
            await asyncio.wait_for(client.opened.wait(), 5)
            await client.connection.send(data.decode())

        try:
            asyncio.run_coroutine_threadsafe(send(), self._loop).result(timeout=10)
            return True
        except Exception:
            return False

    def hang_up(self, connection_id: str) -> bool:
        client = self.clients.get(connection_id)
        if client is None or self._loop is None:
            return False
        asyncio.run_coroutine_threadsafe(client.connection.close(), self._loop).result(10)
        return True


def _management(gateway: LocalWebsocketGateway) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _connection_id(self) -> str | None:
            path = urlsplit(self.path).path
            prefix = "/@connections/"
            return unquote(path[len(prefix):]) if path.startswith(prefix) else None

        def _answer(self, status: int, body: dict[str, Any] | None = None,
                    error: str | None = None) -> None:
            payload = json.dumps(body).encode() if body is not None else b""
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            if error:
                self.send_header("x-amzn-ErrorType", error)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def _gone(self) -> None:
            self._answer(410, {"message": "the connection is gone"}, error="GoneException")

        def do_POST(self) -> None:
            connection_id = self._connection_id()
            data = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if connection_id and gateway.post(connection_id, data):
                self._answer(200, {})
            else:
                self._gone()

        def do_GET(self) -> None:
            connection_id = self._connection_id()
            client = gateway.clients.get(connection_id or "")
            if client is None:
                self._gone()
                return
            self._answer(200, {"ConnectedAt": client.connected_at.isoformat(),
                               "Identity": {"SourceIp": gateway.host},
                               "LastActiveAt": datetime.now(UTC).isoformat()})

        def do_DELETE(self) -> None:
            connection_id = self._connection_id()
            if connection_id and gateway.hang_up(connection_id):
                self._answer(204)
            else:
                self._gone()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler
