"""With auth on: every route but /health refuses a missing, expired, wrongly signed and
under-privileged token, WebSocket $connect refuses a missing one, and the audit log records
the caller. The API runs as `saga serve` does, in its own process with auth configured."""

from __future__ import annotations

import json
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from chalicelib.http.auth import Role
from chalicelib.roots import runtime
from infra.deploy.local import load_app
from tests.support.sagas import one_step_saga
from tests.support.served import Served, http, served

SECRET = "e2e-auth-secret-of-at-least-32-bytes"
RATE_LIMIT = 40
WINDOW_S = 60


def token(subject: str, roles: list[str], *, expires_in: int = 300,
          secret: str = SECRET) -> str:
    return jwt.encode({"sub": subject, "roles": roles, "exp": int(time.time()) + expires_in},
                      secret, "HS256")


def call(base: str, method: str, path: str, bearer: str | None = None,
         body: Any = None) -> tuple[int, dict[str, Any], dict[str, str]]:
    data = None if body is None and method in ("GET", "DELETE") else json.dumps(body).encode()
    answer = http(method, base + path, data,
                  {"Authorization": f"Bearer {bearer}"} if bearer is not None else None,
                  timeout_s=30)
    return answer.status, answer.json() or {}, answer.headers


@pytest.fixture(scope="module")
def secured(deployed: None) -> Iterator[Served]:
    with served({"SAGA__AUTH__ENABLED": "true", "SAGA__AUTH__HS256_SECRET": SECRET,
                 "SAGA__LIMITS__RATE_LIMIT_REQUESTS": str(RATE_LIMIT),
                 "SAGA__LIMITS__RATE_LIMIT_WINDOW_SECONDS": str(WINDOW_S)}) as api:
        yield api


def _routes() -> list[tuple[str, str, Role]]:
    load_app()
    app_module = sys.modules["app"]
    return [(path, method, role) for (path, method), role in app_module.ROUTE_ROLES.items()]


def _concrete(path: str) -> str:
    return (path.replace("{saga_id}", "no-such-saga").replace("{step_id}", "no-such-step")
            .replace("{execution_id}", "no-such-execution")
            .replace("{callback_id}", "cb_no-such-callback"))


def test_the_roles_follow_the_contract() -> None:
    roles = {(path.removeprefix("/api/v1/saga"), method): role
             for path, method, role in _routes()}
    assert roles[("/sagas", "GET")] is Role.READER
    assert roles[("/executions/{execution_id}", "GET")] is Role.READER
    assert roles[("/sagas/{saga_id}/execute", "POST")] is Role.OPERATOR
    assert roles[("/sagas/{saga_id}/compensate", "POST")] is Role.OPERATOR
    assert roles[("/executions/{execution_id}/retry-compensation", "POST")] is Role.OPERATOR
    assert roles[("/executions/{execution_id}/resolve", "POST")] is Role.OPERATOR
    assert roles[("/sagas", "POST")] is Role.ADMIN
    assert roles[("/sagas/{saga_id}", "DELETE")] is Role.ADMIN
    assert roles[("/cleanup", "POST")] is Role.ADMIN
    assert roles[("/contracts/saga-participant-1.json", "GET")] is Role.READER
    assert roles[("/executions/{execution_id}/retry-forward", "POST")] is Role.OPERATOR
    # Completing a waiting step: an approver (or a partner with the callback's own secret).
    for action in ("succeed", "fail", "heartbeat"):
        assert roles[(f"/callbacks/{{callback_id}}/{action}", "POST")] is Role.APPROVER
    # Listing and counting them: a reader.
    assert roles[("/callbacks", "GET")] is roles[("/callbacks/count", "GET")] is Role.READER
    assert len(roles) == 30  # every route but /health and the console's files


def test_every_route_refuses_bad_tokens_and_too_small_roles(secured: Served) -> None:
    base = secured.base
    names = {Role.NONE: [], Role.READER: ["reader"], Role.APPROVER: ["approver"],
             Role.OPERATOR: ["operator"], Role.ADMIN: ["admin"]}
    expired = token("eve", ["admin"], expires_in=-120)
    forged = token("eve", ["admin"], secret="not-the-secret-but-just-as-long-as-it")
    for path, method, role in _routes():
        url = _concrete(path)
        body = None if method in ("GET", "DELETE") else {}
        where = f"{method} {path}"
        status, answer, _ = call(base, method, url, None, body)
        assert status == 401 and answer["error"]["code"] == "unauthenticated", where
        assert "bearer token is required" in answer["error"]["message"], where
        status, answer, _ = call(base, method, url, expired, body)
        assert status == 401 and "expired" in answer["error"]["message"], where
        status, answer, _ = call(base, method, url, forged, body)
        assert status == 401 and "signature" in answer["error"]["message"], where
        too_small = token(f"small-{uuid.uuid4().hex[:6]}", names[Role(role - 1)])
        status, answer, _ = call(base, method, url, too_small, body)
        assert status == 403 and answer["error"]["code"] == "forbidden", where
        assert f"needs the {role.name.lower()} role" in answer["error"]["message"], where
        enough = token(f"ok-{uuid.uuid4().hex[:6]}", names[role])
        status, answer, _ = call(base, method, url, enough, body)
        assert status not in (401, 403, 429) and status < 500, (where, status, answer)
    assert call(base, "GET", "/health")[0] == 200  # no token needed


def test_the_audit_log_records_the_caller(secured: Served) -> None:
    saga_id = f"audited-{uuid.uuid4().hex[:8]}"
    status, answer, _ = call(secured.base, "POST", "/api/v1/saga/sagas",
                             token("alice", ["admin"]), one_step_saga(saga_id))
    assert status == 201, answer
    with runtime.container().connector.transaction() as cur:
        cur.execute("SELECT actor, action FROM audit_log WHERE entity_id = %s", (saga_id,))
        rows = cur.fetchall()
    assert [(row["actor"], row["action"]) for row in rows] == [("alice", "create")]


def test_websocket_connect_needs_a_token(secured: Served) -> None:
    with pytest.raises(InvalidStatus) as refused:
        connect(secured.ws, open_timeout=10).close()
    assert refused.value.response.status_code == 401
    with pytest.raises(InvalidStatus) as expired:
        connect(f"{secured.ws}?token={token('x', ['reader'], expires_in=-120)}",
                open_timeout=10).close()
    assert expired.value.response.status_code == 401
    with pytest.raises(InvalidStatus) as no_role:
        connect(f"{secured.ws}?token={token('x', ['guest'])}", open_timeout=10).close()
    assert no_role.value.response.status_code == 403
    with connect(f"{secured.ws}?token={token('watcher', ['reader'])}",
                 open_timeout=10) as websocket:
        websocket.send(json.dumps({"action": "ping"}))
        assert json.loads(websocket.recv(timeout=10))["type"] == "pong"


def test_a_caller_over_the_rate_limit_is_told_when_to_retry(secured: Served) -> None:
    hasty = token(f"hasty-{uuid.uuid4().hex[:6]}", ["reader"])
    # Windows are fixed minutes of the clock: start early in one, so that no roll-over falls
    # inside the run and the count is exact.
    into_window = time.time() % WINDOW_S
    if into_window > WINDOW_S - 10:
        time.sleep(WINDOW_S - into_window + 0.1)
    statuses = [call(secured.base, "GET", "/api/v1/saga/sagas?limit=1", hasty)
                for _ in range(RATE_LIMIT + 2)]
    codes = [status for status, _, _ in statuses]
    assert codes == [200] * RATE_LIMIT + [429, 429], codes
    _, answer, headers = next(s for s in statuses if s[0] == 429)
    assert answer["error"]["code"] == "rate_limited"
    assert 1 <= int(headers["Retry-After"]) <= 60
    # Another caller is not held back by this one.
    other = token(f"calm-{uuid.uuid4().hex[:6]}", ["reader"])
    assert call(secured.base, "GET", "/api/v1/saga/sagas?limit=1", other)[0] == 200
