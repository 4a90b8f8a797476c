"""The committed OpenAPI document is valid, current, and derived from exactly the app's
routes."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from openapi_spec_validator import validate

from app import app
from chalicelib.config import load_settings
from chalicelib.http.openapi import OPENAPI_FILE, build_document

COMMITTED = json.loads(OPENAPI_FILE.read_text())


def test_the_document_is_valid_openapi_3() -> None:
    validate(COMMITTED)


def test_the_committed_document_is_current() -> None:
    assert build_document(load_settings(environ={}).saga, app.routes) == COMMITTED, \
        "chalicelib/http/openapi.json is stale: run `saga openapi`"


def test_documented_operations_are_exactly_the_routes() -> None:
    routes = {(path, method.lower()) for path, entries in app.routes.items()
              for method in entries}
    documented = {(path, method) for path, item in COMMITTED["paths"].items()
                  for method in item if method != "parameters"}
    assert documented == routes


def test_path_parameters_are_the_routes_own() -> None:
    for path, entries in app.routes.items():
        names = [p["name"] for p in COMMITTED["paths"][path].get("parameters", [])]
        for entry in entries.values():
            assert names == entry.view_args, path


def test_a_route_without_an_operation_or_an_operation_without_a_route_is_refused() -> None:
    saga = load_settings(environ={}).saga
    undocumented = SimpleNamespace(view_name="brand_new_view", view_args=[])
    with pytest.raises(ValueError, match="brand_new_view"):
        build_document(saga, {**app.routes, "/new": {"GET": undocumented}})
    without_whoami = {path: entries for path, entries in app.routes.items()
                      if not path.endswith("/whoami")}
    with pytest.raises(ValueError, match="whoami"):
        build_document(saga, without_whoami)


def test_the_seed_example_fits_the_documented_request_schema() -> None:
    from jsonschema import Draft7Validator

    schemas = COMMITTED["components"]["schemas"]
    schema = {**schemas["SagaDefinition"], "definitions": schemas}
    text = json.dumps(schema).replace("#/components/schemas/", "#/definitions/")
    example = json.loads((OPENAPI_FILE.parents[2] / "tests" / "fixtures" /
                          "payment-saga.json").read_text())
    assert list(Draft7Validator(json.loads(text)).iter_errors(example)) == []


def test_listed_executions_are_documented_without_input_or_steps() -> None:
    schemas = COMMITTED["components"]["schemas"]
    page = COMMITTED["paths"]["/api/v1/saga/executions"]["get"]["responses"]["200"]
    assert page["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ExecutionPage"}
    assert schemas["ExecutionPage"]["properties"]["items"]["items"] == {
        "$ref": "#/components/schemas/ExecutionSummary"}
    listed = schemas["ExecutionSummary"]["properties"]
    assert "input" not in listed and "steps" not in listed
    assert set(listed) == set(schemas["Execution"]["properties"]) - {"input", "steps"}


def test_what_callers_send_is_documented_as_it_is_checked() -> None:
    from chalicelib.domain.validation import MAX_ORDER

    compensate = COMMITTED["paths"]["/api/v1/saga/sagas/{saga_id}/compensate"]["post"]
    assert compensate["requestBody"]["required"] is False  # no body: the latest COMPLETED
    body = compensate["requestBody"]["content"]["application/json"]["schema"]
    assert body["required"] == ["execution_id"] and "{}" in compensate["description"]
    step = COMMITTED["components"]["schemas"]["StepDefinition"]["properties"]
    assert step["order"]["maximum"] == MAX_ORDER == 2**31 - 1
