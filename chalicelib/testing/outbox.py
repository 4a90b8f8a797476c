"""The outbox in memory: an event's envelope as the MySQL outbox row holds it."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from chalicelib.domain import events


def outbox_envelope(event: events.Event, *, key: str, subject: str, sequence: int,
                    at: datetime | None = None) -> dict[str, Any]:
    """The data goes through JSON as the outbox's does, so what a test reads is what is sent
    (and data that MySQL could not store fails here too)."""
    return events.envelope(event.type, key=key, subject=subject, sequence=sequence,
                           data=json.loads(json.dumps(event.data)), time=at)
