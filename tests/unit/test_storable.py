"""What the API accepts can be stored everywhere, and a poison event never stops the projector."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pytest
from bson.errors import InvalidDocument
from pymongo.errors import AutoReconnect

from chalicelib.adapters.kafka.consumer import apply_all
from chalicelib.domain.requests import ExecuteRequest, parse_request
from chalicelib.domain.storable import (
    ENVELOPE_OVERHEAD_BYTES,
    MAX_REQUEST_DEPTH,
    MYSQL_MAX_JSON_DEPTH,
    NotStorable,
    TooLarge,
    check_storable,
    key_problem,
)
from chalicelib.http.http_errors import http_status
from chalicelib.usecases.executions import ExecutionPolicy, ExecutionService


def _service(**policy: Any) -> ExecutionService:
    return ExecutionService(None, None, None, ExecutionPolicy(faults_enabled=True, **policy),
                            None)  # type: ignore[arg-type]


def _request(body: dict[str, Any]) -> ExecuteRequest:
    """The body as the edge reads it."""
    return parse_request(ExecuteRequest, body)


@pytest.mark.parametrize("saga_input", [
    {"a\x00b": 1}, {"nested": {"x": [{"\x00": 1}]}}, {"$where": 1}, {"a.b": 1},
    {"text": "\ud800"},
])
def test_keys_and_strings_no_store_takes_are_refused_at_the_door(saga_input: dict) -> None:
    with pytest.raises(NotStorable) as refused:
        _service()._check_request(_request({"input": saga_input}))
    assert http_status(refused.value) == 400 and "input" in refused.value.message


def test_size_counts_the_encoded_event_not_the_characters() -> None:
    # 0.5 M two-byte characters: 1 MB as UTF-8, 3 MB once the outbox escapes them.
    body = {"input": {"text": "é" * 500_000}}
    with pytest.raises(TooLarge) as refused:
        _service(max_input_bytes=10 * 1024 * 1024)._check_request(_request(body))
    assert http_status(refused.value) == 413 and "the limit is" in refused.value.message


def test_what_fits_in_one_kafka_request_passes() -> None:
    limit = 64 * 1024
    check_storable({"input": {"t": "x" * (limit - ENVELOPE_OVERHEAD_BYTES - 20)}},
                   max_event_bytes=limit)
    with pytest.raises(TooLarge):
        check_storable({"input": {"t": "x" * (limit - ENVELOPE_OVERHEAD_BYTES)}},
                       max_event_bytes=limit)


class FakeProjector:
    """Applies a batch all or nothing, as the real one does; `tries` counts each event's
    attempts on its own, `batches` the batches it was given."""

    def __init__(self, fails: dict[str, BaseException]) -> None:
        self.fails = fails
        self.tries: dict[str, int] = {}
        self.applied: list[str] = []
        self.batches: list[list[str]] = []

    def apply(self, event: Mapping[str, Any]) -> bool:
        self.tries[event["id"]] = self.tries.get(event["id"], 0) + 1
        if event["id"] in self.fails:
            raise self.fails[event["id"]]
        self.applied.append(event["id"])
        return True

    def apply_batch(self, events: Iterable[Mapping[str, Any]]) -> int:
        ids = [event["id"] for event in events]
        self.batches.append(ids)
        for event_id in ids:
            if event_id in self.fails:
                raise self.fails[event_id]
        self.applied += ids
        return len(ids)


class FakeSink:
    def __init__(self) -> None:
        self.letters: list[tuple[str, str, str, int]] = []

    def add(self, stage: str, envelope: str | bytes, reason: str, attempts: int) -> int:
        self.letters.append((stage, str(envelope), reason, attempts))
        return len(self.letters)


def test_a_poison_event_is_dead_lettered_after_three_attempts_and_the_rest_applied() -> None:
    projector = FakeProjector({"e5": InvalidDocument("key 'a\\x00' must not contain NUL")})
    sink = FakeSink()
    batch = [{"id": f"e{n}"} for n in range(1, 9)]
    applied = apply_all(projector, batch, sink, pause_s=0)  # type: ignore[arg-type]
    assert applied == 7 and projector.applied == ["e1", "e2", "e3", "e4", "e6", "e7", "e8"]
    # The failed batch halved, down to the poison; the rest still applied in bulk.
    assert projector.batches == [[f"e{n}" for n in range(1, 9)], ["e1", "e2", "e3", "e4"],
                                 ["e5", "e6", "e7", "e8"], ["e5", "e6"], ["e7", "e8"]]
    assert projector.tries == {"e5": 3, "e6": 1}
    [(stage, envelope, reason, attempts)] = sink.letters
    assert (stage, attempts) == ("projector", 3)
    assert "InvalidDocument" in reason and '"e5"' in envelope


def test_mongodb_being_down_is_no_event_s_fault() -> None:
    projector = FakeProjector({"e1": AutoReconnect("connection refused")})
    sink = FakeSink()
    with pytest.raises(AutoReconnect):
        apply_all(projector, [{"id": "e1"}, {"id": "e2"}], sink, pause_s=0)  # type: ignore[arg-type]
    assert sink.letters == [] and projector.batches == [["e1", "e2"]] and projector.tries == {}


def _nested(depth: int) -> dict[str, Any]:
    """An object `depth` levels deep by nesting_depth's count ({} is 1)."""
    value: dict[str, Any] = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


def test_an_input_nests_at_most_as_deep_as_mysql_takes_it_inside_its_event() -> None:
    # Row 8: 30 or 31 levels passed the body's limit (32) and MariaDB refused the event, a 503
    # no retry could cure. The limit leaves room for {"data": {"input": ...}}.
    assert MAX_REQUEST_DEPTH == MYSQL_MAX_JSON_DEPTH - 2 == 29
    _service()._check_request(_request({"input": _nested(MAX_REQUEST_DEPTH)}))
    for depth in (MAX_REQUEST_DEPTH + 1, 31):
        with pytest.raises(NotStorable) as refused:
            _service()._check_request(_request({"input": _nested(depth)}))
        assert http_status(refused.value) == 400
        assert refused.value.message.startswith(
            f"input nests deeper than {MAX_REQUEST_DEPTH} levels, the limit")
        assert refused.value.details == {"limit": MAX_REQUEST_DEPTH}


def test_key_problem_names_what_mongodb_refuses() -> None:
    assert key_problem("amount") is None and key_problem("a$") is None
    assert "'$'" in (key_problem("$a") or "") and "'.'" in (key_problem("a.b") or "")
    assert "NUL" in (key_problem("a\x00") or "")
