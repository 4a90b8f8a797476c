"""Steps run by a participant's own service: its Lambda, or its HTTP endpoint.

Both get the same request, the participant contract's (chalicelib/steps/contract.py): the
step's resolved input, earlier steps' results, for a compensation the action's own result or
error and the reason, and an idempotency key "<execution_id>:<step_id>:<phase>" that stays the
same across retries, so the participant can recognise a repeated delivery.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from chalicelib.saga.lifecycle import PERMANENT_ERROR, Phase
from chalicelib.steps.context import ActionFn, PermanentError, RetryableError, StepContext
from chalicelib.steps.contract import (
    CONTRACT,
    CONTRACT_HEADER,
    IDEMPOTENCY_KEY_HEADER,
    ParticipantRequest,
)


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
        reason=ctx.reason if compensating else None)  # type: ignore[arg-type]


def _payload(ctx: StepContext) -> bytes:
    return participant_request(ctx).model_dump_json().encode()


def lambda_participant(target: str, lambda_client: Callable[[], Any]) -> ActionFn:
    """Invoke the participant's Lambda (name or ARN) synchronously."""

    def run(ctx: StepContext) -> dict[str, Any]:
        response = lambda_client().invoke(FunctionName=target, InvocationType="RequestResponse",
                                          Payload=_payload(ctx))
        body = response["Payload"].read()
        result = json.loads(body) if body else None
        if response.get("FunctionError"):
            error = result if isinstance(result, dict) else {}
            message = f"{target}: {error.get('errorType', 'Error')}: {error.get('errorMessage')}"
            if error.get("errorType") == PERMANENT_ERROR:
                raise PermanentError(message)
            raise RetryableError(message)
        return result if isinstance(result, dict) else {"result": result}

    return run


def http_participant(url: str, timeout_s: float = 30.0) -> ActionFn:
    """POST to the participant's endpoint; 4xx is permanent, 5xx and timeouts are retried."""

    def run(ctx: StepContext) -> dict[str, Any]:
        request = urllib.request.Request(
            url, data=_payload(ctx), method="POST",
            headers={"Content-Type": "application/json",
                     IDEMPOTENCY_KEY_HEADER: ctx.idempotency_key, CONTRACT_HEADER: CONTRACT})
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as response:
                body = response.read()
        except urllib.error.HTTPError as error:
            detail = error.read()[:500].decode(errors="replace")
            if 400 <= error.code < 500 and error.code not in (408, 409, 425, 429):
                raise PermanentError(f"{url} answered {error.code}: {detail}") from None
            raise RetryableError(f"{url} answered {error.code}: {detail}") from None
        except (urllib.error.URLError, TimeoutError, OSError) as error:
            raise RetryableError(f"{url} is unreachable: {error}") from None
        try:
            result = json.loads(body) if body else {}
        except json.JSONDecodeError:
            result = {"body": body[:1000].decode(errors="replace")}
        return result if isinstance(result, dict) else {"result": result}

    return run
