"""The event pipeline as local processes: the outbox relay and the projector run as threads
next to the API (on AWS they are Lambdas: a schedule and a Kafka event source)."""

from __future__ import annotations

import json
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from pymongo.database import Database

from chalicelib.adapters.kafka.consumer import run_projector
from chalicelib.adapters.mongo.client import read_model
from chalicelib.adapters.mongo.projector import (
    EVENTS,
    EXECUTIONS,
    SUMMARIES,
    Projector,
    ensure_execution_indexes,
    ensure_history_indexes,
)
from chalicelib.adapters.mysql.connector import MySQLConnector
from chalicelib.roots import runtime

logger = logging.getLogger(__name__)


@dataclass
class EventWorkers:
    stop_event: threading.Event
    threads: list[threading.Thread] = field(default_factory=list)

    @classmethod
    def start(cls) -> EventWorkers:
        """The relay and the projector of the process's Container, each on a thread."""
        stop = threading.Event()
        parts = runtime.container()
        # A relay of its own: its counts and refusals are this worker's.
        relay = parts.new_relay()
        workers = cls(stop, [
            threading.Thread(target=relay.run, args=(stop,), name="outbox-relay",
                             daemon=True),
            threading.Thread(target=run_projector,
                             args=(parts.projector_consumer, parts.pushing_projector, stop),
                             kwargs={"sink": parts.dead_letters},
                             name="projector", daemon=True),
        ])
        for thread in workers.threads:
            thread.start()
        return workers

    def stop(self, timeout_s: float = 10.0) -> None:
        self.stop_event.set()
        for thread in self.threads:
            thread.join(timeout=timeout_s)


def rebuild_read_model(batch: int = 1000) -> int:
    """Drop the read model and replay every event the outbox holds, in order, a batch of
    outbox rows at a time applied in bulk."""
    parts = runtime.container()
    db = read_model(parts.mongo, parts.settings.database.mongodb)
    applied = 0
    with ThreadPoolExecutor(2) as reader:
        # The outbox is read (and parsed) a batch ahead, while MongoDB makes the indexes and
        # takes the batch before: the two servers work side by side. The history (made again
        # from the events the outbox still holds) is dropped and indexed beside the rest.
        pending = reader.submit(_outbox_batch, parts.connector, 0, batch)
        history = reader.submit(_new_history, db, parts.settings.read_model.history_retention_s)
        db[EXECUTIONS].drop()
        db[SUMMARIES].drop()
        ensure_execution_indexes(db)
        projector = Projector(parts.mongo, db)
        history.result()
        for _ in range(10_000_000 // batch):  # bounded: far more than any outbox holds
            last_id, events = pending.result()
            if not events:
                break
            pending = reader.submit(_outbox_batch, parts.connector, last_id, batch)
            applied += projector.apply_batch(events)
    return applied


def _new_history(db: Database, retention_s: int) -> None:
    db[EVENTS].drop()
    ensure_history_indexes(db, retention_s)


def _outbox_batch(connector: MySQLConnector, after_id: int,
                  size: int) -> tuple[int, list[dict[str, Any]]]:
    """The outbox's next `size` events after row `after_id`, and the last row's id."""
    with connector.transaction() as cur:
        cur.execute("SELECT id, envelope FROM outbox WHERE id > %s ORDER BY id LIMIT %s",
                    (after_id, size))
        rows = cur.fetchall()
    return (rows[-1]["id"] if rows else after_id), [json.loads(row["envelope"]) for row in rows]
