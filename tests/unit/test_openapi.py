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
    example = json.loads((OPENAPI_FILE.parents[2] / "tests" / "fixtures" /
                          "payment-saga.json").read_text())
    assert list(_validator("SagaDefinition").iter_errors(example)) == []


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
    assert body == {"$ref": "#/components/schemas/CompensateRequest"}
    assert COMMITTED["components"]["schemas"]["CompensateRequest"]["required"] == [
        "execution_id"] and "{}" in compensate["description"]
    step = COMMITTED["components"]["schemas"]["StepDefinition"]["properties"]
    assert step["order"]["maximum"] == MAX_ORDER == 2**31 - 1


def _validator(name: str) -> Any:
    """A JSON Schema (2020-12, OpenAPI 3.1's dialect) validator of one of the document's
    schemas, its $refs resolved."""
    from jsonschema import Draft202012Validator

    schemas = COMMITTED["components"]["schemas"]
    text = json.dumps({**schemas[name], "$defs": schemas})
    return Draft202012Validator(json.loads(text.replace("#/components/schemas/", "#/$defs/")),
                                format_checker=Draft202012Validator.FORMAT_CHECKER)


def _value_schema(prop: dict[str, Any]) -> dict[str, Any]:
    """A property that may be null: the schema of its values (its $ref followed)."""
    branches = [b for b in prop.get("anyOf", [prop]) if b != {"type": "null"}]
    assert len(branches) == 1, prop
    branch = branches[0]
    if "$ref" in branch:
        return COMMITTED["components"]["schemas"][branch["$ref"].rsplit("/", 1)[-1]]
    return branch


def test_steps_that_branch_and_fan_out_are_documented_with_their_bounds() -> None:
    saga = load_settings(environ={}).saga
    step = COMMITTED["components"]["schemas"]["StepDefinition"]["properties"]
    for field in ("when", "for_each", "max_concurrency", "tolerated_failures"):
        assert field in StepDefinition.model_fields
        assert len(step[field].get("description", "")) > 40, field
    assert "SKIPPED" in step["when"]["description"]
    assert "<step id>[<index>]" in step["for_each"]["description"]
    bounded = _value_schema(step["max_concurrency"])
    assert (bounded["minimum"], bounded["maximum"]) == (1, saga.max_fanout_concurrency)
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
    assert _value_schema(step["properties"]["status"])["enum"] == [
        status.value for status in StepStatus]
    assert "SKIPPED" in step["properties"]["status"]["description"]
    for field, keys in [("condition", {"when", "value", "operands"}),
                        ("fanout", {"items", "max_concurrency", "tolerated"}),
                        ("item", {"of", "index"})]:
        nullable = step["properties"][field]
        assert {"type": "null"} in nullable["anyOf"] and nullable["description"], field
        documented = _value_schema(nullable)
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
    from openapi_schema_validator import OAS31Validator

    schemas = COMMITTED["components"]["schemas"]
    examples = {name: schema["examples"][0] for name, schema in schemas.items()
                if "examples" in schema}
    assert set(examples) >= {"SagaDefinition", "ExecuteRequest", "Execution"}
    for name, example in examples.items():
        OAS31Validator(_resolved(schemas[name], COMMITTED)).validate(example)
    # What the service returns and reads, fitted to the schema the other way round: a
    # mistaken example is refused.
    broken = {**examples["Execution"], "status": "DONE"}
    assert not OAS31Validator(_resolved(schemas["Execution"], COMMITTED)).is_valid(broken)
    # A generated client gets a type for every status and every step.
    untyped: list[str] = []

    def walk(node: Any, where: str) -> None:
        if isinstance(node, dict):
            for key, value in (node.get("properties") or {}).items():
                if key == "status" and isinstance(value, dict) and not (
                        {"enum", "const"} & set(_value_schema(value))):
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


def test_every_field_of_the_models_read_and_answered_is_documented() -> None:
    """The schemas are the models': a field added to one is in the document, with its type."""
    from chalicelib.http.schemas import ANSWER_MODELS, PUBLIC_NAMES, REQUEST_MODELS

    schemas = COMMITTED["components"]["schemas"]
    for model in (*REQUEST_MODELS, *ANSWER_MODELS):
        name = PUBLIC_NAMES.get(model.__name__, model.__name__)
        shown = {field for field, info in model.model_fields.items() if not info.exclude}
        assert set(schemas[name]["properties"]) == shown, name
    # What the service answers has every field it writes, nulls included.
    execution = StepRun(step_id="s", position=1, status=StepStatus.PENDING)
    assert set(schemas["ExecutionStep"]["required"]) == set(execution.model_dump(mode="json"))


def test_the_document_follows_the_configured_validation_rules() -> None:
    from chalicelib.config import SagaSettings

    default = load_settings(environ={}).saga
    rules = json.loads(json.dumps(default.validation_rules))
    rules["step"]["action"]["max_length"] = 300
    rules["step"]["max_retries"]["max"] = 4
    rules["saga"]["name"]["required"] = False
    configured = SagaSettings(**{**vars(default), "validation_rules": rules,
                                 "supported_step_types": ["CheckoutStep"],
                                 "max_steps_per_saga": 7, "max_fanout_concurrency": 3})
    document = build_document(configured, app.routes)
    step = document["components"]["schemas"]["StepDefinition"]
    saga = document["components"]["schemas"]["SagaDefinition"]
    assert _value_schema(step["properties"]["action"])["maxLength"] == 300
    assert _value_schema(step["properties"]["max_retries"])["maximum"] == 4
    assert _value_schema(step["properties"]["type"])["enum"] == ["CheckoutStep"]
    assert _value_schema(step["properties"]["max_concurrency"])["maximum"] == 3
    assert saga["properties"]["steps"]["maxItems"] == 7
    assert "name" not in saga["required"] and "name" in COMMITTED["components"]["schemas"][
        "SagaDefinition"]["required"]
    # The committed document is the default configuration's.
    assert _value_schema(COMMITTED["components"]["schemas"]["StepDefinition"]["properties"][
        "type"]).get("enum") is None


def test_a_stage_serves_the_document_for_its_own_rules() -> None:
    from chalicelib.config import SagaSettings
    from chalicelib.http.openapi import stage_document

    default = load_settings(environ={}).saga
    configured = SagaSettings(**{**vars(default), "supported_saga_types": ["CheckoutSaga"]})
    served = stage_document(COMMITTED, auth_enabled=True, stage="prod", saga=configured)
    saga = served["components"]["schemas"]["SagaDefinition"]["properties"]
    assert _value_schema(saga["type"])["enum"] == ["CheckoutSaga"]
    assert served["paths"] == COMMITTED["paths"] and served["security"] == COMMITTED["security"]
    # The default rules serve exactly the committed document.
    assert stage_document(COMMITTED, auth_enabled=True, stage="prod", saga=default) == COMMITTED


def test_every_link_names_an_operation_and_fills_its_path_parameters() -> None:
    """What a client (and the stateful fuzzing) follows from a resource made to the operations
    on it: each link's target exists, each of its path parameters is filled, and each value
    is read from a field the answer's (or the request's) schema has."""
    schemas = COMMITTED["components"]["schemas"]
    operations = {op["operationId"]: (path, item, op) for path, item in COMMITTED["paths"].items()
                  for op in item.values() if isinstance(op, dict) and "operationId" in op}

    def has_field(schema: dict[str, Any], pointer: str) -> bool:
        for part in pointer.strip("/").split("/"):
            while "$ref" in schema:
                schema = schemas[schema["$ref"].rsplit("/", 1)[-1]]
            if part.isdigit():
                schema = schema["items"]
                continue
            if part not in schema.get("properties", {}):
                return False
            schema = schema["properties"][part]
        return True

    linked = 0
    for source, (_, _, operation) in operations.items():
        for status, response in operation["responses"].items():
            for name, link in response.get("links", {}).items():
                linked += 1
                _, target_item, _ = operations[link["operationId"]]
                wanted = {p["name"] for p in target_item.get("parameters", [])}
                assert set(link["parameters"]) == wanted, (source, status, name)
                for expression in link["parameters"].values():
                    where, _, pointer = expression.partition("#")
                    body = (response["content"]["application/json"]["schema"]
                            if where == "$response.body" else
                            operation["requestBody"]["content"]["application/json"]["schema"])
                    assert has_field(body, pointer), (source, name, expression)
    assert linked >= 20


def test_each_operation_documents_exactly_the_query_parameters_its_route_takes() -> None:
    from app import ROUTE_PARAMS

    checked = 0
    for (path, method), taken in ROUTE_PARAMS.items():
        operation = COMMITTED["paths"][path][method.lower()]
        documented = {p["name"] for p in operation.get("parameters", []) if p["in"] == "query"}
        assert documented == taken, f"{method} {path}"
        checked += 1
    assert checked >= 25


def test_the_document_refuses_what_the_server_refuses_at_its_edges() -> None:
    """Where the review found the two apart: an execution's error typed, a version's grammar,
    a resolution's trimmed reason, and rules that a stage turns off."""
    from chalicelib.config import SagaSettings
    from chalicelib.domain.executions import ExecutionError
    from chalicelib.domain.validation import SEMVER

    schemas = COMMITTED["components"]["schemas"]
    assert set(schemas["ExecutionError"]["properties"]) == set(ExecutionError.model_fields)
    version = _validator("SagaDefinition").schema["properties"]["version"]
    for text in ("1.0.0", "1.0.0-rc.1+b.7", "1.0.0-01", "1.0.0-.", "1.0.0-a..b", "01.0.0"):
        fits = _validator("SagaDefinition").evolve(schema=version).is_valid(text)
        assert fits is bool(SEMVER.fullmatch(text)), text
    reason = _validator("ResolveRequest")
    assert reason.is_valid({"reason": "paid by hand"})
    assert not reason.is_valid({"reason": "   a   "}) and not reason.is_valid({"reason": "ab"})
    default = load_settings(environ={}).saga
    unchecked = build_document(SagaSettings(**{**vars(default), "validation_enabled": False}),
                               app.routes)["components"]["schemas"]
    assert unchecked["SagaDefinition"]["required"] == ["steps"]
    assert unchecked["StepDefinition"]["required"] == ["id", "order"]
    assert "maxLength" not in _value_schema(unchecked["StepDefinition"]["properties"]["name"])
