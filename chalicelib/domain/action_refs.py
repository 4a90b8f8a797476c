"""How a step names who runs it: a built-in action's name, or a participant reference
("lambda:<function name or ARN>", or an https URL; plain http only to this machine, for local
participants). Pure."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

LAMBDA_PREFIX = "lambda:"
HTTP_PREFIXES = ("http://", "https://")
# AWS's pattern for Invoke's FunctionName: a name, a partial ARN or a full ARN, with an
# optional version or alias; names at most 64 characters.
LAMBDA_FUNCTION = re.compile(
    r"(arn:aws[a-zA-Z-]*:lambda:)?([a-z]{2}(-gov)?-[a-z]+-\d{1}:)?(\d{12}:)?(function:)?"
    r"[a-zA-Z0-9_-]{1,64}(:(\$LATEST|[a-zA-Z0-9_-]{1,128}))?")
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
MAX_REFERENCE = 2048


def participant_kind(action: str) -> str | None:
    """"lambda" or "http" for a participant reference, None for a built-in action name."""
    if action.startswith(LAMBDA_PREFIX) and len(action) > len(LAMBDA_PREFIX):
        return "lambda"
    if action.startswith(HTTP_PREFIXES):
        return "http"
    return None


def reference_problem(action: str) -> str | None:
    """Why a participant reference cannot be called, or None when it can."""
    kind = participant_kind(action)
    if kind == "lambda":
        if len(action) > MAX_REFERENCE or not LAMBDA_FUNCTION.fullmatch(
                action[len(LAMBDA_PREFIX):]):
            return "must be lambda:<function name or ARN> as AWS Lambda names them"
    elif kind == "http":
        try:
            url = urlsplit(action)
            host = url.hostname
        except ValueError:
            return "must be a valid URL"
        if len(action) > MAX_REFERENCE or not host or url.username or url.password:
            return "must be an https URL with a host and no credentials"
        if url.scheme != "https" and host not in LOOPBACK_HOSTS:
            return "must use https (plain http only to localhost)"
    return None
