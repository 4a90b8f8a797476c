"""The definitions API through Chalice's test client, against the real MariaDB."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from chalice.test import Client

from app import app
from chalicelib.adapters.mysql import connector as mysql
from chalicelib.adapters.mysql.definitions import MySQLDefinitionStore
from chalicelib.adapters.mysql.migrate import (
    applied,
    load_migrations,
    migrate,
)
from chalicelib.config import Settings, load_settings
from chalicelib.domain.errors import LimitReached
from chalicelib.domain.validation import parse_definition, parse_step
from chalicelib.roots.container import Container
from chalicelib.usecases.ports import Actor
from tests.support.databases import own_database

API = "/api/v1/saga"
SEED = json.loads((Path(__file__).parents[1] / "fixtures" / "payment-saga.json").read_text())
HEADERS = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def test_db(settings: Settings) -> Iterator[str]:
    with own_database(settings, "test_api") as name:
        yield name


@pytest.fixture(scope="module")
def client(test_db: str) -> Iterator[Client]:
    with Client(app, stage_name="test") as test_client:
        yield test_client


def _post(client: Client, path: str, body: Any) -> Any:
    raw = body if isinstance(body, str) else json.dumps(body)
    return client.http.post(path, body=raw, headers=HEADERS)


def _put(client: Client, path: str, body: Any) -> Any:
    return client.http.put(path, body=json.dumps(body), headers=HEADERS)


def _json(response: Any) -> Any:
    return json.loads(response.body) if response.body else None


def _saga(saga_id: str, **changes: Any) -> dict[str, Any]:
    payload = copy.deepcopy(SEED)
    payload["id"] = saga_id
    payload.update(changes)
    return payload


def _audit(settings: Settings, db: str, saga_id: str) -> list[dict[str, Any]]:
    store = MySQLDefinitionStore(mysql.MySQLConnector(settings.database.mysql, database=db))
    return store.audit_entries("saga", saga_id)


# -- create / read ------------------------------------------------------------------------------

def test_seed_example_is_created_read_listed_and_conflicts_on_repeat(client: Client) -> None:
    created = _post(client, f"{API}/sagas", SEED)
    assert created.status_code == 201, created.body
    body = _json(created)
    assert body["id"] == "payment-saga" and body["version"] == "1.0.0" and body["revision"] == 1
    assert [s["id"] for s in body["steps"]] == [s["id"] for s in SEED["steps"]]
    # Every field of the request comes back as sent.
    assert {k: body["steps"][1][k] for k in SEED["steps"][1]} == SEED["steps"][1]
    assert created.headers["Location"] == f"{API}/sagas/payment-saga?version=1.0.0"

    fetched = client.http.get(f"{API}/sagas/payment-saga")
    assert fetched.status_code == 200 and _json(fetched) == body

    listed = _json(client.http.get(f"{API}/sagas?limit=100"))
    assert "payment-saga" in [s["id"] for s in listed["items"]]

    again = _post(client, f"{API}/sagas", SEED)
    assert again.status_code == 409
    assert _json(again)["error"]["code"] == "conflict"
    assert client.http.delete(f"{API}/sagas/payment-saga").status_code == 204


def test_invalid_definition_lists_every_violation_and_writes_nothing(
    client: Client, settings: Settings, test_db: str
) -> None:
    bad = _saga("bad-saga", version="one", description="short")
    bad["steps"][0]["timeout"] = "2h"
    bad["steps"][1]["max_retries"] = 11
    response = _post(client, f"{API}/sagas", bad)
    assert response.status_code == 400
    error = _json(response)["error"]
    assert error["code"] == "validation_failed"
    got = {(v["field"], v["rule"], v["value"]) for v in error["violations"]}
    assert got == {("version", "format", "one"), ("description", "min_length", "short"),
                   ("steps[0].timeout", "max", "2h"), ("steps[1].max_retries", "max", 11)}
    assert client.http.get(f"{API}/sagas/bad-saga").status_code == 404
    assert _audit(settings, test_db, "bad-saga") == []


@pytest.mark.parametrize(("body", "headers", "status", "code"), [
    ("{not json", HEADERS, 400, "malformed_body"),
    ("", HEADERS, 400, "malformed_body"),
    ("[1, 2]", HEADERS, 400, "validation_failed"),
    ('"text"', HEADERS, 400, "validation_failed"),
])
def test_malformed_bodies_get_400(client: Client, body: str, headers: dict[str, str],
                                  status: int, code: str) -> None:
    response = client.http.post(f"{API}/sagas", body=body, headers=headers)
    assert response.status_code == status
    assert _json(response)["error"]["code"] == code


def test_wrong_content_type_gets_415(client: Client) -> None:
    response = client.http.post(f"{API}/sagas", body=json.dumps(SEED),
                                headers={"Content-Type": "text/plain"})
    assert response.status_code == 415


def test_wrong_method_gets_405(client: Client) -> None:
    assert client.http.request("PATCH", f"{API}/sagas", body=b"", headers={}).status_code == 405


def test_unknown_saga_and_version_get_404(client: Client) -> None:
    assert client.http.get(f"{API}/sagas/no-such-saga").status_code == 404
    _post(client, f"{API}/sagas", _saga("known-saga"))
    missing = client.http.get(f"{API}/sagas/known-saga?version=9.9.9")
    assert missing.status_code == 404
    assert "9.9.9" in _json(missing)["error"]["message"]


# -- versions -----------------------------------------------------------------------------------

def test_versions_are_immutable_and_pinned(client: Client, settings: Settings,
                                           test_db: str) -> None:
    assert _post(client, f"{API}/sagas", _saga("versioned")).status_code == 201

    lower = _post(client, f"{API}/sagas", _saga("versioned", version="0.9.0"))
    assert lower.status_code == 409 and "higher than 1.0.0" in _json(lower)["error"]["message"]

    newer = _saga("versioned", version="1.1.0")
    newer["steps"][0]["max_retries"] = 5
    second = _post(client, f"{API}/sagas", newer)
    assert second.status_code == 201 and _json(second)["revision"] == 2

    latest = _json(client.http.get(f"{API}/sagas/versioned"))
    assert latest["version"] == "1.1.0" and latest["steps"][0]["max_retries"] == 5
    first = _json(client.http.get(f"{API}/sagas/versioned?version=1.0.0"))
    assert first["revision"] == 1 and first["steps"][0]["max_retries"] == 3

    step = {"id": "ship-order", "name": "Ship Order", "description": "Hand the parcel over",
            "action": "create_shipment", "compensation": "cancel_shipment", "max_retries": 1,
            "timeout": "5s"}
    added = _post(client, f"{API}/sagas/versioned/steps", step)
    assert added.status_code == 201
    assert _json(added)["version"] == "1.1.1"
    assert _json(added)["steps"][-1]["order"] == 4

    removed = client.http.delete(f"{API}/sagas/versioned/steps/validate-payment")
    assert removed.status_code == 200
    assert _json(removed)["version"] == "1.1.2"
    assert "validate-payment" not in [s["id"] for s in _json(removed)["steps"]]
    assert client.http.delete(f"{API}/sagas/versioned/steps/nope").status_code == 404

    bad_step = _post(client, f"{API}/sagas/versioned/steps", {**step, "timeout": "2h"})
    assert bad_step.status_code == 400
    dup_step = _post(client, f"{API}/sagas/versioned/steps", step)
    assert dup_step.status_code == 400
    assert any(v["rule"] == "unique" for v in _json(dup_step)["error"]["violations"])

    versions = _json(client.http.get(f"{API}/sagas/versioned/versions"))["versions"]
    assert [(v["revision"], v["version"]) for v in versions] == [
        (1, "1.0.0"), (2, "1.1.0"), (3, "1.1.1"), (4, "1.1.2")]
    actions = [entry["action"] for entry in _audit(settings, test_db, "versioned")]
    assert actions == ["create", "update", "add_step", "remove_step"]


def test_removing_the_last_active_step_is_refused(client: Client) -> None:
    payload = _saga("lonely")
    payload["steps"] = payload["steps"][:1]
    assert _post(client, f"{API}/sagas", payload).status_code == 201
    response = client.http.delete(f"{API}/sagas/lonely/steps/validate-payment")
    # A well-formed request the saga's state refuses: its only step.
    assert response.status_code == 409
    assert "only step" in _json(response)["error"]["message"]
    assert _json(client.http.get(f"{API}/sagas/lonely"))["revision"] == 1


# -- list, active, destroy, stats ----------------------------------------------------------------

def test_list_paginates_and_filters(client: Client) -> None:
    ids = [f"page-{n:02d}" for n in range(7)]
    for n, saga_id in enumerate(ids):
        saga_type = "OrderSaga" if n % 2 else "PaymentSaga"
        assert _post(client, f"{API}/sagas", _saga(saga_id, type=saga_type,
                                                   active=n != 3)).status_code == 201
    seen: list[str] = []
    cursor = ""
    for _ in range(50):  # bounded: far more pages than there can be
        page = _json(client.http.get(f"{API}/sagas?limit=2&cursor={cursor}"))
        assert len(page["items"]) <= 2
        seen += [s["id"] for s in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == sorted(seen) and len(seen) == len(set(seen))
    assert set(ids) <= set(seen)

    orders = _json(client.http.get(f"{API}/sagas?type=OrderSaga&limit=100"))["items"]
    assert {s["id"] for s in orders} == {ids[1], ids[3], ids[5]}
    inactive = _json(client.http.get(f"{API}/sagas?active=false&limit=100"))["items"]
    assert [s["id"] for s in inactive if s["id"].startswith("page-")] == [ids[3]]

    for query, fragment in [("limit=0", "limit"), ("limit=101", "limit"),
                            ("active=maybe", "active"), ("cursor=garbage", "cursor")]:
        response = client.http.get(f"{API}/sagas?{query}")
        assert response.status_code == 400, query
        assert fragment in _json(response)["error"]["message"]


def test_set_active(client: Client, settings: Settings, test_db: str) -> None:
    _post(client, f"{API}/sagas", _saga("toggled"))
    off = _put(client, f"{API}/sagas/toggled/active", {"active": False})
    assert off.status_code == 200 and _json(off)["active"] is False
    assert _json(client.http.get(f"{API}/sagas/toggled"))["active"] is False
    for bad in ({"active": "no"}, {}, {"active": True, "extra": 1}, [True]):
        assert _put(client, f"{API}/sagas/toggled/active", bad).status_code == 400
    assert _put(client, f"{API}/sagas/ghost/active", {"active": True}).status_code == 404
    entry = _audit(settings, test_db, "toggled")[-1]
    assert entry["action"] == "deactivate"
    assert entry["before_state"]["active"] is True and entry["after_state"]["active"] is False
    assert entry["actor"].startswith("anonymous@")


def test_destroy(client: Client, settings: Settings, test_db: str) -> None:
    _post(client, f"{API}/sagas", _saga("doomed"))
    assert client.http.delete(f"{API}/sagas/doomed").status_code == 204
    assert client.http.get(f"{API}/sagas/doomed").status_code == 404
    assert client.http.delete(f"{API}/sagas/doomed").status_code == 404
    assert _audit(settings, test_db, "doomed")[-1]["action"] == "delete"
    # The id is free again.
    assert _post(client, f"{API}/sagas", _saga("doomed")).status_code == 201


def test_stats(client: Client) -> None:
    _post(client, f"{API}/sagas", _saga("counted"))
    one = _json(client.http.get(f"{API}/sagas/counted/stats"))
    assert one["steps"] == 3 and one["versions"] == 1 and one["active"] is True
    assert client.http.get(f"{API}/sagas/nobody/stats").status_code == 404
    every = _json(client.http.get(f"{API}/sagas/stats"))
    assert every["sagas"] >= 1 and every["steps"] >= 3
    assert every["limits"] == {"max_sagas": 1000, "max_steps": 10000}
    service = _json(client.http.get(f"{API}/stats"))
    assert service["definitions"]["sagas"] == every["sagas"]


# -- limits, auditing switch, migrations ---------------------------------------------------------

def test_limits_and_auditing_switch(settings: Settings) -> None:
    name = f"{settings.database.mysql.database}_test_limits"
    mysql.recreate_database(settings.database.mysql, name)
    try:
        limited = load_settings(environ={"SAGA__DATABASE__MYSQL__DATABASE": name,
                                         "SAGA__SAGA__MAX_SAGAS": "2",
                                         "SAGA__SAGA__MAX_STEPS": "7",
                                         "SAGA__SAGA__AUDITING_ENABLED": "false"})
        connector = mysql.MySQLConnector(limited.database.mysql)
        migrate(connector.connection())
        service = Container(limited).provide(connector=connector).definition_service
        actor = Actor("tester")
        service.create(parse_definition(_saga("one")), actor)
        service.create(parse_definition(_saga("two")), actor)
        with pytest.raises(LimitReached, match="at most 2 sagas"):
            service.create(parse_definition(_saga("three")), actor)
        step = {"id": "extra", "name": "Extra", "description": "one step too many",
                "action": "create_order", "compensation": "cancel_order", "max_retries": 0,
                "timeout": "1s"}
        service.add_step("one", parse_step(step), actor)  # 7 steps in all: at the limit
        with pytest.raises(LimitReached, match="at most 7 steps"):
            service.add_step("two", parse_step({**step, "id": "extra-2"}), actor)
        store = MySQLDefinitionStore(connector)
        assert store.audit_entries("saga", "one") == []
        connector.close()
    finally:
        mysql.drop_database(settings.database.mysql, name)


def test_migrations_apply_once(settings: Settings, test_db: str) -> None:
    conn = mysql.connect(settings.database.mysql, database=test_db)
    try:
        assert migrate(conn) == []  # the service already applied them
        assert applied(conn) == [m.number for m in load_migrations()]
    finally:
        conn.close()


def test_the_service_serves_its_openapi_document(client: Client) -> None:
    from chalicelib.http.openapi import OPENAPI_FILE, stage_document

    response = client.http.get(f"{API}/openapi.json")
    assert response.status_code == 200
    # The committed document, as a stage without auth serves it (no security requirement).
    served = _json(response)
    committed = json.loads(OPENAPI_FILE.read_text())
    assert served == stage_document(committed, auth_enabled=False, stage="test",
                                    saga=load_settings().saga)
    assert served["security"] == [] and "without auth" in served["info"]["description"]
    # The committed paths, and schemas made for this stage's rules: its max_steps_per_saga.
    assert served["paths"].keys() == committed["paths"].keys()
    steps = served["components"]["schemas"]["SagaDefinition"]["properties"]["steps"]
    assert steps["maxItems"] == load_settings().saga.max_steps_per_saga


def test_ids_differing_only_in_case_are_two_sagas(client: Client) -> None:
    upper = _post(client, f"{API}/sagas", _saga("X-CaseX"))
    assert upper.status_code == 201, upper.body
    lower = _post(client, f"{API}/sagas",
                  _saga("x-casex", version="2.0.0", steps=SEED["steps"][:1]))
    assert lower.status_code == 201, lower.body
    assert _json(lower)["revision"] == 1
    kept = _json(client.http.get(f"{API}/sagas/X-CaseX"))
    assert kept["version"] == "1.0.0" and len(kept["steps"]) == len(SEED["steps"])
    assert len(_json(client.http.get(f"{API}/sagas/x-casex"))["steps"]) == 1
    for saga_id in ("X-CaseX", "x-casex"):
        assert client.http.delete(f"{API}/sagas/{saga_id}").status_code == 204
