"""The bus and push fakes keep the contracts their real counterparts keep."""

from __future__ import annotations

import json

import pytest

from chalicelib.domain import event_types, events
from chalicelib.domain.event_records import EventRecord
from chalicelib.testing import InMemoryEventBus, RecordingPusher
from chalicelib.testing.bus import BusDown


def test_the_bus_acknowledges_refuses_by_index_and_can_be_down() -> None:
    bus = InMemoryEventBus(refuse_keys={"bad"})
    event = events.envelope(event_types.SAGA_COMPLETED, key="e1", subject="execution/e1",
                            sequence=1, data={})
    refused = bus.publish("t", [EventRecord("e1", json.dumps(event).encode()),
                                EventRecord("bad", b"{}")])
    assert refused == {1: "refused by the test"}
    assert [e["type"] for e in bus.events("t")] == [event_types.SAGA_COMPLETED]
    bus.down = True
    with pytest.raises(BusDown):
        bus.publish("t", [EventRecord("e1", b"{}")])
    assert len(bus.events("t")) == 1


def test_the_pusher_sends_to_the_subscribers_of_an_events_topics() -> None:
    pusher = RecordingPusher(subscribers={"execution:e1": {"c1"}, "saga:pay": {"c2"},
                                          "execution:e2": {"c3"}})
    event = events.envelope(event_types.STEP_SUCCEEDED, key="e1", subject="execution/e1",
                            sequence=2, data={"saga_id": "pay"})
    assert pusher.push_event(event) == 2
    assert [connection for connection, _ in pusher.sent] == ["c1", "c2"]
