"""The projector's loop makes its Kafka consumer anew when that consumer has lost its group
coordinator for good (kafka-python 3.0 can: it then polls on and fetches nothing), and leaves a
consumer alone while it knows its coordinator or has just lost it."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from chalicelib.adapters.kafka.consumer import coordinator_known, run_projector


class _Coordinator:
    def __init__(self, known: bool) -> None:
        self.known = known

    def coordinator_unknown(self) -> bool:
        return not self.known


class _Consumer:
    """Polls nothing; its coordinator is known or not, as told."""

    def __init__(self, known: bool, clock: list[float], stop: threading.Event,
                 polls_before_stop: int) -> None:
        self._coordinator = _Coordinator(known)
        self.clock, self.stop = clock, stop
        self.polls, self.closed = 0, False
        self.polls_before_stop = polls_before_stop

    def poll(self, **_: Any) -> dict[Any, Any]:
        self.polls += 1
        self.clock[0] += 1.0  # each poll takes a second of the loop's clock
        if self.polls >= self.polls_before_stop:
            self.stop.set()
        return {}

    def commit(self) -> None:
        raise AssertionError("nothing was polled: nothing to commit")

    def close(self, autocommit: bool = True) -> None:
        self.closed = True


class _Projector:
    def apply_batch(self, events: list[Mapping[str, Any]]) -> int:
        return len(events)

    def apply(self, event: Mapping[str, Any]) -> bool:
        return True


def _run(first_known: bool) -> list[_Consumer]:
    clock, stop = [0.0], threading.Event()
    made: list[_Consumer] = []

    def make() -> Any:
        # The first consumer is told whether it knows its coordinator; the next one does.
        consumer = _Consumer(first_known if not made else True, clock, stop,
                             polls_before_stop=40)
        made.append(consumer)
        return consumer

    run_projector(make, _Projector(), stop, coordinator_lost_s=15, clock=lambda: clock[0],
                  max_backoff_s=0.01)
    return made


def test_a_consumer_that_lost_its_coordinator_is_closed_and_made_again() -> None:
    first, second = _run(first_known=False)
    assert first.closed and first.polls == 17  # lost at its first poll, given up 16 s later
    assert second.polls == 40  # then polled on until the stop


def test_a_consumer_that_knows_its_coordinator_is_kept() -> None:
    (only,) = _run(first_known=True)
    assert only.polls == 40


def test_a_consumer_without_a_coordinator_object_counts_as_knowing_it() -> None:
    assert coordinator_known(object())
    assert not coordinator_known(_Consumer(False, [0.0], threading.Event(), 1))
