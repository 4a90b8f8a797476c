"""Dead letters in MySQL: events the relay or the projector gave up on, with the reason."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from chalicelib.adapters.mysql.connector import MySQLConnector

RELAY = "relay"
PROJECTOR = "projector"
_MAX_REASON = 2000


@dataclass(frozen=True)
class DeadLetter:
    id: int
    stage: str
    outbox_id: int | None
    event_id: str | None
    event_key: str | None
    sequence: int | None
    type: str | None
    envelope: str
    reason: str
    attempts: int
    created_at: datetime
    replayed_at: datetime | None

    def event(self) -> dict[str, Any] | None:
        try:
            value = json.loads(self.envelope)
        except ValueError:
            return None
        return value if isinstance(value, dict) else None


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _envelope_fields(envelope: str | bytes) -> dict[str, Any]:
    text = envelope.decode("utf-8", "replace") if isinstance(envelope, bytes) else envelope
    try:
        event = json.loads(text)
    except ValueError:
        event = {}
    if not isinstance(event, Mapping):
        event = {}

    def text_of(name: str, limit: int) -> str | None:
        value = event.get(name)
        return str(value)[:limit] if value is not None else None

    sequence = event.get("sequence")
    return {"event_id": text_of("id", 64), "event_key": text_of("key", 100),
            "sequence": sequence if isinstance(sequence, int) else None,
            "type": text_of("type", 60), "envelope": text}


class MySQLDeadLetters:
    def __init__(self, connector: MySQLConnector) -> None:
        self.connector = connector

    def add(self, stage: str, envelope: str | bytes, reason: str, attempts: int, *,
            outbox_id: int | None = None, cur: Any = None) -> int:
        """Record one dead letter (in the caller's transaction when `cur` is given)."""
        fields = _envelope_fields(envelope)
        row = (stage, outbox_id, fields["event_id"], fields["event_key"], fields["sequence"],
               fields["type"], fields["envelope"], reason[:_MAX_REASON], attempts, _now())
        sql = ("INSERT INTO dead_letters (stage, outbox_id, event_id, event_key, sequence, "
               "type, envelope, reason, attempts, created_at) "
               "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)")
        if cur is not None:
            cur.execute(sql, row)
            return int(cur.lastrowid)
        with self.connector.transaction() as own:
            own.execute(sql, row)
            return int(own.lastrowid)

    def list(self, *, include_replayed: bool = False, limit: int = 100) -> list[DeadLetter]:
        where = "" if include_replayed else "WHERE replayed_at IS NULL "
        with self.connector.transaction() as cur:
            cur.execute(f"SELECT * FROM dead_letters {where}ORDER BY id LIMIT %s", (limit,))
            return [DeadLetter(**row) for row in cur.fetchall()]

    def get(self, dead_letter_id: int) -> DeadLetter | None:
        with self.connector.transaction() as cur:
            cur.execute("SELECT * FROM dead_letters WHERE id = %s", (dead_letter_id,))
            row = cur.fetchone()
        return DeadLetter(**row) if row else None

    def open_count(self) -> int:
        with self.connector.transaction() as cur:
            cur.execute("SELECT COUNT(*) AS n FROM dead_letters WHERE replayed_at IS NULL")
            return int(cur.fetchone()["n"])

    def requeue_to_outbox(self, letter: DeadLetter) -> None:
        """A relay dead letter goes back to the outbox, to be published again in order of id."""
        with self.connector.transaction() as cur:
            cur.execute("UPDATE outbox SET published_at = NULL WHERE id = %s",
                        (letter.outbox_id,))
            self._mark_replayed(cur, letter.id)

    def mark_replayed(self, dead_letter_id: int) -> None:
        with self.connector.transaction() as cur:
            self._mark_replayed(cur, dead_letter_id)

    @staticmethod
    def _mark_replayed(cur: Any, dead_letter_id: int) -> None:
        cur.execute("UPDATE dead_letters SET replayed_at = %s WHERE id = %s",
                    (_now(), dead_letter_id))
