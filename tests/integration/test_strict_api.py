"""Hostile and mistaken requests through the real API and MariaDB: refused with a 400 naming
what is wrong, 404 for a missing saga, and a destroyed saga can be created again."""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from chalice.test import Client

from app import app
from chalicelib.adapters.mysql import connector as mysql
from chalicelib.adapters.mysql.definitions import MySQLDefinitionStore
from chalicelib.adapters.mysql.executions import MySQLExecutionStore
from chalicelib.config import Settings
from chalicelib.domain.executions import Execution, ExecutionStatus, StepShape
from chalicelib.domain.storable import MAX_REQUEST_DEPTH
from chalicelib.domain.validation import MAX_ORDER
from tests.support.databases import own_database

API = "/api/v1/saga"
SEED = json.loads((Path(__file__).parents[1] / "fixtures" / "payment-saga.json").read_text())
HEADERS = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def test_db(settings: Settings) -> Iterator[str]:
    with own_database(settings, "test_strict") as name:
        yield name


@pytest.fixture(scope="module")
def client(test_db: str) -> Iterator[Client]:
    with Client(app, stage_name="test") as test_client:
        yield test_client


@pytest.fixture(scope="module")
def connector(settings: Settings, test_db: str) -> mysql.MySQLConnector:
    return mysql.MySQLConnector(settings.database.mysql, database=test_db)


def _post(client: Client, path: str, body: Any) -> Any:
    raw = body if isinstance(body, str) else json.dumps(body)
    return client.http.post(path, body=raw, headers=HEADERS)


def _error(response: Any) -> dict[str, Any]:
    return json.loads(response.body)["error"]


def _saga(saga_id: str) -> dict[str, Any]:
    return {**copy.deepcopy(SEED), "id": saga_id}


def _completed(connector: mysql.MySQLConnector, saga_id: str, execution_id: str) -> None:
    """A COMPLETED execution of the saga's latest version, as the machines would leave it."""
    saga = MySQLDefinitionStore(connector).get(saga_id)
    assert saga is not None
    now = datetime.now(UTC)
    store = MySQLExecutionStore(connector)
    store.create(Execution(id=execution_id, saga_id=saga_id, revision=saga.revision,
                           version=saga.version, status=ExecutionStatus.COMPLETED, input={},
                           started_at=now, updated_at=now),
                 [StepShape.of(s) for s in saga.active_steps()])


# -- compensate names its execution -------------------------------------------------------------

@pytest.mark.parametrize(("body", "says"), [
    ({"executionId": "e1"}, "'executionId'"),
    (["x"], "JSON object"),
    ({"execution_id": 1}, "execution_id"),
    ({"execution_id": "e1", "force": True}, "'force'"),
    # Row 3: these were taken for "no body" and undid the latest COMPLETED execution.
    ([], "JSON object"), (None, "JSON object"), (0, "JSON object"), (False, "JSON object"),
    ('""', "JSON object"), ({}, "field 'execution_id' is required"),
])
def test_a_compensate_body_that_names_no_execution_is_refused(
        client: Client, connector: mysql.MySQLConnector, body: Any, says: str) -> None:
    saga_id = "strict-comp"
    if client.http.get(f"{API}/sagas/{saga_id}").status_code == 404:
        assert _post(client, f"{API}/sagas", _saga(saga_id)).status_code == 201
        _completed(connector, saga_id, "strict-comp-e1")
        _completed(connector, saga_id, "strict-comp-e2")
    refused = _post(client, f"{API}/sagas/{saga_id}/compensate", body)
    assert refused.status_code == 400, refused.body
    assert says in _error(refused)["message"]
    # Nothing was compensated: both executions are still COMPLETED.
    store = MySQLExecutionStore(connector)
    for execution_id in ("strict-comp-e1", "strict-comp-e2"):
        execution = store.get(execution_id)
        assert execution is not None and execution.status is ExecutionStatus.COMPLETED


def test_compensating_a_saga_that_does_not_exist_is_404(client: Client) -> None:
    for raw in ("", json.dumps({"execution_id": "nope-e1"})):  # no body; a body naming one
        missing = client.http.post(f"{API}/sagas/no-such-saga/compensate", body=raw,
                                   headers=HEADERS)
        assert missing.status_code == 404, missing.body
        assert _error(missing)["code"] == "not_found"
    # A body that names no execution is refused as such first.
    assert _post(client, f"{API}/sagas/no-such-saga/compensate", {}).status_code == 400


# -- query parameters -----------------------------------------------------------------------------

def _cursor(after: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": after}).encode()).decode()


@pytest.mark.parametrize("query", [
    "executions?limit=%C2%B2", "executions?limit=0", "executions?limit=1e3",
    f"executions?cursor={_cursor('0001-01-01T00:00:00+01:00|x')}",
    f"executions?cursor={_cursor('9999-12-31T23:59:59-01:00|x')}",
    f"executions?cursor={_cursor('not a time|x')}", "executions?cursor=%%%",
    "executions?status=DONE", "executions?sagaId=x",
    f"sagas?cursor={_cursor('zzz-not-handed-out')}",  # row 17: forged cursors were 200
    f"executions?cursor={_cursor('2026-01-01T00:00:00+00:00|x')}",
    "sagas?limit=%C2%B2", "sagas?limit=-1", "sagas?active=maybe", "sagas?page=2",
    "sagas/strict-any?versoin=1.0.0", "sagas/strict-any/status?x=1",
])
def test_a_malformed_query_parameter_is_a_plain_400(client: Client, query: str) -> None:
    response = client.http.get(f"{API}/{query}")
    assert response.status_code == 400, (query, response.body)
    message = _error(response)["message"]
    assert "int()" not in message and "Traceback" not in message and "/" not in message.split(
        "(")[0].replace("1 to", "")


def test_a_cursor_is_honoured_only_by_the_listing_that_handed_it_out(client: Client) -> None:
    for saga_id in ("strict-page-a", "strict-page-b"):
        assert _post(client, f"{API}/sagas", _saga(saga_id)).status_code == 201
    cursor = json.loads(client.http.get(f"{API}/sagas?limit=1").body)["next_cursor"]
    assert cursor
    assert client.http.get(f"{API}/sagas?limit=1&cursor={cursor}").status_code == 200
    inner, mac = cursor.rsplit(".", 1)
    for foreign in (f"executions?cursor={cursor}",  # another listing's
                    f"sagas?cursor={inner}",  # unsigned
                    f"sagas?cursor={_cursor('strict-page-a')}.{mac}"):  # altered
        response = client.http.get(f"{API}/{foreign}")
        assert response.status_code == 400, (foreign, response.body)
        assert _error(response)["message"].startswith("invalid cursor"), foreign


# -- definitions: what no store could hold is refused when the saga is stored -------------------

@pytest.mark.parametrize(("change", "field", "says"), [
    ({"input": {"$a": "$.input.amount"}}, "steps[2].input.$a", "must not start with '$'"),
    ({"input": {"card": {"last.4": "x"}}}, "steps[2].input.card.last.4", "contain '.'"),
    ({"order": 2**63}, "steps[2].order", f"at most {MAX_ORDER}"),
    ({"order": MAX_ORDER + 1}, "steps[2].order", f"at most {MAX_ORDER}"),
])
def test_a_step_no_store_could_hold_is_a_violation(
        client: Client, change: dict[str, Any], field: str, says: str) -> None:
    definition = _saga("strict-unstorable")
    definition["steps"][2].update(change)
    refused = _post(client, f"{API}/sagas", definition)
    assert refused.status_code == 400, refused.body
    assert [(v["field"], says in v["message"]) for v in _error(refused)["violations"]] == [
        (field, True)]
    assert client.http.get(f"{API}/sagas/strict-unstorable").status_code == 404


def test_the_largest_order_is_stored_and_runs_in_mysql(
        client: Client, connector: mysql.MySQLConnector) -> None:
    definition = _saga("strict-max-order")
    definition["steps"][2]["order"] = MAX_ORDER
    created = _post(client, f"{API}/sagas", definition)
    assert created.status_code == 201, created.body
    _completed(connector, "strict-max-order", "strict-max-order-e1")  # step_runs.step_group
    execution = MySQLExecutionStore(connector).get("strict-max-order-e1")
    assert execution is not None and execution.steps[-1].group == MAX_ORDER


# -- execute: an input MySQL could not store inside its event -----------------------------------

def test_an_input_deeper_than_its_event_can_hold_is_400_naming_the_limit(
        client: Client) -> None:
    # 30 and 31 levels fit the body's limit (32) but not MariaDB inside the event: they were
    # 503 "try again". Refused before anything is stored or started.
    assert _post(client, f"{API}/sagas", _saga("strict-deep")).status_code == 201
    for depth in (MAX_REQUEST_DEPTH + 1, 31):
        deep: dict[str, Any] = {}
        for _ in range(depth - 1):
            deep = {"a": deep}
        refused = _post(client, f"{API}/sagas/strict-deep/execute", {"input": deep})
        assert refused.status_code == 400, refused.body
        assert _error(refused)["code"] == "not_storable"
        assert f"deeper than {MAX_REQUEST_DEPTH} levels, the limit" in _error(refused)["message"]


# -- a destroyed saga can come back --------------------------------------------------------------

def test_a_destroyed_saga_is_created_again_at_its_old_version(
        client: Client, connector: mysql.MySQLConnector) -> None:
    saga_id = "strict-reborn"
    first = _post(client, f"{API}/sagas", _saga(saga_id))
    assert first.status_code == 201, first.body
    _completed(connector, saga_id, "strict-reborn-e1")  # pins revision 1
    assert client.http.delete(f"{API}/sagas/{saga_id}").status_code == 204

    again = _post(client, f"{API}/sagas", _saga(saga_id))
    assert again.status_code == 201, again.body
    reborn = json.loads(again.body)
    assert reborn["version"] == SEED["version"] and reborn["revision"] == 2
    versions = json.loads(client.http.get(f"{API}/sagas/{saga_id}/versions").body)["versions"]
    assert [(v["revision"], v["version"]) for v in versions] == [(2, SEED["version"])]
    fetched = client.http.get(f"{API}/sagas/{saga_id}?version={SEED['version']}")
    assert json.loads(fetched.body)["revision"] == 2
    # The version the old execution ran still reads back by revision, for its compensation.
    pinned = MySQLDefinitionStore(connector).get_revision(saga_id, 1)
    assert pinned is not None and [s.id for s in pinned.steps] == [
        s["id"] for s in SEED["steps"]]
    # Destroyed twice, created a third time: still fine.
    assert client.http.delete(f"{API}/sagas/{saga_id}").status_code == 204
    assert _post(client, f"{API}/sagas", _saga(saga_id)).status_code == 201
