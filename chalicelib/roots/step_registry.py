"""Which function runs an action (the Lambda hosting it: chalicelib/roots/step_names.py)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from chalicelib.adapters.participants.http_client import http_participant
from chalicelib.adapters.participants.lambdas import lambda_participant
from chalicelib.config import DEFAULT_MAX_RESULT_BYTES
from chalicelib.domain.action_refs import LAMBDA_PREFIX, participant_kind
from chalicelib.domain.step_context import ActionFn, PermanentError


class ActionRegistry:
    def __init__(self, builtins: Mapping[str, ActionFn],
                 lambda_client: Callable[[], Any],
                 max_result_bytes: int = DEFAULT_MAX_RESULT_BYTES) -> None:
        self._builtins = builtins
        self._lambda_client = lambda_client
        # config saga.max_result_bytes: an HTTP participant's answer is read no further.
        self._max_result_bytes = max_result_bytes

    def resolve(self, action: str) -> ActionFn:
        kind = participant_kind(action)
        if kind == "lambda":
            return lambda_participant(action.removeprefix(LAMBDA_PREFIX), self._lambda_client)
        if kind == "http":
            return http_participant(action, max_result_bytes=self._max_result_bytes)
        try:
            return self._builtins[action]
        except KeyError:
            raise PermanentError(f"unknown action {action!r}") from None
