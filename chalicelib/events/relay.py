"""The outbox relay: publishes outbox rows to Kafka in order, and marks them sent only after
the broker acknowledged them, so a Kafka outage delays events but loses none.

One relay is active at a time (a MySQL named lock), which keeps each key's events in order;
a crash between the acknowledgement and the mark publishes a batch twice, and consumers are
idempotent on event id and sequence.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from chalicelib.adapters.mysql import MySQLConnector

logger = logging.getLogger(__name__)
LOCK = "saga_outbox_relay:"


class Publisher(Protocol):
    def publish(self, topic: str, records: list[tuple[str, bytes]]) -> None: ...


@dataclass
class RelayStats:
    published: int = 0
    batches: int = 0
    failures: int = 0


class OutboxRelay:
    def __init__(self, connector: MySQLConnector, publisher: Publisher, topic: str, *,
                 batch_size: int = 500) -> None:
        self.connector = connector
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
                cur.execute("SELECT id, partition_key, envelope FROM outbox "
                            "WHERE published_at IS NULL ORDER BY id LIMIT %s",
                            (self.batch_size,))
                rows = cur.fetchall()
                if not rows:
                    return 0
                self.publisher.publish(self.topic, [
                    (row["partition_key"], _bytes(row["envelope"])) for row in rows])
                ids = [row["id"] for row in rows]
                placeholders = ", ".join(["%s"] * len(ids))
                cur.execute(f"UPDATE outbox SET published_at = %s WHERE id IN ({placeholders})",
                            (datetime.now(UTC).replace(tzinfo=None), *ids))
            finally:
                cur.execute("SELECT RELEASE_LOCK(CONCAT(%s, DATABASE()))", (LOCK,))
        self.stats.published += len(rows)
        self.stats.batches += 1
        return len(rows)

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


def _bytes(envelope: str | bytes) -> bytes:
    return envelope if isinstance(envelope, bytes) else envelope.encode()
