"""Steps run by a participant's own service: its Lambda, or its HTTP endpoint.

Both get the same request: {execution_id, saga_id, step_id, phase, attempt, input, config},
and an idempotency key "<execution_id>:<step_id>:<phase>" that stays the same across retries,
so the participant can recognise a repeated delivery.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from chalicelib.saga.lifecycle import PERMANENT_ERROR
from chalicelib.steps.context import ActionFn, PermanentError, RetryableError, StepContext


def idempotency_key(ctx: StepContext) -> str:
    return f"{ctx.execution_id}:{ctx.step_id}:{ctx.phase}"


def _request(ctx: StepContext) -> dict[str, Any]:
    return {"execution_id": ctx.execution_id, "saga_id": ctx.saga_id, "step_id": ctx.step_id,
            "phase": ctx.phase, "attempt": ctx.attempt, "input": dict(ctx.saga_input),
            "config": dict(ctx.config), "idempotency_key": idempotency_key(ctx)}


def lambda_participant(target: str, lambda_client: Callable[[], Any]) -> ActionFn:
    """Invoke the participant's Lambda (name or ARN) synchronously."""

    def run(ctx: StepContext) -> dict[str, Any]:
        response = lambda_client().invoke(FunctionName=target, InvocationType="RequestResponse",
                                          Payload=json.dumps(_request(ctx)).encode())
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
            url, data=json.dumps(_request(ctx)).encode(), method="POST",
            headers={"Content-Type": "application/json",
                     "Idempotency-Key": idempotency_key(ctx)})
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
