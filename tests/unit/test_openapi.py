"""The committed OpenAPI document is valid, current, and derived from exactly the app's
routes."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest
from openapi_spec_validator import validate

from app import app
from chalicelib.config import load_settings
from chalicelib.domain.executions import StepRun
from chalicelib.domain.lifecycle import StepKind, StepStatus
from chalicelib.domain.models import StepDefinition
from chalicelib.domain.validation import parse_definition
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


def _json_schema(schema: Any) -> Any:
    """OpenAPI 3.0's schema as JSON Schema: `nullable: true` is a type that also takes null."""
    if isinstance(schema, list):
        return [_json_schema(part) for part in schema]
    if not isinstance(schema, dict):
        return schema
    converted = {key: _json_schema(value) for key, value in schema.items()
                 if key != "nullable"}
    if schema.get("nullable") and "type" in schema:
        converted["type"] = [schema["type"], "null"]
    return converted


def _validator(name: str) -> Any:
    """A JSON Schema validator of one of the document's schemas (its $refs resolved)."""
    from jsonschema import Draft7Validator

    schemas = _json_schema(COMMITTED["components"]["schemas"])
    text = json.dumps({**schemas[name], "definitions": schemas})
    return Draft7Validator(json.loads(text.replace("#/components/schemas/", "#/definitions/")))


def test_steps_that_branch_and_fan_out_are_documented_with_their_bounds() -> None:
    saga = load_settings(environ={}).saga
    step = COMMITTED["components"]["schemas"]["StepDefinition"]["properties"]
    for field in ("when", "for_each", "max_concurrency", "tolerated_failures"):
        assert field in StepDefinition.model_fields
        assert len(step[field].get("description", "")) > 40, field
    assert "SKIPPED" in step["when"]["description"]
    assert "<step id>[<index>]" in step["for_each"]["description"]
    assert (step["max_concurrency"]["minimum"], step["max_concurrency"]["maximum"]) == (
        1, saga.max_fanout_concurrency)
    # A definition the service takes fits the document, and one it refuses does not.
    definition = json.loads((OPENAPI_FILE.parents[2] / "tests" / "fixtures" /
                             "payment-saga.json").read_text())
    definition["steps"][1]["when"] = '$.input.kind != "digital"'
    definition["steps"][2].update(for_each="$.input.lines", max_concurrency=4,
                                  tolerated_failures="10%", input={"line": "$.item"})
    parse_definition(definition)
    assert list(_validator("SagaDefinition").iter_errors(definition)) == []
    for tolerated, fits in [(0, True), (3, True), ("0%", True), ("100%", True),
                            ("101%", False), ("10", False), (-1, False)]:
        fanout = {**definition["steps"][2], "tolerated_failures": tolerated}
        assert _validator("StepDefinition").is_valid(fanout) is fits, tolerated


def test_an_execution_s_steps_are_documented_with_skips_and_items() -> None:
    schemas = COMMITTED["components"]["schemas"]
    assert schemas["Execution"]["properties"]["steps"]["items"] == {
        "$ref": "#/components/schemas/ExecutionStep"}
    step = schemas["ExecutionStep"]
    # Exactly what GET /executions/{id} shows of a step (the model's fields, bookkeeping out).
    shown = StepRun(step_id="s", position=1, status=StepStatus.PENDING).model_dump(mode="json")
    assert set(step["properties"]) == set(shown)
    assert step["properties"]["status"]["enum"] == [status.value for status in StepStatus]
    assert "SKIPPED" in step["properties"]["status"]["enum"]
    assert "SKIPPED" in step["properties"]["status"]["description"]
    for field, keys in [("condition", {"when", "value", "operands"}),
                        ("fanout", {"items", "max_concurrency", "tolerated"}),
                        ("item", {"of", "index"})]:
        documented = step["properties"][field]
        assert documented["nullable"] is True and documented["description"], field
        assert set(documented["properties"]) == set(documented["required"]) == keys, field
        assert all(p.get("description") for p in documented["properties"].values()), field
    # A skipped step, a fan-out and one of its items, as the API returns them, fit it.
    runs = [StepRun(step_id="ship", position=2, group=2, kind=StepKind.COMPENSATABLE,
                    status=StepStatus.SKIPPED, condition={
                        "when": '$.input.kind != "digital"', "value": False,
                        "operands": {"$.input.kind": "digital"}}),
            StepRun(step_id="reserve", position=3, status=StepStatus.SUCCEEDED,
                    result={"items": [{"r": 1}, None]},
                    fanout={"items": 2, "max_concurrency": 2, "tolerated": 1}),
            StepRun(step_id="reserve[1]", position=3, status=StepStatus.FAILED,
                    error={"type": "OutOfStock", "message": "none left"},
                    item={"of": "reserve", "index": 1})]
    for run in runs:
        assert list(_validator("ExecutionStep").iter_errors(run.model_dump(mode="json"))) == []


def test_a_saga_s_stats_are_documented_as_the_service_counts_them() -> None:
    from chalicelib.domain.validation import ValidationPolicy
    from chalicelib.testing import (
        InMemoryDefinitionStore,
        InMemoryExecutionStore,
        ScriptedEngine,
    )
    from chalicelib.usecases.definitions import DefinitionService, Limits
    from chalicelib.usecases.ports import Actor

    operation = COMMITTED["paths"]["/api/v1/saga/sagas/{saga_id}/stats"]["get"]
    assert operation["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/SagaStats"}
    schema = COMMITTED["components"]["schemas"]["SagaStats"]
    definitions = InMemoryDefinitionStore()
    service = DefinitionService(definitions, ValidationPolicy(), Limits(5, 20),
                                executions=InMemoryExecutionStore(definitions),
                                engine=ScriptedEngine())
    seed = json.loads((OPENAPI_FILE.parents[2] / "tests" / "fixtures" /
                       "payment-saga.json").read_text())
    service.create(parse_definition(seed), Actor("ops"))
    counted = {**service.saga_stats(seed["id"]), "executions": {}}
    assert set(schema["properties"]) == set(schema["required"]) == set(counted)
    for field in ("conditional_steps", "fanout_steps"):
        assert schema["properties"][field]["description"], field
    assert list(_validator("SagaStats").iter_errors(counted)) == []


def _resolved(node: Any, document: dict[str, Any]) -> Any:
    """A schema with its $refs replaced by what they name (the document has no cycles)."""
    if isinstance(node, dict):
        if "$ref" in node:
            name = node["$ref"].rsplit("/", 1)[-1]
            return _resolved(document["components"]["schemas"][name], document)
        return {key: _resolved(value, document) for key, value in node.items()}
    if isinstance(node, list):
        return [_resolved(value, document) for value in node]
    return node


def test_every_example_fits_its_schema_and_no_status_or_step_is_untyped() -> None:
    from openapi_schema_validator import OAS30Validator

    schemas = COMMITTED["components"]["schemas"]
    examples = {name: schema["example"] for name, schema in schemas.items()
                if "example" in schema}
    assert set(examples) >= {"SagaDefinition", "ExecuteRequest", "Execution"}
    for name, example in examples.items():
        OAS30Validator(_resolved(schemas[name], COMMITTED)).validate(example)
    # What the service returns and reads, fitted to the schema the other way round: a
    # mistaken example is refused.
    broken = {**examples["Execution"], "status": "DONE"}
    assert not OAS30Validator(_resolved(schemas["Execution"], COMMITTED)).is_valid(broken)
    # A generated client gets a type for every status and every step.
    untyped: list[str] = []

    def walk(node: Any, where: str) -> None:
        if isinstance(node, dict):
            for key, value in (node.get("properties") or {}).items():
                if key == "status" and isinstance(value, dict) and "enum" not in value \
                        and "$ref" not in value:
                    untyped.append(f"{where}.{key}")
                if key == "steps" and isinstance(value, dict) and \
                        value.get("type") == "array" and "$ref" not in (value.get("items") or {}):
                    untyped.append(f"{where}.{key}")
            for key, value in node.items():
                walk(value, f"{where}/{key}")
        elif isinstance(node, list):
            for index, value in enumerate(node):
                walk(value, f"{where}[{index}]")

    walk(schemas, "schemas")
    assert untyped == []
