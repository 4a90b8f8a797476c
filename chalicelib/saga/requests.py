"""Request bodies of the operator routes, as strict models: an unknown field, a value of the
wrong JSON type (no coercion: "3" is not 3, 1 is not true) or a body that is not an object is
refused with a message naming the field. Data and shape only; the use cases check the rest."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from chalicelib.saga.errors import BadRequest
from chalicelib.saga.executions import Fault

MAX_FAULTS = 50
Request = TypeVar("Request", bound=BaseModel)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class ExecuteRequest(_Strict):
    input: dict[str, Any] = Field(default_factory=dict)
    execution_id: str | None = None
    faults: list[Fault] = Field(default_factory=list, max_length=MAX_FAULTS)


class CompensateRequest(_Strict):
    """A body names the execution to undo; only no body at all means the saga's latest
    COMPLETED one, so a mistaken body never undoes the wrong execution."""

    execution_id: str


COMPENSATE_EXAMPLE = ('{"execution_id": "..."}, or no body at all for the saga\'s latest '
                      'COMPLETED execution')


class ResolveRequest(_Strict):
    reason: str


class ActiveRequest(_Strict):
    active: bool


def parse_request(model: type[Request], body: Any, example: str) -> Request:
    """`body` as `model`; BadRequest names the first wrong field (and lists them all)."""
    if not isinstance(body, Mapping):
        raise BadRequest(f"the body must be a JSON object: {example}")
    try:
        return model.model_validate(body)
    except ValidationError as error:
        # Unknown fields first: a misspelt name also shows up as the right one missing.
        errors = sorted(error.errors(), key=lambda e: e["type"] != "extra_forbidden")
        problems = [_problem(e) for e in errors]
        raise BadRequest("; ".join(problems), problems=problems) from None


def _problem(error: Mapping[str, Any]) -> str:
    field = ".".join(str(part) for part in error["loc"]) or "body"
    if error["type"] == "extra_forbidden":
        return f"unknown field {field!r}"
    if error["type"] == "missing":
        return f"field {field!r} is required"
    return f"field {field!r}: {error['msg']}"
