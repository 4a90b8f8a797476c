"""Steps run by a participant's own service: its Lambda (here), or its HTTP endpoint
(chalicelib.adapters.participants.http_client).

Both get the same request, the participant contract's (chalicelib/domain/contract.py): the
step's resolved input, earlier steps' results, for a compensation the action's own result or
error and the reason, and an idempotency key "<execution_id>:<step_id>:<phase>" that stays the
same across retries, so the participant can recognise a repeated delivery.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from chalicelib.adapters.participants.errors import parse_error
from chalicelib.domain.contract import ParticipantRequest
from chalicelib.domain.lifecycle import PERMANENT_ERROR, Phase
from chalicelib.domain.step_context import ActionFn, PermanentError, RetryableError, StepContext


def participant_request(ctx: StepContext) -> ParticipantRequest:
    """The contract's request for this attempt."""
    assert ctx.deadline is not None, "the runtime sets a participant's deadline"
    compensating = ctx.phase == Phase.COMPENSATION
    return ParticipantRequest(
        execution_id=ctx.execution_id, saga_id=ctx.saga_id, saga_version=ctx.saga_version,
        step_id=ctx.step_id, phase=Phase(ctx.phase), attempt=ctx.attempt,
        idempotency_key=ctx.idempotency_key, deadline=ctx.deadline,
        input=dict(ctx.saga_input), results={k: v for k, v in ctx.results.items()
                                             if k != ctx.step_id},
        config=dict(ctx.config),
        action_result=dict(ctx.action_result) if compensating and ctx.action_result else None,
        action_error=ctx.action_error if compensating else None,  # type: ignore[arg-type]
        reason=ctx.reason if compensating else None,  # type: ignore[arg-type]
        callback=ctx.callback,  # type: ignore[arg-type]
        item=ctx.item)  # type: ignore[arg-type]


def request_body(ctx: StepContext) -> bytes:
    return participant_request(ctx).model_dump_json().encode()


def lambda_participant(target: str, lambda_client: Callable[[], Any]) -> ActionFn:
    """Invoke the participant's Lambda (name or ARN) synchronously."""

    def run(ctx: StepContext) -> dict[str, Any]:
        response = lambda_client().invoke(FunctionName=target, InvocationType="RequestResponse",
                                          Payload=request_body(ctx))
        body = response["Payload"].read()
        try:
            result = json.loads(body) if body else None
        except ValueError:
            result = body[:200].decode(errors="replace")
        if response.get("FunctionError"):
            error = result if isinstance(result, dict) else {}
            text = str(error.get("errorMessage"))
            # The contract's typed error travels as the errorMessage's JSON.
            typed = parse_error(text)
            message = f"{target}: {error.get('errorType', 'Error')}: " + (
                typed.message if typed else text)
            kind = PermanentError if error.get("errorType") == PERMANENT_ERROR \
                else RetryableError
            raise kind(message, error_type=typed.type if typed else None,
                       details=typed.details if typed else None)
        # A handler that returns nothing answered {}; anything but a JSON object is judged by
        # the runtime (an array, a number, text: its outcome is unknown, and it is undone).
        return {} if result is None else result  # type: ignore[no-any-return]

    return run
