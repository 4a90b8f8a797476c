"""The event pipeline as local processes: the outbox relay and the projector run as threads
next to the API (on AWS they are Lambdas: a schedule and a Kafka event source)."""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass, field

from chalicelib import runtime
from chalicelib.adapters.mysql import MySQLConnector
from chalicelib.config import Settings
from chalicelib.events.consumer import run_projector
from chalicelib.events.projector import EXECUTIONS, SUMMARIES

logger = logging.getLogger(__name__)


@dataclass
class EventWorkers:
    stop_event: threading.Event
    threads: list[threading.Thread] = field(default_factory=list)

    @classmethod
    def start(cls, settings: Settings) -> EventWorkers:
        stop = threading.Event()
        # Its own connection: one PyMySQL connection must not be shared between threads.
        relay = runtime.build_relay(settings, MySQLConnector(settings.database.mysql))
        pushes = runtime.container().queued_pusher.push_event
        projector = runtime.build_projector(settings, runtime.container().mongo, on_applied=pushes)
        workers = cls(stop, [
            threading.Thread(target=relay.run, args=(stop,), name="outbox-relay",
                             daemon=True),
            threading.Thread(target=run_projector,
                             args=(runtime.projector_consumer(settings), projector, stop),
                             kwargs={"sink": runtime.build_dead_letters(
                                 MySQLConnector(settings.database.mysql))},
                             name="projector", daemon=True),
        ])
        for thread in workers.threads:
            thread.start()
        return workers

    def stop(self, timeout_s: float = 10.0) -> None:
        self.stop_event.set()
        for thread in self.threads:
            thread.join(timeout=timeout_s)


def rebuild_read_model(settings: Settings, batch: int = 1000) -> int:
    """Drop the read model and replay every event the outbox holds, in order."""
    projector = runtime.build_projector(settings, runtime.container().mongo)
    projector.db[EXECUTIONS].drop()
    projector.db[SUMMARIES].drop()
    projector = runtime.build_projector(settings, runtime.container().mongo)
    applied, last_id = 0, 0
    for _ in range(10_000_000 // batch):  # bounded: far more than any outbox holds
        with runtime.container().connector.transaction() as cur:
            cur.execute("SELECT id, envelope FROM outbox WHERE id > %s ORDER BY id LIMIT %s",
                        (last_id, batch))
            rows = cur.fetchall()
        if not rows:
            break
        for row in rows:
            applied += projector.apply(json.loads(row["envelope"]))
        last_id = rows[-1]["id"]
    return applied
