"""The outbox relay: publishes outbox rows to Kafka in order, and marks them sent only after
the broker acknowledged them, so a Kafka outage delays events but loses none.

One relay is active at a time (a MySQL named lock), which keeps each key's events in order;
a crash between the acknowledgement and the mark publishes a batch twice, and consumers are
idempotent on event id and sequence.

An event the broker refuses for good (too large, invalid) is tried MAX_ATTEMPTS times, then
moved to the dead letters and marked done, so one event never stops the outbox. An outage
(the broker unreachable, a retriable error) is not the event's fault and is retried forever.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from chalicelib.adapters import dead_letters
from chalicelib.adapters.mysql.connector import MySQLConnector
from chalicelib.adapters.mysql.dead_letters import RELAY, MySQLDeadLetters
from chalicelib.domain.event_records import EventRecord

logger = logging.getLogger(__name__)
LOCK = "saga_outbox_relay:"


class Publisher(Protocol):
    def publish(self, topic: str, records: Sequence[EventRecord]) -> dict[int, str]:
        """Refused records by index, with the reason; raises when the whole batch failed."""
        ...


@dataclass
class RelayStats:
    published: int = 0
    batches: int = 0
    failures: int = 0
    dead_letters: int = 0


class OutboxRelay:
    def __init__(self, connector: MySQLConnector, publisher: Publisher, topic: str, *,
                 batch_size: int = 500, max_attempts: int = dead_letters.MAX_ATTEMPTS) -> None:
        self.connector = connector
        self.dead_letters = MySQLDeadLetters(connector)
        self.max_attempts = max_attempts
        # Refusals per outbox row id; in memory, so a restart grants a few more attempts.
        self._refusals: dict[int, int] = {}
        self.publisher = publisher
        self.topic = topic
        self.batch_size = batch_size
        self.stats = RelayStats()

    def run_once(self) -> int:
        """Publish one batch; the number of events published (0: none waiting, or another
        relay is active)."""
        with self.connector.transaction() as cur:
            # One relay per outbox: the lock is named after the database.
            cur.execute("SELECT GET_LOCK(CONCAT(%s, DATABASE()), 0) AS got", (LOCK,))
            if cur.fetchone()["got"] != 1:
                return 0
            try:
                cur.execute("SELECT id, event_id, partition_key, sequence, type, envelope "
                            "FROM outbox WHERE published_at IS NULL ORDER BY id LIMIT %s",
                            (self.batch_size,))
                rows = cur.fetchall()
                if not rows:
                    return 0
                refused = self.publisher.publish(
                    self.topic, [EventRecord.from_outbox(row) for row in rows])
                given_up = self._give_up(cur, rows, refused)
                ids = [row["id"] for index, row in enumerate(rows)
                       if index not in refused or index in given_up]
                if ids:
                    placeholders = ", ".join(["%s"] * len(ids))
                    cur.execute(
                        f"UPDATE outbox SET published_at = %s WHERE id IN ({placeholders})",
                        (datetime.now(UTC).replace(tzinfo=None), *ids))
            finally:
                cur.execute("SELECT RELEASE_LOCK(CONCAT(%s, DATABASE()))", (LOCK,))
        for letter_id, row, reason in given_up.values():
            dead_letters.report(RELAY, letter_id, _event(row["envelope"]), reason,
                                self.max_attempts)
        published = len(rows) - len(refused)
        self.stats.published += published
        self.stats.batches += 1
        self.stats.failures += len(refused) - len(given_up)
        self.stats.dead_letters += len(given_up)
        return published + len(given_up)

    def _give_up(self, cur: Any, rows: list[dict[str, Any]],
                 refused: dict[int, str]) -> dict[int, tuple[int, dict[str, Any], str]]:
        """Dead-letter the refused rows out of attempts (in the batch's transaction)."""
        given_up = {}
        for index, reason in refused.items():
            row = rows[index]
            attempts = self._refusals.get(row["id"], 0) + 1
            self._refusals[row["id"]] = attempts
            if attempts < self.max_attempts:
                logger.warning("relay: outbox row %s refused (attempt %d of %d): %s",
                               row["id"], attempts, self.max_attempts, reason)
                continue
            letter_id = self.dead_letters.add(RELAY, row["envelope"], reason, attempts,
                                              outbox_id=row["id"], cur=cur)
            self._refusals.pop(row["id"], None)
            given_up[index] = (letter_id, row, reason)
        return given_up

    def drain(self, *, max_batches: int = 10_000) -> int:
        """Publish until nothing is waiting (or max_batches); the number published."""
        total = 0
        for _ in range(max_batches):
            count = self.run_once()
            total += count
            if count < self.batch_size:
                break
        return total

    def run(self, stop: threading.Event, *, idle_s: float = 0.05, max_backoff_s: float = 5.0,
            deadline: float | None = None) -> None:
        """Relay until stopped (or the monotonic deadline): fast while busy, backing off
        while Kafka or MySQL is down."""
        backoff = idle_s
        while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
            try:
                count = self.run_once()
                backoff = idle_s
                if count == self.batch_size:
                    continue
            except Exception as error:
                self.stats.failures += 1
                logger.warning("relay: %s: %s; retrying in %.1fs", type(error).__name__, error,
                               backoff)
                backoff = min(max_backoff_s, backoff * 2 if backoff > idle_s else 0.5)
            stop.wait(backoff)


def _event(envelope: str | bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(envelope)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
