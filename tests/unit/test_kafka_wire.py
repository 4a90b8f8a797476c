"""The Kafka side of an event, without a broker: record headers, the producer's guarantees and
sizes, and the local broker's configuration derived from the same settings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from chalicelib.adapters.kafka.publisher import (
    BATCH_BYTES,
    idempotent,
    message_max_bytes,
    producer_options,
)
from chalicelib.config import KafkaSettings, load_settings
from chalicelib.domain.event_records import EventRecord, header_map
from infra.stack.paths import StackPaths
from infra.stack.servers.kafka import Kafka, pinned_version


def test_an_outbox_row_becomes_a_keyed_record_with_its_metadata_in_headers() -> None:
    envelope = json.dumps({"id": "e-1", "type": "saga.completed", "key": "x-1", "sequence": 7})
    record = EventRecord.from_outbox({"event_id": "e-1", "partition_key": "x-1", "sequence": 7,
                                      "type": "saga.completed", "envelope": envelope})
    assert record.key == "x-1"
    assert record.value == envelope.encode()
    assert header_map(record.headers) == {
        "event_id": "e-1", "event_type": "saga.completed", "event_key": "x-1",
        "event_sequence": "7", "content-type": "application/json"}
    assert all(isinstance(value, bytes) for _, value in record.headers)


def test_the_producer_is_idempotent_with_acks_all_unless_pinned_below_0_11() -> None:
    auto = producer_options(KafkaSettings())
    assert auto["acks"] == "all" and auto["enable_idempotence"] is True
    assert auto["max_in_flight_requests_per_connection"] == 5
    modern = KafkaSettings(api_version="2.8")
    assert idempotent(modern) and producer_options(modern)["enable_idempotence"] is True
    old = producer_options(KafkaSettings(api_version="0.10"))
    # No idempotence: one request in flight is what keeps a partition in order on retry.
    assert old["enable_idempotence"] is False
    assert old["max_in_flight_requests_per_connection"] == 1 and old["acks"] == "all"


@pytest.mark.parametrize("max_request_size", [64 * 1024, 1024 * 1024, 4 * 1024 * 1024])
def test_batches_never_outgrow_what_the_broker_is_told_to_take(max_request_size: int) -> None:
    settings = KafkaSettings(max_request_size=max_request_size)
    options = producer_options(settings)
    assert options["max_request_size"] == max_request_size
    assert options["batch_size"] == min(BATCH_BYTES, max_request_size)
    assert message_max_bytes(settings) > max(options["batch_size"], max_request_size)


def test_the_local_broker_is_configured_from_the_same_settings(tmp_path: Path) -> None:
    settings = load_settings(environ={"SAGA__KAFKA__MAX_REQUEST_SIZE": "300000",
                                      "SAGA__KAFKA__BROKERS": "127.0.0.1:19092",
                                      "SAGA__KAFKA__CONTROLLER": "127.0.0.1:19093",
                                      "SAGA__KAFKA__PARTITIONS": "5"})
    kafka = Kafka(StackPaths(tmp_path), settings.kafka)
    properties = kafka.properties()
    assert properties["message.max.bytes"] == str(message_max_bytes(settings.kafka))
    assert properties["listeners"] == ("PLAINTEXT://127.0.0.1:19092,"
                                       "CONTROLLER://127.0.0.1:19093")
    assert properties["advertised.listeners"] == "PLAINTEXT://127.0.0.1:19092"
    assert properties["controller.quorum.voters"] == "1@127.0.0.1:19093"
    assert properties["process.roles"] == "broker,controller"
    assert properties["num.partitions"] == "5"
    # The jars of the version the pom pins, started as plain java with a capped heap.
    command = kafka.command()
    assert command[0] == "java" and "-Xmx512m" in command and command[-2] == "kafka.Kafka"
    assert f"{pinned_version()}/libs/*" in command[command.index("-cp") + 1]


def test_the_pinned_kafka_is_a_4x_release() -> None:
    assert pinned_version().split(".")[0] == "4"


def test_the_compose_file_runs_the_same_kafka_with_the_same_message_size() -> None:
    compose = yaml.safe_load((Path(__file__).parents[2] / "localstack-compose.yml").read_text())
    kafka = compose["services"]["kafka"]
    assert kafka["image"] == f"apache/kafka:{pinned_version()}"
    assert compose["services"]["kafka-init"]["image"] == kafka["image"]
    shipped = load_settings(environ={}).kafka
    assert kafka["environment"]["KAFKA_MESSAGE_MAX_BYTES"] == message_max_bytes(shipped)
    assert kafka["environment"]["KAFKA_NUM_PARTITIONS"] == shipped.partitions


def test_the_producer_timeout_bounds_every_wait_of_a_send() -> None:
    options = producer_options(KafkaSettings(producer_timeout="3s"))
    # The first connection included: kafka-python's own default for it is 30 s.
    assert options["bootstrap_timeout_ms"] == options["max_block_ms"] == 3000
    assert options["request_timeout_ms"] == 3000 and options["delivery_timeout_ms"] == 6000
