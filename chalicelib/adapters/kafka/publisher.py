"""Kafka producer and consumer factories, and the relay's publisher.

The producer is idempotent with acks=all wherever the broker speaks protocol 0.11 or newer
(every Kafka 3.x and 4.x, and MSK): the broker drops a batch it already has when the producer
retries one whose acknowledgement was lost, so up to five requests can be in flight without
reordering a partition. Event metadata travels in record headers and in the JSON envelope.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError
from kafka.serializer import Deserializer, Serializer

from chalicelib.config import KafkaSettings
from chalicelib.domain.event_records import EventRecord
from chalicelib.durations import parse_duration_ms

Headers = list[tuple[str, bytes]] | None


class JsonSerializer(Serializer):
    def serialize(self, topic: str, headers: Headers, data: Any) -> bytes:
        return json.dumps(data, separators=(",", ":"), default=str).encode()


class JsonDeserializer(Deserializer):
    def deserialize(self, topic: str, headers: Headers, data: bytes) -> Any:
        return json.loads(data.decode())


class KeySerializer(Serializer):
    def serialize(self, topic: str, headers: Headers, data: str | bytes | None) -> bytes | None:
        return data.encode() if isinstance(data, str) else data


class KeyDeserializer(Deserializer):
    def deserialize(self, topic: str, headers: Headers, data: bytes | None) -> str | None:
        return data.decode() if data is not None else None


def _retriable(error: KafkaError) -> bool:
    """An outage or a transient broker state (retry the batch), not a record's own fault."""
    return bool(getattr(error, "retriable", False))


# A record batch's header is 61 bytes and each record adds a few dozen more (varints, our five
# headers); 16 KiB above the producer's cap is ample.
BATCH_FRAMING_BYTES = 16 * 1024
# Records to one partition are sent in batches up to this size (never above max_request_size).
BATCH_BYTES = 256 * 1024
# Protocol 0.11 brought idempotent produce (and record headers).
IDEMPOTENT_SINCE = (0, 11)


def message_max_bytes(settings: KafkaSettings) -> int:
    """The broker's `message.max.bytes` that takes every batch this producer can send: one event
    of max_request_size, or a batch of smaller ones (batches are capped at the same size)."""
    return settings.max_request_size + BATCH_FRAMING_BYTES


def idempotent(settings: KafkaSettings) -> bool:
    """Whether the producer asks for idempotence: always, unless the broker protocol is pinned
    below 0.11 (then it keeps one request in flight, so retries still keep the order)."""
    pinned = settings.api_version_tuple()
    return pinned is None or pinned >= IDEMPOTENT_SINCE


def delivery_timeout_ms(settings: KafkaSettings) -> int:
    """How long a send may take, retries included: two request timeouts."""
    return 2 * parse_duration_ms(settings.producer_timeout)


def producer_options(settings: KafkaSettings) -> dict[str, Any]:
    """One producer configuration for the relay and every other sender."""
    timeout_ms = parse_duration_ms(settings.producer_timeout)
    options: dict[str, Any] = {
        "bootstrap_servers": settings.brokers,
        "api_version": settings.api_version_tuple(),
        "acks": "all",
        "linger_ms": 2,
        "batch_size": min(BATCH_BYTES, settings.max_request_size),
        "max_request_size": settings.max_request_size,
        "request_timeout_ms": timeout_ms,
        "max_block_ms": timeout_ms,
        # kafka-python 3 waits 30 s for a first broker by default; a relay facing a stopped
        # broker gives up within the producer timeout and retries the batch later.
        "bootstrap_timeout_ms": timeout_ms,
        # An outage outlasting this fails the send, and the relay retries the batch itself.
        "delivery_timeout_ms": delivery_timeout_ms(settings),
        "key_serializer": KeySerializer(),
    }
    if idempotent(settings):
        options.update(enable_idempotence=True, max_in_flight_requests_per_connection=5)
    else:
        options.update(enable_idempotence=False, retries=3,
                       max_in_flight_requests_per_connection=1)
    return options


def producer(settings: KafkaSettings) -> KafkaProducer:
    """A producer of JSON values (tests and tools; the relay sends bytes it already has)."""
    return KafkaProducer(**producer_options(settings), value_serializer=JsonSerializer())


class TopicNotReady(KafkaError):
    """The topic has no partitions yet (no event was published to it since the broker
    started empty): the reader is made again once it has."""


def partition_reader(settings: KafkaSettings, topic: str, *, group_id: str,
                     auto_offset_reset: str = "earliest") -> KafkaConsumer:
    """A consumer of every partition of `topic`, assigned by hand: it resumes from the
    group's committed offsets and commits there, but is no member of a consumer group, so it
    never waits on a rebalance or a heartbeat. (kafka-python 3.0 can lose a group member's
    coordinator for good after a missed heartbeat; the broker then drops the member and the
    consumer fetches nothing, while the read model stops.) One process reads the topic
    locally: two would each apply every event, which the projector tolerates (it applies an
    execution's events by their sequence) but with pushes sent twice."""
    reader = KafkaConsumer(
        bootstrap_servers=settings.brokers,
        api_version=settings.api_version_tuple(),
        group_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset=auto_offset_reset,
        consumer_timeout_ms=parse_duration_ms(settings.consumer_timeout),
        value_deserializer=JsonDeserializer(),
        key_deserializer=KeyDeserializer(),
    )
    partitions = reader.partitions_for_topic(topic)
    if not partitions:
        reader.close(autocommit=False)
        raise TopicNotReady(f"topic {topic} has no partitions yet")
    reader.assign([TopicPartition(topic, partition) for partition in sorted(partitions)])
    return reader


def consumer(
    settings: KafkaSettings,
    topics: Iterable[str] | None = None,
    *,
    group_id: str | None = None,
    auto_offset_reset: str = "earliest",
) -> KafkaConsumer:
    return KafkaConsumer(
        *(topics if topics is not None else [settings.topic]),
        bootstrap_servers=settings.brokers,
        api_version=settings.api_version_tuple(),
        group_id=group_id or settings.group_id,
        enable_auto_commit=False,
        auto_offset_reset=auto_offset_reset,
        consumer_timeout_ms=parse_duration_ms(settings.consumer_timeout),
        value_deserializer=JsonDeserializer(),
        key_deserializer=KeyDeserializer(),
        session_timeout_ms=10_000,
        heartbeat_interval_ms=3_000,
        # Also the group's rebalance timeout (KIP-62): how long every member waits for one
        # that stopped polling. The projector polls every 200 ms and applies at most 500
        # events between polls, in bulk (consumer.POLL_RECORDS), so a minute is ample, where
        # Kafka's default is five.
        max_poll_interval_ms=60_000,
    )


class KafkaPublisher:
    """Publishes already-serialised events, waiting for the broker's acknowledgement of all."""

    def __init__(self, settings: KafkaSettings) -> None:
        self._settings = settings
        self._producer: KafkaProducer | None = None

    def _connected(self) -> KafkaProducer:
        if self._producer is None:
            self._producer = KafkaProducer(**producer_options(self._settings))
        return self._producer

    def publish(self, topic: str, records: Sequence[EventRecord]) -> dict[int, str]:
        """Send the records; return once every one is acknowledged or refused for good: the
        refused ones by index, with the reason (too large, invalid). Raises when the broker
        can't be reached or a retriable error persists, so the batch is tried again."""
        producer = self._connected()
        refused: dict[int, str] = {}
        try:
            futures = {}
            for index, record in enumerate(records):
                try:
                    futures[index] = producer.send(topic, key=record.key, value=record.value,
                                                   headers=list(record.headers))
                except KafkaError as error:
                    if _retriable(error):
                        raise
                    refused[index] = f"{type(error).__name__}: {error}"
            producer.flush(timeout=delivery_timeout_ms(self._settings) / 1000)
            for index, future in futures.items():
                try:
                    future.get(timeout=0)
                except KafkaError as error:
                    if _retriable(error):
                        raise
                    refused[index] = f"{type(error).__name__}: {error}"
        except Exception:
            # Start over with a fresh producer: the broker may have gone and come back.
            self.close()
            raise
        return refused

    def close(self) -> None:
        if self._producer is not None:
            try:
                self._producer.close(timeout=2)
            finally:
                self._producer = None
