"""The nesting limits the domain checks results and inputs against, measured on the real
MariaDB: a result of MAX_RESULT_DEPTH fits in the outbox's envelope, an input of
MAX_REQUEST_DEPTH in its execution and its event, and one level more does not."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pymysql
import pytest

from chalicelib.adapters.mysql.definitions import MySQLDefinitionStore
from chalicelib.adapters.mysql.executions import MySQLExecutionStore
from chalicelib.config import Settings
from chalicelib.domain.executions import Execution, ExecutionStatus, StepShape
from chalicelib.domain.lifecycle import StepKind
from chalicelib.domain.models import SagaDefinition
from chalicelib.domain.storable import (
    MAX_REQUEST_DEPTH,
    MAX_RESULT_DEPTH,
    MYSQL_MAX_JSON_DEPTH,
    RESULT_ENVELOPE_DEPTH,
    nesting_depth,
)
from chalicelib.roots import runtime
from chalicelib.usecases.ports import Actor
from infra.stack.supervisor import Supervisor
from tests.support.databases import migrated_connector

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


def test_an_input_of_the_largest_depth_is_stored_with_its_event_one_level_more_is_not(
        local_stack: Supervisor, settings: Settings) -> None:
    """What the execute path checks (check_storable): the input is stored in executions.input
    and two levels down in saga.execution.started's envelope, which is the deeper of the two."""
    with migrated_connector(settings, "saga_db_test_input_depth") as connector:
        MySQLDefinitionStore(connector).insert_version(SagaDefinition.model_validate({
            "id": "deep", "name": "deep", "description": "input depth", "version": "1.0.0",
            "steps": [{"id": "a", "order": 1, "action": "send_notification",
                       "compensation": "cancel_notification"}]}),
            expected_revision=None, actor=Actor("test"), action="create")
        store = MySQLExecutionStore(connector)

        def create(execution_id: str, depth: int) -> None:
            now = datetime.now(UTC)
            store.create(Execution(id=execution_id, saga_id="deep", revision=1,
                                   version="1.0.0", status=ExecutionStatus.RUNNING,
                                   input=_nested(depth), started_at=now, updated_at=now),
                         [StepShape(step_id="a", group=1, kind=StepKind.COMPENSATABLE)])

        create("deepest", MAX_REQUEST_DEPTH)
        stored = store.get("deepest")
        assert stored is not None and stored.input == _nested(MAX_REQUEST_DEPTH)
        with pytest.raises(pymysql.MySQLError):
            create("too-deep", MAX_REQUEST_DEPTH + 1)
        assert store.get("too-deep") is None
