"""The API's bodies that no domain model already is: errors, health, the caller, a saga's
statistics and the listings' pages. The OpenAPI document derives their schemas from these
models (chalicelib/http/schemas.py), as it derives the others from the domain's.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from chalicelib.domain.executions import Execution
from chalicelib.domain.history import HistoryEntry
from chalicelib.domain.models import StoredSaga
from chalicelib.http.auth import Role

_NEXT_CURSOR = ("pass it back as `cursor` for the next page; null on the last page")


class _Payload(BaseModel):
    # Built when the document is, never at a request's import. The edge writes these bodies
    # as dicts and leaves out what a case does not have: a field with a default may be absent.
    model_config = ConfigDict(defer_build=True, json_schema_mode_override="validation")


class Violation(_Payload):
    """One fault of a request: which field, which rule, why, and the value refused."""

    field: str = Field(description="where: a field of the body (steps[2].timeout), or body")
    rule: str = Field(description="the rule it breaks: required, max_length, pattern, "
                                  "type, unknown_field, unique, ...")
    message: str
    value: Any = Field(default=None, description="the value refused, when there was one")


class ErrorDetail(_Payload):
    """What went wrong; an error may add what it is about (saga_id, execution_id, value,
    retry_after, ...)."""

    model_config = ConfigDict(extra="allow")

    code: str = Field(description=(
        "what kind of error, stable for clients to branch on: bad_request, malformed_body, "
        "validation_failed, not_storable, unauthenticated, forbidden, not_found, conflict, "
        "already_resolved, payload_too_large, too_large, limit_reached, rate_limited, "
        "internal_error, database_unavailable, orchestrator_unavailable"))
    message: str = Field(description="what is wrong, in a sentence: no traceback, no paths")
    violations: list[Violation] | None = Field(default=None, description=(
        "every fault of a refused body at once (validation_failed)"))


class ErrorBody(_Payload):
    """Every error the API answers: 4xx for the caller's request, 5xx for the service."""

    model_config = ConfigDict(title="Error")

    error: ErrorDetail


class Liveness(_Payload):
    status: Literal["up"]
    service: str
    version: str
    stage: str


class Health(_Payload):
    status: Literal["up", "down"]
    components: dict[str, Any] = Field(description="one check per component (MySQL, "
                                                   "MongoDB, Kafka, Step Functions, ...)")
    service: str | None = None
    version: str | None = None
    stage: str | None = None


class Caller(_Payload):
    subject: str
    role: str = Field(description="what the caller's token grants",
                      json_schema_extra={"enum": [role.name.lower() for role in Role]})
    auth_enabled: bool
    actions: list[str] = Field(description="the console's actions the role permits")
    websocket_url: str = Field(description="where to subscribe to live updates")


class SagaStats(_Payload):
    """A saga's latest version's shape, and its executions (the read model's summary)."""

    saga_id: str
    version: str
    revision: int
    versions: int = Field(ge=0)
    steps: int = Field(ge=0)
    active_steps: int = Field(ge=0)
    active: bool
    groups: int = Field(ge=0, description="groups of active steps: run one after another")
    parallel_groups: int = Field(ge=0, description="groups of two or more steps, run side "
                                                   "by side")
    kinds: dict[str, int] = Field(description="active steps by kind")
    pivot: str | None = Field(description="the pivot step's id, if it has one")
    conditional_steps: int = Field(ge=0, description=(
        "active steps with a when: each runs only if its condition holds, else it is "
        "SKIPPED"))
    fanout_steps: int = Field(ge=0, description=(
        "active steps with a for_each: each runs once per item of a list"))
    executions: dict[str, Any] = Field(description=(
        "its executions: how many, by status, running, success rate, the last one's start"))


class SagaPage(_Payload):
    items: list[StoredSaga]
    next_cursor: str | None = Field(description=_NEXT_CURSOR)


class ExecutionPage(_Payload):
    """A page of GET /executions: each execution without its input and steps."""

    items: list[Execution]
    next_cursor: str | None = Field(description=_NEXT_CURSOR)


class HistoryPage(_Payload):
    execution_id: str
    items: list[HistoryEntry]
    next_cursor: str | None = Field(description=_NEXT_CURSOR)


# The document's schemas of response bodies, beside the domain's own models.
RESPONSE_MODELS: tuple[type[BaseModel], ...] = (
    ErrorBody, Liveness, Health, Caller, SagaStats, SagaPage, ExecutionPage, HistoryPage)
