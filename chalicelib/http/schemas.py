"""The OpenAPI document's component schemas, derived from the models the service reads and
returns: pydantic's JSON Schema of each (OpenAPI 3.1 takes JSON Schema 2020-12 as it is).

Requests are read by the domain's models (SagaDefinition, StepDefinition, ExecuteRequest, ...)
and answered with them (StoredSaga, Execution, HistoryEntry, ...) or with the edge's
(chalicelib/http/payloads.py), so a field added to a model is in the document on the next
`saga openapi`, with its type, its nullability and its description. The rules the models
leave to the configured validation (lengths, required fields, kinds) are laid over the
definitions' schemas by chalicelib/http/definition_schema.py.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, models_json_schema

from chalicelib.domain.executions import LISTED_WITHOUT, Execution, ExecutionError
from chalicelib.domain.history import HistoryEntry
from chalicelib.domain.models import SagaDefinition, StepDefinition, StoredSaga
from chalicelib.domain.open_callbacks import OpenCallbackCount, OpenCallbackList
from chalicelib.domain.requests import (
    ActiveRequest,
    CompensateRequest,
    ExecuteRequest,
    FailRequest,
    ResolveRequest,
    SucceedRequest,
)
from chalicelib.http.payloads import RESPONSE_MODELS

REF_PREFIX = "#/components/schemas/"

# What a client reads, as JSON Schema 'validation' mode: the fields it may send.
REQUEST_MODELS: tuple[type[BaseModel], ...] = (
    SagaDefinition, StepDefinition, ExecuteRequest, CompensateRequest, ActiveRequest,
    ResolveRequest, SucceedRequest, FailRequest)
# What the service answers, as 'serialization' mode: the fields it writes (bookkeeping
# excluded from dumps is left out).
ANSWER_MODELS: tuple[type[BaseModel], ...] = (
    StoredSaga, Execution, HistoryEntry, OpenCallbackList, OpenCallbackCount, *RESPONSE_MODELS)

# Answers whose serializer (which only leaves out empty values) hides their fields from
# pydantic's serialization schema: documented by the fields they read.
SHAPED_BY_SERIALIZER: tuple[type[BaseModel], ...] = (ExecutionError,)

# A model's public name where its class's name says how it is kept, not what a client gets.
PUBLIC_NAMES = {"StoredSaga": "Saga", "StepRun": "ExecutionStep",
                "OpenCallbackList": "OpenCallbackPage", "ErrorBody": "Error"}


class DocumentSchema(GenerateJsonSchema):
    """pydantic's JSON Schema (2020-12, OpenAPI 3.1's dialect) as the document writes it: no
    titles made up from field names, and an answer's every field required."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False

    def field_is_required(self, field: Any, total: bool) -> bool:
        # An answer is a model's dump, which writes every field, defaults included (a
        # TypedDict's optional keys excepted).
        if self.mode == "serialization" and field["type"] == "model-field":
            return True
        return super().field_is_required(field, total)


def model_schemas() -> dict[str, Any]:
    """Every model's schema by its public name, $refs pointing into components/schemas."""
    _, requests = models_json_schema([(m, "validation") for m in REQUEST_MODELS],
                                     ref_template=REF_PREFIX + "{model}",
                                     schema_generator=DocumentSchema)
    _, answers = models_json_schema([(m, "serialization") for m in ANSWER_MODELS],
                                    ref_template=REF_PREFIX + "{model}",
                                    schema_generator=DocumentSchema)
    schemas = dict(requests["$defs"])
    for name, schema in answers["$defs"].items():
        # Read and written alike (a stored saga's steps are definitions, an execution's faults
        # those it was started with): the request's schema, which a dump also fits.
        if name in schemas:
            if schemas[name].get("properties") != schema.get("properties"):
                raise ValueError(f"{name} is read and written in different shapes: name them")
            continue
        schemas[name] = schema
    for model in SHAPED_BY_SERIALIZER:
        schemas[model.__name__] = model.model_json_schema(
            mode="validation", ref_template=REF_PREFIX + "{model}",
            schema_generator=DocumentSchema)
    schemas = _renamed(schemas)
    for schema in schemas.values():  # a docstring's lines, as one paragraph
        if "description" in schema:
            schema["description"] = " ".join(schema["description"].split())
    schemas["ExecutionSummary"] = _listed(schemas["Execution"])
    schemas["ExecutionPage"]["properties"]["items"]["items"] = ref("ExecutionSummary")
    return schemas


def ref(name: str) -> dict[str, str]:
    return {"$ref": REF_PREFIX + name}


def _renamed(schemas: dict[str, Any]) -> dict[str, Any]:
    """The schemas under their public names, every $ref to them following."""
    text = json.dumps({PUBLIC_NAMES.get(name, name): schema
                       for name, schema in schemas.items()})
    for old, new in PUBLIC_NAMES.items():
        text = text.replace(f'"{REF_PREFIX}{old}"', f'"{REF_PREFIX}{new}"')
    renamed: dict[str, Any] = json.loads(text)
    for name, schema in renamed.items():
        if name in PUBLIC_NAMES.values():
            schema["title"] = name
    return renamed


def _listed(execution: dict[str, Any]) -> dict[str, Any]:
    """An execution as GET /executions lists it: the Execution without its input and steps."""
    return {**execution, "title": "ExecutionSummary",
            "description": "an execution as a listing shows it: no input and no steps "
                           "(GET /executions/{id} has them)",
            "required": [n for n in execution["required"] if n not in LISTED_WITHOUT],
            "properties": {name: schema for name, schema in execution["properties"].items()
                           if name not in LISTED_WITHOUT}}
