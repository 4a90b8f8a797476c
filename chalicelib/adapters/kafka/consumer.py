"""Feeds the projector from Kafka: a consumer group that commits offsets only after the
events of a batch are in the read model, and starts over from the committed offsets after any
failure (Kafka or MongoDB down), so an outage delays the read model and loses nothing.

An event that fails for a reason of its own (a document MongoDB refuses, a malformed
envelope) is tried MAX_ATTEMPTS times, then becomes a dead letter and the projector moves on.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from kafka import KafkaConsumer
from pymongo.errors import ConnectionFailure

from chalicelib.adapters import dead_letters

logger = logging.getLogger(__name__)


class Projector(Protocol):
    """What the consumer feeds (the MongoDB projector): a Protocol, so the Kafka adapter does
    not import the MongoDB one. True if the event changed the read model."""

    def apply(self, event: Mapping[str, Any]) -> bool: ...


class DeadLetterSink(Protocol):
    def add(self, stage: str, envelope: str | bytes, reason: str, attempts: int) -> int: ...


def apply_all(projector: Projector, events: Iterable[Mapping[str, Any]],
              sink: DeadLetterSink | None = None, *,
              max_attempts: int = dead_letters.MAX_ATTEMPTS, pause_s: float = 0.05) -> int:
    """Apply events in order; one that keeps failing goes to `sink` (when given) instead of
    stopping the rest. MongoDB being unreachable is no event's fault: that raises."""
    applied = 0
    for event in events:
        for attempt in range(1, max_attempts + 1):
            try:
                applied += bool(projector.apply(event))
                break
            except ConnectionFailure:
                raise
            except Exception as error:
                if sink is None:
                    raise
                reason = f"{type(error).__name__}: {error}"
                if attempt < max_attempts:
                    logger.warning("projector: event %s failed (attempt %d of %d): %s",
                                   _field(event, "id"), attempt, max_attempts, reason)
                    time.sleep(pause_s * attempt)
                    continue
                letter_id = sink.add(PROJECTOR_STAGE, _envelope(event), reason, attempt)
                dead_letters.report(PROJECTOR_STAGE, letter_id,
                                    event if isinstance(event, Mapping) else None, reason,
                                    attempt)
    return applied


PROJECTOR_STAGE = "projector"
# Events applied between two polls. A batch must be applied well within the consumer's
# max_poll_interval_ms (60 s, chalicelib/adapters/kafka/publisher.py), or the group drops the
# consumer, its commit fails and the same batch is applied again (read-model stalls of minutes
# were seen in full runs on a loaded 2-core machine with 500); 100 stay far inside it.
POLL_RECORDS = 100


def _field(event: Any, name: str) -> Any:
    return event.get(name) if isinstance(event, Mapping) else None


def _envelope(event: Any) -> str:
    try:
        return json.dumps(event, default=str)
    except (TypeError, ValueError):
        return json.dumps(repr(event))


def run_projector(make_consumer: Callable[[], KafkaConsumer], projector: Projector,
                  stop: threading.Event, *, deadline: float | None = None,
                  max_backoff_s: float = 5.0, sink: DeadLetterSink | None = None) -> None:
    backoff = 0.2
    consumer: KafkaConsumer | None = None
    while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
        try:
            if consumer is None:
                consumer = make_consumer()
            batches = consumer.poll(timeout_ms=200, max_records=POLL_RECORDS)
            for records in batches.values():
                apply_all(projector, (record.value for record in records), sink)
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
