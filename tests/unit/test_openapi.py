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
