"""What one event looks like on the wire: a Kafka record keyed by the event's partition key,
its JSON envelope as the value, and its metadata in record headers as well, so a consumer can
route or filter without parsing the value. Pure.

The envelope stays the source of truth (the projector reads it, and a Lambda event source
batch carries it whole); the headers repeat what it says.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

CONTENT_TYPE = "application/json"
# Header names, as consumers see them.
EVENT_ID, EVENT_TYPE, EVENT_KEY, EVENT_SEQUENCE = (
    "event_id", "event_type", "event_key", "event_sequence")
HEADER_CONTENT_TYPE = "content-type"

Headers = tuple[tuple[str, bytes], ...]


@dataclass(frozen=True)
class EventRecord:
    key: str
    value: bytes
    headers: Headers = ()

    @classmethod
    def from_outbox(cls, row: Mapping[str, Any]) -> EventRecord:
        """The record for one outbox row (event_id, partition_key, sequence, type, envelope)."""
        envelope = row["envelope"]
        value = envelope if isinstance(envelope, bytes) else envelope.encode()
        return cls(row["partition_key"], value, (
            (EVENT_ID, str(row["event_id"]).encode()),
            (EVENT_TYPE, str(row["type"]).encode()),
            (EVENT_KEY, str(row["partition_key"]).encode()),
            (EVENT_SEQUENCE, str(row["sequence"]).encode()),
            (HEADER_CONTENT_TYPE, CONTENT_TYPE.encode()),
        ))


def header_map(headers: Sequence[tuple[str, bytes | None]] | None) -> dict[str, str]:
    """A record's headers as text, by name (the last one wins, as Kafka's lastHeader does)."""
    return {name: (value or b"").decode() for name, value in headers or ()}
