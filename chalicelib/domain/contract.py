"""The participant contract, version 1: what a team's service (an HTTP endpoint or a Lambda) is
sent for each attempt of each phase of its step, and what it may answer. Built-in actions get
the same facts in their StepContext.

The contract belongs to the participant SDK (`saga_participant.contract`, sdk/python/), which
teams install on their own Python; the service builds its requests with the same models. This
module names them for the service and adds where the committed JSON Schema of the request lives:
`chalicelib/domain/contract/saga-participant-1.json` (generated from the model; a test keeps the
two equal), served by the API.
"""

from __future__ import annotations

from pathlib import Path

from saga_participant.contract import (
    CONTRACT,
    CONTRACT_HEADER,
    IDEMPOTENCY_KEY_HEADER,
    NOT_THIS_CONTRACT,
    PERMANENT_ERROR,
    TRY_AGAIN,
    CallbackInfo,
    ErrorInfo,
    FanOutItem,
    ParticipantRequest,
    Reason,
    request_schema,
)

# The committed JSON Schema of the request (`saga contract` writes it; the API serves it).
CONTRACT_SCHEMA_FILE = Path(__file__).with_name("contract") / "saga-participant-1.json"

__all__ = [
    "CONTRACT",
    "CONTRACT_HEADER",
    "CONTRACT_SCHEMA_FILE",
    "IDEMPOTENCY_KEY_HEADER",
    "NOT_THIS_CONTRACT",
    "PERMANENT_ERROR",
    "TRY_AGAIN",
    "CallbackInfo",
    "ErrorInfo",
    "FanOutItem",
    "ParticipantRequest",
    "Reason",
    "request_schema",
]
