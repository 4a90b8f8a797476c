"""Which events the read model and the push feed take, derived from domain/events.py's names.

The projector once listed type prefixes of its own; now it applies exactly the types the
lifecycle gives a status or a step's phase, plus an execution's start and its own row's.
"""

from __future__ import annotations

from chalicelib.adapters.mongo.projector import Projector
from chalicelib.adapters.push.subscriptions import ALL, topics_of
from chalicelib.domain import event_types, events
from chalicelib.domain.read_documents import APPLIED

# Every event type the service writes: domain/events.py's constants named "saga.<...>".
TYPES = frozenset(value for name, value in vars(events).items()
                  if name.isupper() and isinstance(value, str) and value.startswith("saga."))


def test_every_event_type_is_an_executions_or_a_definitions() -> None:
    assert event_types.DEFINITION_EVENTS <= TYPES
    assert APPLIED <= TYPES
    assert APPLIED.isdisjoint(event_types.DEFINITION_EVENTS)
    assert APPLIED | event_types.DEFINITION_EVENTS == TYPES, \
        "an event type of domain/events.py that the read model neither applies nor skips"


def test_the_projector_skips_definition_and_unknown_events_before_any_io() -> None:
    # No MongoDB client: a skipped event must not reach for one.
    projector = Projector(client=None, db=None)  # type: ignore[arg-type]
    for event_type in [*event_types.DEFINITION_EVENTS, "saga.step.unknown", ""]:
        assert projector.apply({"type": event_type, "key": "k", "sequence": 1}) is False


def test_definition_events_go_to_their_saga_not_to_an_execution() -> None:
    for event_type in event_types.DEFINITION_EVENTS:
        event = {"type": event_type, "key": "pay", "data": {"saga_id": "pay"}}
        assert topics_of(event) == [ALL, "saga:pay"]
    step = {"type": event_types.STEP_SUCCEEDED, "key": "x-1", "data": {"saga_id": "pay"}}
    assert topics_of(step) == [ALL, "saga:pay", "execution:x-1"]
