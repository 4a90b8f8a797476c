"""Opaque pagination cursors: what a page's last item was, base64-wrapped JSON."""

from __future__ import annotations

import base64
import json


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
