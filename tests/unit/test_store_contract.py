"""The stores' contract on the in-memory fakes (tests/support/store_contract.py): what the
services' unit tests run on behaves, and writes events, as the MySQL stores do."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chalicelib.domain import event_types, events
from chalicelib.testing import InMemoryDefinitionStore, InMemoryExecutionStore, InMemoryStepLedger

# Its asserts say what differed, as a test module's do.
pytest.register_assert_rewrite("tests.support.store_contract")
from tests.support.store_contract import StoreContract, Stores  # noqa: E402


def in_memory_stores() -> Stores:
    definitions = InMemoryDefinitionStore()
    executions = InMemoryExecutionStore(definitions)
    ledger = InMemoryStepLedger(executions)

    def outbox(key: str) -> list[dict[str, Any]]:
        return sorted((e for e in (*definitions.events, *executions.events) if e["key"] == key),
                      key=lambda e: e["sequence"])

    def age(execution_id: str, seconds: float) -> None:
        row = executions.get(execution_id)
        assert row is not None
        ago = timedelta(seconds=seconds)
        executions.put(row.model_copy(update={
            "updated_at": row.updated_at - ago,
            "expected_by": row.expected_by and row.expected_by - ago}))

    def expected_by(execution_id: str) -> datetime | None:
        row = executions.get(execution_id)
        assert row is not None
        return row.expected_by

    return Stores(definitions, executions, ledger, outbox, age, expected_by)


class TestInMemoryStores(StoreContract):
    @pytest.fixture
    def stores(self) -> Stores:
        return in_memory_stores()


def test_a_builder_decides_its_keys_and_refuses_others() -> None:
    error = {"step_id": None, "phase": None, "type": "X", "message": "y"}
    assert events.moved(event_types.SAGA_FAILED, saga_id="s", status="FAILED").data == {
        "saga_id": "s", "status": "FAILED"}  # no error given: the key is left out
    assert events.moved(event_types.SAGA_COMPLETED, saga_id="s", status="COMPLETED",
                        execution_error=None).data["execution_error"] is None  # null: cleared
    assert events.moved(event_types.SAGA_PARKED, saga_id="s", status="PARKED",
                        execution_error=error, reason="r").data == {
        "saga_id": "s", "status": "PARKED", "execution_error": error, "reason": "r"}
    with pytest.raises(TypeError):  # a key this type does not carry
        events.moved(event_types.COMPENSATION_STARTED, saga_id="s", status="COMPENSATING",
                     output={})
    with pytest.raises(ValueError, match="not the event of"):
        events.moved(event_types.SAGA_RESOLVED, saga_id="s", status="FAILED")
    tried = events.StepAttempt(saga_id="s", step_id="a", attempt=1, phase="action",
                               started=datetime(2026, 1, 1, tzinfo=UTC),
                               ended=datetime(2026, 1, 1, 0, 0, 1, tzinfo=UTC))
    with pytest.raises(TypeError):  # a retried attempt does not end the execution
        events.attempt_failed(event_types.STEP_RETRIED, tried, error={}, outcome="failed",
                              step={}, execution_error=error)
    assert events.step_started(tried) == events.Event(event_types.STEP_STARTED, {
        "saga_id": "s", "step_id": "a", "attempt": 1, "phase": "action",
        "started_at": "2026-01-01T00:00:00+00:00", "duration_ms": 1000})
