"""Feeds the projector from Kafka: a consumer group that applies each poll's events as one
batch and commits offsets only after the batch is in the read model, and starts over from the
committed offsets after any failure (Kafka or MongoDB down), so an outage delays the read model
and loses nothing.

A batch that fails for a reason of its own (a document MongoDB refuses, a malformed envelope)
is applied again in halves, each failing half halved again (the projector writes a batch all or
nothing), down to the event at fault: it is tried MAX_ATTEMPTS times on its own, then becomes a
dead letter, and the projector moves on; the others are applied in bulk still.
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
from chalicelib.usecases.ports import ReadModelProjector

logger = logging.getLogger(__name__)


class DeadLetterSink(Protocol):
    def add(self, stage: str, envelope: str | bytes, reason: str, attempts: int) -> int: ...


def apply_all(projector: ReadModelProjector, events: Iterable[Mapping[str, Any]],
              sink: DeadLetterSink | None = None, *,
              max_attempts: int = dead_letters.MAX_ATTEMPTS, pause_s: float = 0.05) -> int:
    """Apply events as one batch; when it fails, in halves down to the event at fault, which
    goes to `sink` (when given) once it keeps failing, instead of stopping the rest. MongoDB
    being unreachable is no event's fault: that raises."""
    batch = list(events)
    try:
        return projector.apply_batch(batch)
    except ConnectionFailure:
        raise
    except Exception as error:
        if sink is None:
            raise
        logger.warning("projector: a batch of %d events failed (%s: %s); applying it in "
                       "parts", len(batch), type(error).__name__, error)
    return _in_halves(projector, batch, sink, max_attempts, pause_s)


def _in_halves(projector: ReadModelProjector, batch: list[Mapping[str, Any]],
               sink: DeadLetterSink, max_attempts: int, pause_s: float) -> int:
    """A failed batch applied again as two halves in order (an execution's events may be in
    both), a failing half halved again, down to single events."""
    applied = 0
    middle = len(batch) // 2
    for part in (batch[:middle], batch[middle:]):
        if len(part) == 1:
            applied += _apply_one(projector, part[0], sink, max_attempts, pause_s)
            continue
        try:
            applied += projector.apply_batch(part) if part else 0
        except ConnectionFailure:
            raise
        except Exception:
            applied += _in_halves(projector, part, sink, max_attempts, pause_s)
    return applied


def _apply_one(projector: ReadModelProjector, event: Mapping[str, Any], sink: DeadLetterSink,
               max_attempts: int, pause_s: float) -> bool:
    for attempt in range(1, max_attempts + 1):
        try:
            return bool(projector.apply(event))
        except ConnectionFailure:
            raise
        except Exception as error:
            reason = f"{type(error).__name__}: {error}"
            if attempt < max_attempts:
                logger.warning("projector: event %s failed (attempt %d of %d): %s",
                               _field(event, "id"), attempt, max_attempts, reason)
                time.sleep(pause_s * attempt)
                continue
            letter_id = sink.add(PROJECTOR_STAGE, _envelope(event), reason, attempt)
            dead_letters.report(PROJECTOR_STAGE, letter_id,
                                event if isinstance(event, Mapping) else None, reason, attempt)
    return False


PROJECTOR_STAGE = "projector"
# Events applied between two polls, as one batch. A batch must be applied well within the
# consumer's max_poll_interval_ms (60 s, chalicelib/adapters/kafka/publisher.py), or the group
# drops the consumer, its commit fails and the same batch is applied again. In bulk, 500 take
# tens of milliseconds; a failed one's halving adds some 2 x log2(500) = 18 smaller batches and
# the poison's few retries. (Applied one event at a time, 500 once stalled the read model for
# minutes on a loaded 2-core machine.)
POLL_RECORDS = 500


def _field(event: Any, name: str) -> Any:
    return event.get(name) if isinstance(event, Mapping) else None


def _envelope(event: Any) -> str:
    try:
        return json.dumps(event, default=str)
    except (TypeError, ValueError):
        return json.dumps(repr(event))


# How long a consumer may go without a known group coordinator (where its offsets are
# committed) before it is made anew: longer than a broker takes to elect one after a restart.
# kafka-python 3.0 can keep a lookup of the coordinator pending for good; a new consumer
# looks again, and resumes from the committed offsets.
COORDINATOR_LOST_S = 15.0


class CoordinatorLost(ConnectionError):
    """The consumer has not known its group coordinator for COORDINATOR_LOST_S."""


def coordinator_known(consumer: Any) -> bool:
    """Whether the consumer knows its group's coordinator (kafka-python keeps that on its
    ConsumerCoordinator; a consumer without one, such as a stand-in, always does)."""
    coordinator = getattr(consumer, "_coordinator", None)
    unknown = getattr(coordinator, "coordinator_unknown", None)
    return unknown is None or not unknown()


def run_projector(make_consumer: Callable[[], KafkaConsumer], projector: ReadModelProjector,
                  stop: threading.Event, *, deadline: float | None = None,
                  max_backoff_s: float = 5.0, sink: DeadLetterSink | None = None,
                  coordinator_lost_s: float = COORDINATOR_LOST_S,
                  clock: Callable[[], float] = time.monotonic) -> None:
    backoff = 0.2
    consumer: KafkaConsumer | None = None
    lost_since: float | None = None
    while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
        try:
            if consumer is None:
                consumer = make_consumer()
                lost_since = None
            batches = consumer.poll(timeout_ms=200, max_records=POLL_RECORDS)
            if coordinator_known(consumer):
                lost_since = None
            elif lost_since is None:
                lost_since = clock()
            elif clock() - lost_since > coordinator_lost_s:
                raise CoordinatorLost(f"no group coordinator for {coordinator_lost_s:g} s")
            if batches:
                # Partitions together: an execution's events are all in one, in order.
                apply_all(projector, [record.value for records in batches.values()
                                      for record in records], sink)
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
