"""Feeds the projector from Kafka: a consumer group that commits offsets only after the
events of a batch are in the read model, and starts over from the committed offsets after any
failure (Kafka or MongoDB down), so an outage delays the read model and loses nothing."""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from kafka import KafkaConsumer

from chalicelib.events.projector import Projector

logger = logging.getLogger(__name__)


def apply_all(projector: Projector, events: Iterable[Mapping[str, Any]]) -> int:
    return sum(1 for event in events if projector.apply(event))


def run_projector(make_consumer: Callable[[], KafkaConsumer], projector: Projector,
                  stop: threading.Event, *, deadline: float | None = None,
                  max_backoff_s: float = 5.0) -> None:
    backoff = 0.2
    consumer: KafkaConsumer | None = None
    while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
        try:
            if consumer is None:
                consumer = make_consumer()
            batches = consumer.poll(timeout_ms=200, max_records=500)
            for records in batches.values():
                apply_all(projector, (record.value for record in records))
            if batches:
                consumer.commit()
            backoff = 0.2
        except Exception as error:
            logger.warning("projector: %s: %s; resuming from the committed offsets in %.1fs",
                           type(error).__name__, error, backoff)
            if consumer is not None:
                try:
                    consumer.close(autocommit=False)
                except Exception:  # closing a broken consumer may fail too
                    logger.debug("projector: closing the consumer failed", exc_info=True)
                consumer = None
            stop.wait(backoff)
            backoff = min(max_backoff_s, backoff * 2)
    if consumer is not None:
        consumer.close(autocommit=False)


def msk_events(lambda_event: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The events of an MSK/self-managed Kafka event source batch, in partition order."""
    events = []
    for records in lambda_event.get("records", {}).values():
        for record in sorted(records, key=lambda r: r["offset"]):
            events.append(json.loads(base64.b64decode(record["value"])))
    return events
