"""The nesting limits the domain checks results against, measured on the real MariaDB: a
result of MAX_RESULT_DEPTH fits in the outbox's envelope, one level more does not."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chalicelib import runtime
from chalicelib.saga.storable import (
    MAX_RESULT_DEPTH,
    MYSQL_MAX_JSON_DEPTH,
    RESULT_ENVELOPE_DEPTH,
    nesting_depth,
)
from infra.stack.supervisor import Supervisor

pytestmark = pytest.mark.integration


def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth - 1):
        value = {"a": value}
    assert nesting_depth(value, depth + 1) == depth
    return value


def _valid(document: Any) -> bool:
    with runtime.container().connector.transaction() as cur:
        cur.execute("SELECT JSON_VALID(%s) AS ok", (json.dumps(document),))
        row = cur.fetchone()
    return bool(row and row["ok"])


def test_mariadb_takes_json_exactly_as_deep_as_the_domain_says(
        local_stack: Supervisor) -> None:
    assert _valid(_nested(MYSQL_MAX_JSON_DEPTH))
    assert not _valid(_nested(MYSQL_MAX_JSON_DEPTH + 1))


def test_a_result_of_the_largest_depth_fits_in_its_events_envelope(
        local_stack: Supervisor) -> None:
    def envelope(result: dict[str, Any]) -> dict[str, Any]:
        return {"id": "e", "type": "saga.step.succeeded", "data": {"result": result}}

    assert nesting_depth(envelope({}), 10) == 1 + RESULT_ENVELOPE_DEPTH
    assert _valid(envelope(_nested(MAX_RESULT_DEPTH)))
    assert not _valid(envelope(_nested(MAX_RESULT_DEPTH + 1)))
