"""What a WebSocket client may ask to receive, parsed at the edge: the filters of its $connect
(?saga_id=, ?execution_id=, ?all=) and the messages it sends. An unknown name or an id that is
too long is refused with a message naming the field and the limit, never skipped: a skipped
filter would widen the subscription (a connection without filters receives every event)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from chalicelib.adapters.push.subscriptions import ALL

# The longest saga or execution id the API takes anywhere (its paths' maxLength; a chosen
# execution_id is at most 64): a longer filter could never match an event.
MAX_ID_LENGTH = 100
CONNECT_FIELDS = ("saga_id", "execution_id", "all")
ACTION = "action"  # a field name, not a phase
MESSAGE_FIELDS = (ACTION, "saga_id", "execution_id", "all")
ACTIONS = ("subscribe", "unsubscribe", "ping")
MESSAGE_EXAMPLE = '{"action": "subscribe", "saga_id": "payment-saga"}'


@dataclass(frozen=True)
class Problem:
    field: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message}


class FilterRefused(ValueError):
    """A $connect query or a message that asks for something this API does not offer."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        self.message = "; ".join(problem.message for problem in problems)
        super().__init__(self.message)


class _Filters(BaseModel):
    saga_id: str | None = Field(default=None, min_length=1, max_length=MAX_ID_LENGTH)
    execution_id: str | None = Field(default=None, min_length=1, max_length=MAX_ID_LENGTH)

    def named_topics(self) -> list[str]:
        """Exact topics (never prefixes): "saga:<id>", "execution:<id>"."""
        topics = []
        if self.saga_id is not None:
            topics.append(f"saga:{self.saga_id}")
        if self.execution_id is not None:
            topics.append(f"execution:{self.execution_id}")
        return topics


class ConnectQuery(_Filters):
    """?saga_id=, ?execution_id=, ?all=true|false, and ?token= (the bearer token, which
    websocket_caller reads: browsers cannot set headers on a WebSocket)."""

    model_config = ConfigDict(extra="forbid", strict=True)
    all: Literal["true", "false", "1", "0"] | None = None
    token: str | None = None

    @property
    def is_default(self) -> bool:
        """No filter at all: every event, until the connection's first subscribe."""
        return self.all is None and not self.named_topics()

    def topics(self) -> list[str]:
        if self.is_default:
            return [ALL]
        # ?all=false alone opens with no topics, for a client that subscribes by message
        # and must not see anything before.
        return ([ALL] if self.all in ("true", "1") else []) + self.named_topics()


class ClientMessage(_Filters):
    model_config = ConfigDict(extra="forbid", strict=True)
    action: Literal["subscribe", "unsubscribe", "ping"]
    all: bool | None = None

    def topics(self) -> list[str]:
        return ([ALL] if self.all else []) + self.named_topics()


def parse_connect(query: Mapping[str, Any] | None) -> ConnectQuery:
    try:
        return ConnectQuery.model_validate(dict(query or {}))
    except ValidationError as error:
        raise FilterRefused(_problems(error, "filter", CONNECT_FIELDS)) from None


def parse_message(body: str | None) -> ClientMessage:
    try:
        request = json.loads(body or "")
    except (TypeError, json.JSONDecodeError):
        raise FilterRefused([Problem("body", f"messages are JSON objects such as "
                                             f"{MESSAGE_EXAMPLE}")]) from None
    if not isinstance(request, dict):
        raise FilterRefused([Problem("body", f"a message is a JSON object such as "
                                             f"{MESSAGE_EXAMPLE}")])
    try:
        message = ClientMessage.model_validate(request)
    except ValidationError as error:
        raise FilterRefused(_problems(error, "field", MESSAGE_FIELDS)) from None
    if message.action != "ping" and not message.topics():
        raise FilterRefused([Problem(ACTION, f"{message.action} needs saga_id, "
                                             "execution_id or all: true")])
    return message


def _problems(error: ValidationError, kind: str, known: tuple[str, ...]) -> list[Problem]:
    # Unknown names first: a misspelt filter is the likeliest mistake.
    errors = sorted(error.errors(), key=lambda e: e["type"] != "extra_forbidden")
    return [_problem(e, kind, known) for e in errors]


def _problem(error: Mapping[str, Any], kind: str, known: tuple[str, ...]) -> Problem:
    name = ".".join(str(part) for part in error["loc"]) or "body"
    shown = name if len(name) <= 40 else f"{name[:40]}..."  # the client's text, bounded
    kind_of = error["type"]
    if kind_of == "extra_forbidden":
        return Problem(shown, f"unknown {kind} {shown!r}: only {', '.join(known)}")
    if name == ACTION:
        what = "is required" if kind_of == "missing" else "must be"
        return Problem(name, f"action {what} one of {', '.join(ACTIONS)}")
    if name == "all":
        return Problem(name, "all must be true or false")
    if kind_of == "string_too_long":
        # The length, not the value: it may be 100,000 characters.
        return Problem(name, f"{name} must be at most {MAX_ID_LENGTH} characters "
                             f"(it has {len(error['input'])})")
    if kind_of == "string_too_short":
        return Problem(name, f"{name} must not be empty")
    if kind_of == "string_type":
        return Problem(name, f"{name} must be a string of at most {MAX_ID_LENGTH} characters")
    return Problem(name, f"{name}: {error['msg']}")
