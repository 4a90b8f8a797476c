"""Opaque pagination cursors: what a page's last item was, base64-wrapped JSON.

The stores make and read the inner cursor; the API hands it out sealed (`CursorSeal`): with
an HMAC over the listing it came from, so a forged cursor, a tampered one, or one of another
listing is refused instead of paging from wherever it points.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

_MAC_BYTES = 16  # 128 bits: unguessable, and short in a URL


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


def derive_key(material: Iterable[str]) -> bytes:
    """A key from a deployment's own secrets (no two deployments share them), for when none
    is configured; every container of the deployment derives the same one."""
    return hmac.new(b"saga-orchestrator/cursor/1", json.dumps(list(material)).encode(),
                    hashlib.sha256).digest()


@dataclass(frozen=True)
class CursorSeal:
    """Seals a store's cursor for the listing that made it ("sagas", "executions"), and opens
    only cursors it sealed for that same listing."""

    key: bytes

    def _mac(self, listing: str, inner: str) -> str:
        digest = hmac.new(self.key, f"{listing}\n{inner}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest[:_MAC_BYTES]).decode().rstrip("=")

    def seal(self, listing: str, inner: str | None) -> str | None:
        # The MAC (base64url) holds no '.': the last one starts it, whatever the inner holds.
        return None if inner is None else f"{inner}.{self._mac(listing, inner)}"

    def open(self, listing: str, cursor: str | None) -> str | None:
        """The store's cursor inside `cursor`; ValueError for one this listing never
        handed out."""
        if not cursor:
            return None
        inner, dot, mac = cursor.rpartition(".")
        if not dot or not hmac.compare_digest(mac.encode(), self._mac(listing, inner).encode()):
            raise ValueError(f"invalid cursor: pass the next_cursor of a page of this listing "
                             f"({listing}) unchanged")
        return inner
