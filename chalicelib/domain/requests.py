"""What the use cases take: typed request models, whichever edge they come from (the HTTP API,
the CLI, an event trigger). An edge reads its transport's form into one of these; the use case
checks the rest (limits, what the stored state allows).

Strict: an unknown field, a value of the wrong JSON type (no coercion: "3" is not 3, 1 is not
true) or a body that is not an object is refused with a message naming the field, every wrong
field in one error. A saga's definition is a `SagaDefinition` and a step to add a
`StepDefinition` (chalicelib/domain/models.py), read by `validation.parse_definition` and
`validation.parse_step`, which list every violation the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from chalicelib.domain.errors import BadRequest
from chalicelib.domain.executions import Fault

MAX_FAULTS = 50
# The engine names an execution's runs after its id: every engine must fit this many characters
# and a suffix of its own.
MAX_EXECUTION_ID = 64
Request = TypeVar("Request", bound="RequestModel")


class RequestModel(BaseModel):
    """A use case's request: strict, and built on first use."""

    # Built on first use, not at import: a cold start pays only for the requests it serves.
    model_config = ConfigDict(extra="forbid", strict=True, defer_build=True)

    # What a valid body looks like, for the message refusing one that is not an object.
    EXAMPLE: ClassVar[str] = "{...}"


class ExecuteRequest(RequestModel):
    """Start an execution; a request with no body at all is this with its defaults."""

    EXAMPLE: ClassVar[str] = '{"input": {...}}'

    input: dict[str, Any] = Field(default_factory=dict, description=(
        "the saga's input: a JSON object of at most limits.max_input_bytes, kept by the "
        "service and passed to steps by reference"))
    execution_id: str | None = Field(default=None, description=(
        "your id for it, so a repeated request is the same execution (null or absent: the "
        "service makes one up)"))
    faults: list[Fault] = Field(default_factory=list, max_length=MAX_FAULTS, description=(
        "failures to inject (only where the stage enables fault injection)"))


class CompensateRequest(RequestModel):
    """A body names the execution to undo; only no body at all means the saga's latest
    COMPLETED one, so a mistaken body never undoes the wrong execution."""

    EXAMPLE: ClassVar[str] = ('{"execution_id": "..."}, or no body at all for the saga\'s '
                              'latest COMPLETED execution')

    execution_id: str



# A resolution's reason: at most MAX_REASON characters, at least MIN_REASON of them between
# its first and last that are not spaces (checked by the use case).
MIN_REASON, MAX_REASON = 3, 500


class ResolveRequest(RequestModel):
    """Resolve a failed or parked execution: a decision taken once, with its reason."""

    EXAMPLE: ClassVar[str] = '{"reason": "..."}'

    # At least three characters between its first and last that are not spaces.
    reason: str = Field(description=(
        f"why: what was done about it ({MIN_REASON} to {MAX_REASON} characters, surrounding "
        "spaces not counted toward the minimum)"),
        json_schema_extra={"minLength": MIN_REASON, "maxLength": MAX_REASON,
                           "pattern": r"\S[\s\S]+\S"})


class ActiveRequest(RequestModel):
    """Activate or deactivate a saga: an inactive saga cannot be executed."""

    EXAMPLE: ClassVar[str] = '{"active": true} or {"active": false}'

    active: bool


def parse_request(model: type[Request], body: Any, example: str | None = None) -> Request:
    """`body` (JSON data) as `model`; BadRequest names the first wrong field (and lists them
    all)."""
    if not isinstance(body, Mapping):
        raise BadRequest(f"the body must be a JSON object: {example or model.EXAMPLE}")
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


# -- completing a waiting step (chalicelib.usecases.steps.callbacks)

class SucceedRequest(RequestModel):
    """The callback's step succeeded: the result becomes the step's result, which later
    steps and its compensation see."""

    EXAMPLE: ClassVar[str] = '{"result": {...}}'

    result: dict[str, Any] = Field(default_factory=dict, description="the step's result")


class FailRequest(RequestModel):
    """The action failed for good, having done nothing: the saga compensates what came
    before, never retrying the step."""

    EXAMPLE: ClassVar[str] = '{"error": "PaymentDeclined", "reason": "..."}'

    error: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z][A-Za-z0-9_.\-]*$",
                       description="the error's type, as the step's error records it")
    reason: str = Field(default="", max_length=1000, description="what happened, in words")

