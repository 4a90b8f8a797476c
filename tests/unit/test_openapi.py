"""The committed OpenAPI document is valid, current, and describes exactly the app's routes."""

from __future__ import annotations

import json

from openapi_spec_validator import validate

from app import app
from chalicelib.config import load_settings
from chalicelib.openapi import build_document
from chalicelib.runtime import OPENAPI_FILE

COMMITTED = json.loads(OPENAPI_FILE.read_text())


def test_the_document_is_valid_openapi_3() -> None:
    validate(COMMITTED)


def test_the_committed_document_is_current() -> None:
    assert build_document(load_settings(environ={}).saga) == COMMITTED, \
        "chalicelib/openapi.json is stale: run `saga openapi`"


def test_documented_operations_are_exactly_the_routes() -> None:
    routes = {(path, method.lower()) for path, entries in app.routes.items()
              for method in entries}
    documented = {(path, method) for path, item in COMMITTED["paths"].items()
                  for method in item if method != "parameters"}
    assert documented == routes


def test_the_seed_example_fits_the_documented_request_schema() -> None:
    from jsonschema import Draft7Validator

    schemas = COMMITTED["components"]["schemas"]
    schema = {**schemas["SagaDefinition"], "definitions": schemas}
    text = json.dumps(schema).replace("#/components/schemas/", "#/definitions/")
    example = json.loads((OPENAPI_FILE.parents[1] / "tests" / "fixtures" /
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
    from chalicelib.saga.validation import MAX_ORDER

    compensate = COMMITTED["paths"]["/api/v1/saga/sagas/{saga_id}/compensate"]["post"]
    assert compensate["requestBody"]["required"] is False  # no body: the latest COMPLETED
    body = compensate["requestBody"]["content"]["application/json"]["schema"]
    assert body["required"] == ["execution_id"] and "{}" in compensate["description"]
    step = COMMITTED["components"]["schemas"]["StepDefinition"]["properties"]
    assert step["order"]["maximum"] == MAX_ORDER == 2**31 - 1
