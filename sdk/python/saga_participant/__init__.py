"""saga-participant: write a participant of the saga orchestrator, a team's own service that does
(and undoes) one step, in the contract saga-participant/1.

    from saga_participant import Refusal, TryAgain, wsgi_app, lambda_handler

`saga_participant.contract` holds the contract's models and names, `saga_participant.errors`
the typed errors and their wire forms, `saga_participant.participant` the helper, and
`saga_participant.testing` a pytest plugin (fixtures `participant_server` and `saga_api`).
"""

from __future__ import annotations

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
    Phase,
    Reason,
    request_schema,
)
from saga_participant.errors import (
    DeadlinePassed,
    LambdaTryAgain,
    NotThisContract,
    ParticipantError,
    PermanentError,
    Refusal,
    Refuse,
    TryAgain,
)
from saga_participant.participant import (
    NOTHING_TO_UNDO,
    InMemoryPersistence,
    Participant,
    Request,
    Work,
    WsgiApp,
    error_body,
    handle,
    lambda_handler,
    parse,
    wsgi_app,
)

__version__ = "0.1.0"

__all__ = [
    "CONTRACT",
    "CONTRACT_HEADER",
    "IDEMPOTENCY_KEY_HEADER",
    "NOTHING_TO_UNDO",
    "NOT_THIS_CONTRACT",
    "PERMANENT_ERROR",
    "TRY_AGAIN",
    "CallbackInfo",
    "DeadlinePassed",
    "ErrorInfo",
    "FanOutItem",
    "InMemoryPersistence",
    "LambdaTryAgain",
    "NotThisContract",
    "Participant",
    "ParticipantError",
    "ParticipantRequest",
    "PermanentError",
    "Phase",
    "Reason",
    "Refusal",
    "Refuse",
    "Request",
    "TryAgain",
    "Work",
    "WsgiApp",
    "error_body",
    "handle",
    "lambda_handler",
    "parse",
    "request_schema",
    "wsgi_app",
]
