"""saga-participant: write a participant of the saga orchestrator, a team's own service that does
(and undoes) one step, in the contract saga-participant/1.

    from saga_participant import Refusal, TryAgain, wsgi_app, lambda_handler

`saga_participant.contract` holds the contract's models and names, `saga_participant.errors`
the typed errors and their wire forms, `saga_participant.participant` the helper, and
`saga_participant.testing` a pytest plugin (fixtures `participant_server` and `saga_api`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
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

# The helper's names are imported on first use: the helper loads Powertools' idempotency (and
# with it boto3), which the contract's and the errors' users (the orchestrator's step Lambdas
# among them) do not need to pay for at import.
_HELPER = frozenset({"NOTHING_TO_UNDO", "InMemoryPersistence", "Participant", "Request", "Work",
                     "WsgiApp", "error_body", "handle", "lambda_handler", "parse", "wsgi_app"})


def __getattr__(name: str) -> Any:
    if name in _HELPER:
        from saga_participant import participant

        return getattr(participant, name)
    raise AttributeError(f"module 'saga_participant' has no attribute {name!r}")


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
