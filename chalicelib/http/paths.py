"""Where the API lives: its path prefix, and the callback links partners are given."""

from __future__ import annotations

API_PREFIX = "/api/v1/saga"


def callback_links(base_url: str, callback_id: str, secret: str) -> dict[str, str]:
    """The URLs that complete one callback; the secret in them completes that one only."""
    root = f"{base_url.rstrip('/')}{API_PREFIX}/callbacks/{callback_id}"
    return {action: f"{root}/{action}?secret={secret}"
            for action in ("succeed", "fail", "heartbeat")}
