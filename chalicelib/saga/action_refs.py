"""How a step names who runs it: a built-in action's name, or a participant reference
("lambda:<function name or ARN>", or an http(s) URL). Pure."""

from __future__ import annotations

LAMBDA_PREFIX = "lambda:"
HTTP_PREFIXES = ("http://", "https://")


def participant_kind(action: str) -> str | None:
    """"lambda" or "http" for a participant reference, None for a built-in action name."""
    if action.startswith(LAMBDA_PREFIX) and len(action) > len(LAMBDA_PREFIX):
        return "lambda"
    if action.startswith(HTTP_PREFIXES):
        return "http"
    return None
