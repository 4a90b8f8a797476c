"""The API served over real HTTP on 127.0.0.1, as `saga serve` (and `make run`) serves it."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from infra.local_api import running


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    with running("test") as url:
        yield url


def _call(url: str, method: str = "GET") -> tuple[int, Any]:
    request = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def test_the_basic_health_answers_from_the_process_alone(base_url: str) -> None:
    status, body = _call(f"{base_url}/health")
    assert status == 200, body
    assert body == {"status": "up", "service": body["service"], "version": body["version"],
                    "stage": "test"}
    assert "components" not in body


def test_the_detailed_health_answers_from_every_component(base_url: str) -> None:
    status, body = _call(f"{base_url}/api/v1/saga/health")
    assert status == 200, body
    assert set(body["components"]) == {"mysql", "mongodb", "kafka", "stepfunctions",
                                      "dead_letters"}
    assert all(c["status"] == "up" and c["latency_ms"] >= 0 for c in body["components"].values())
    assert body["stage"] == "test"


def test_unknown_routes_get_a_404_that_names_the_route(base_url: str) -> None:
    status, body = _call(f"{base_url}/api/v1/saga/nothing/here")
    assert status == 404
    assert body["error"] == {"code": "route_not_found",
                             "message": "no route for GET /api/v1/saga/nothing/here"}


def test_wrong_method_gets_405(base_url: str) -> None:
    status, _ = _call(f"{base_url}/api/v1/saga/sagas", method="PATCH")
    assert status == 405
