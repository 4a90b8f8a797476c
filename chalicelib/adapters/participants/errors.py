"""A participant's own error, as the contract lets it say one: {"error": {"type", "message",
"details"}} in an HTTP answer's body, or the errorMessage of a failed Lambda (the same object
as JSON). Read leniently: anything else keeps the text it had."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from chalicelib.domain.storable import NotStorable, check_result

# An error type as the step's record and the events keep it: a name, not prose.
_TYPE = re.compile(r"^[A-Za-z][A-Za-z0-9_.\-]{0,99}$")
_MAX_MESSAGE = 500
_MAX_DETAILS_BYTES = 4096


@dataclass(frozen=True)
class ParticipantError:
    type: str
    message: str
    details: dict[str, Any] | None = field(default=None)


def parse_error(text: str) -> ParticipantError | None:
    """The participant's typed error in `text` (a JSON object, with the error at its top or
    under "error"), or None when it says none."""
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if isinstance(value, dict) and isinstance(value.get("error"), dict):
        value = value["error"]
    if not isinstance(value, dict) or not isinstance(value.get("type"), str) \
            or not _TYPE.fullmatch(value["type"]):
        return None
    message = value.get("message")
    details = value.get("details")
    if not isinstance(details, dict) or not details:
        details = None
    elif len(json.dumps(details, default=str)) > _MAX_DETAILS_BYTES:
        details = None  # too large to keep with every event of the step
    else:
        try:
            check_result(details, max_bytes=_MAX_DETAILS_BYTES)
        except NotStorable:
            details = None
    return ParticipantError(value["type"],
                            message[:_MAX_MESSAGE] if isinstance(message, str) else "",
                            details)
