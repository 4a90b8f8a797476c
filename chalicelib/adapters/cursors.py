"""Opaque pagination cursors: what a page's last item was, base64-wrapped JSON."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime


def encode_cursor(last: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": last}).encode()).decode()


def decode_cursor(cursor: str) -> str:
    try:
        after = json.loads(base64.urlsafe_b64decode(cursor.encode()))["after"]
    except (ValueError, KeyError, TypeError):
        raise ValueError("cursor is not one this API returned") from None
    if not isinstance(after, str):
        raise ValueError("cursor is not one this API returned")
    return after


def decode_time_cursor(cursor: str) -> tuple[datetime, str]:
    """(started_at in UTC, id) from a "started_at|id" cursor; ValueError for anything else,
    including times that overflow when converted to UTC (0001-01-01T00:00:00+01:00)."""
    started, separator, last_id = decode_cursor(cursor).partition("|")
    try:
        at = datetime.fromisoformat(started)
        if not separator or not last_id or at.tzinfo is None:
            raise ValueError
        return at.astimezone(UTC), last_id
    except (ValueError, OverflowError):
        raise ValueError("cursor is not one this API returned") from None
