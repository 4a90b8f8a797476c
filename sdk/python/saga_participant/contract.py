"""The participant contract, version 1: what a team's service (an HTTP endpoint or a Lambda) is
sent for each attempt of each phase of its step, and what it may answer. Pure data.

The orchestrator builds these requests strictly (unknown fields refused); a participant reads
them leniently (`saga_participant.Request`). Its JSON Schema (`request_schema()`) is committed
in the orchestrator's repository and served by its API at
`/api/v1/saga/contracts/saga-participant-1.json`.

Written for Python 3.9 and later: pydantic evaluates these annotations, so they use
`Optional`, never `X | None`.
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field

CONTRACT = "saga-participant/1"
# HTTP participants get these headers as well as the body.
IDEMPOTENCY_KEY_HEADER = "Idempotency-Key"
CONTRACT_HEADER = "Saga-Contract"

# The error types the orchestrator reads by name. A Lambda participant's failure is reported by
# its exception's class name: PERMANENT_ERROR is never retried (a refusal), TRY_AGAIN is.
PERMANENT_ERROR = "PermanentError"
TRY_AGAIN = "TryAgain"
# A request that is not this contract (HTTP 400; on Lambda a PermanentError of this type).
NOT_THIS_CONTRACT = "NotThisContract"


class Phase(str, Enum):
    """Which half of a step an attempt runs: its action, or the compensation undoing it."""

    ACTION = "action"
    COMPENSATION = "compensation"

    # Written as its value, as Python 3.11's StrEnum is (f"{key}:{Phase.ACTION}" == "key:action").
    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ErrorInfo(_Data):
    """An error as the service records it: its type and first line, no traceback."""

    type: str
    message: Optional[str] = None


class Reason(_Data):
    """The failure that made the saga compensate."""

    step_id: Optional[str] = Field(description="the step that failed for good, if a step did")
    type: str
    message: Optional[str] = None


class CallbackInfo(_Data):
    """A callback step's action only: how the participant (or the partner it hands these to)
    completes the step later. The secret in the URLs completes this one callback and nothing
    else; each attempt gets its own."""

    id: str
    succeed_url: str = Field(description="POST {\"result\": {...}}: the step succeeded; the "
                                         "result becomes the step's result")
    fail_url: str = Field(description="POST {\"error\": \"Type\", \"reason\": \"...\"}: "
                                      "the action failed for good, having done nothing")
    heartbeat_url: str = Field(description="POST {}: still at work (a step with heartbeat "
                                           "ends unless one arrives in time)")
    expires_at: datetime = Field(description="the wait ends then (the step's timeout): a "
                                             "completion after it is refused and the step is "
                                             "compensated")
    heartbeat_seconds: Optional[int] = None


class FanOutItem(_Data):
    """A fan-out step's item: the step runs once per element of a list, each item under its
    own step_id ("<step id>[<index>]") and idempotency key."""

    step_id: str = Field(description="the fan-out step this item belongs to")
    index: int = Field(ge=0, description="the item's position in the list, from 0")
    value: Any = Field(default=None, description="the list's element this item works on")


class ParticipantRequest(_Data):
    """One attempt of one phase of one step, as the participant receives it."""

    model_config = ConfigDict(extra="forbid", frozen=True, title="saga-participant/1 request")

    contract: Literal["saga-participant/1"] = CONTRACT
    execution_id: str
    saga_id: str
    saga_version: str
    step_id: str
    phase: Phase
    attempt: int = Field(ge=1, description="1 on the first attempt of this phase")
    idempotency_key: str = Field(
        description="the same on every attempt and redelivery of this phase of this step of "
                    "this execution: <execution_id>:<step_id>:<phase>")
    deadline: datetime = Field(
        description="the orchestrator cuts the call at this moment (UTC); work not committed by "
                    "then must not be committed: the step's outcome is unknown and it will be "
                    "compensated")
    input: dict[str, Any] = Field(description="the step's input: its input mapping resolved, "
                                              "or the execution's whole input")
    results: dict[str, Any] = Field(description="what each other step that has succeeded in "
                                                "this execution returned, by step id")
    config: dict[str, Any] = Field(default_factory=dict,
                                   description="the step definition's config object")
    action_result: Optional[dict[str, Any]] = Field(
        default=None, description="compensation only: what this step's action returned; null "
                                  "when its outcome is unknown (it timed out) or it did nothing")
    action_error: Optional[ErrorInfo] = Field(
        default=None, description="compensation only: why this step's action failed, if it did")
    reason: Optional[Reason] = Field(
        default=None, description="compensation only: the failure that made the saga compensate")
    callback: Optional[CallbackInfo] = Field(
        default=None, description="a callback step's action only: answer at once to say the "
                                  "work was accepted, then complete the step through these "
                                  "URLs (or hand them to the partner that will)")
    item: Optional[FanOutItem] = Field(
        default=None, description="a fan-out step's item only: which element of the list "
                                  "this attempt works on (its compensation gets the same)")


def request_schema() -> dict[str, Any]:
    """The JSON Schema of a participant request (draft 2020-12, as pydantic writes it)."""
    schema = ParticipantRequest.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "saga-participant-1.json"
    return schema
