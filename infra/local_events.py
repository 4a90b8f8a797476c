"""The event pipeline as local processes: the outbox relay and the projector run as threads
next to the API (on AWS they are Lambdas: a schedule and a Kafka event source)."""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass, field

from chalicelib.adapters.kafka.consumer import run_projector
from chalicelib.adapters.mongo.client import read_model
from chalicelib.adapters.mongo.projector import EXECUTIONS, SUMMARIES
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
    db[EXECUTIONS].drop()
    db[SUMMARIES].drop()
    projector = parts.new_projector()  # the dropped collections' indexes made again
    applied, last_id = 0, 0
    for _ in range(10_000_000 // batch):  # bounded: far more than any outbox holds
        with parts.connector.transaction() as cur:
            cur.execute("SELECT id, envelope FROM outbox WHERE id > %s ORDER BY id LIMIT %s",
                        (last_id, batch))
            rows = cur.fetchall()
        if not rows:
            break
        applied += projector.apply_batch([json.loads(row["envelope"]) for row in rows])
        last_id = rows[-1]["id"]
    return applied
