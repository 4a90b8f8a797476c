"""Kafka producer and consumer factories.

Event metadata travels inside the JSON value, not in record headers: a 0.9 broker (the local
stack's) has no headers, and the same code must run against a current Kafka or MSK.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from kafka import KafkaConsumer, KafkaProducer
from kafka.errors import KafkaError
from kafka.serializer import Deserializer, Serializer

from chalicelib.config import KafkaSettings
from chalicelib.saga.durations import parse_duration_ms

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


def producer(settings: KafkaSettings) -> KafkaProducer:
    return KafkaProducer(
        bootstrap_servers=settings.brokers,
        api_version=settings.api_version_tuple(),
        acks="all",
        retries=5,
        # One request in flight keeps a key's records in order across retries.
        max_in_flight_requests_per_connection=1,
        linger_ms=5,
        key_serializer=KeySerializer(),
        value_serializer=JsonSerializer(),
        request_timeout_ms=parse_duration_ms(settings.producer_timeout),
    )


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
    )


class KafkaPublisher:
    """Publishes already-serialised events, waiting for the broker's acknowledgement of all."""

    def __init__(self, settings: KafkaSettings) -> None:
        self._settings = settings
        self._producer: KafkaProducer | None = None

    def _connected(self) -> KafkaProducer:
        if self._producer is None:
            self._producer = KafkaProducer(
                bootstrap_servers=self._settings.brokers,
                api_version=self._settings.api_version_tuple(),
                acks="all",
                retries=3,
                max_in_flight_requests_per_connection=1,  # order per partition across retries
                linger_ms=2,
                batch_size=256 * 1024,
                request_timeout_ms=parse_duration_ms(self._settings.producer_timeout),
                max_block_ms=parse_duration_ms(self._settings.producer_timeout),
                key_serializer=KeySerializer(),
                max_request_size=self._settings.max_request_size,
            )
        return self._producer

    def publish(self, topic: str, records: list[tuple[str, bytes]]) -> dict[int, str]:
        """Send (key, value) records; return once every one is acknowledged or refused for
        good: the refused ones by index, with the reason (too large, invalid). Raises when the
        broker can't be reached or a retriable error persists, so the batch is tried again."""
        producer = self._connected()
        refused: dict[int, str] = {}
        try:
            futures = {}
            for index, (key, value) in enumerate(records):
                try:
                    futures[index] = producer.send(topic, key=key, value=value)
                except KafkaError as error:
                    if _retriable(error):
                        raise
                    refused[index] = f"{type(error).__name__}: {error}"
            producer.flush(timeout=parse_duration_ms(self._settings.producer_timeout) / 1000)
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
