"""Executions that wait on callbacks, written through the in-memory stores by the real step
runtime and callback service, without an engine: approvals of two sagas (one whose wait is
short), a partner's callback, an approval approved and one rejected, and one still waiting
whose execution ended. What the read model's open-callback listing is tested on
(tests/support/projection_contract.py): the write model says which are open."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from chalicelib.domain import event_types
from chalicelib.domain.decisions import StepRequest
from chalicelib.domain.executions import Execution, ExecutionStatus, StepShape, Waiting
from chalicelib.domain.models import SagaDefinition, StoredSaga
from chalicelib.domain.requests import FailRequest, SucceedRequest
from chalicelib.testing import InMemoryDefinitionStore, InMemoryExecutionStore, InMemoryStepLedger
from chalicelib.testing.orchestrator import ScriptedEngine
from chalicelib.usecases.ports import Actor
from chalicelib.usecases.steps.callbacks import CallbackService, Caller
from chalicelib.usecases.steps.revisions import StepDefinitions
from tests.support.projection_streams import Actions, Clock, Streams

PARTNER = "http://partner.invalid/confirm"
LONG, SHORT = timedelta(hours=48), timedelta(minutes=1)


def _saga(saga_id: str, second: dict[str, Any]) -> SagaDefinition:
    return SagaDefinition.model_validate({
        "id": saga_id, "name": saga_id, "description": "reserve, then wait",
        "version": "1.2.0", "steps": [
            {"id": "reserve", "name": "Reserve", "description": "stock", "order": 1,
             "action": "act.reserve", "compensation": "undo.reserve", "max_retries": 0,
             "timeout": "30s"},
            {"order": 2, "kind": "callback", **second}]})


def _approval(timeout: str) -> dict[str, Any]:
    return {"id": "approve", "name": "Manager approval",
            "description": "A manager approves the refund", "timeout": timeout,
            "input": {"amount": "$.input.amount", "reserved": "$.results.reserve.by"}}


def _wait(store: InMemoryExecutionStore, execution_id: str, step_id: str) -> Waiting:
    found = store.get(execution_id)
    assert found is not None
    step = next(s for s in found.steps if s.step_id == step_id)
    assert step.waiting is not None
    return step.waiting


@dataclass
class Waits:
    """The written executions, by what they came to, and the outbox in order."""

    store: InMemoryExecutionStore
    outbox: list[dict[str, Any]]
    sagas: dict[str, StoredSaga]  # "approvals", "quick", "partner"
    open_approvals: list[str]  # execution ids, in the order their waits began
    open_partner: list[str]
    quick: list[str]  # approvals whose wait is SHORT
    closed: list[str]  # approved, rejected, or its execution ended while it waited
    clock: Clock

    def wait_of(self, execution_id: str, step_id: str) -> Waiting:
        return _wait(self.store, execution_id, step_id)

    def view(self, execution_id: str) -> Execution:
        found = self.store.get(execution_id)
        assert found is not None
        return found


def written_waits() -> Waits:
    definitions = InMemoryDefinitionStore()
    store = InMemoryExecutionStore(definitions)
    ledger = InMemoryStepLedger(store)
    streams = Streams(definitions, store, ledger, actions=Actions())
    suffix = uuid.uuid4().hex[:8]
    sagas = {name: definitions.insert_version(saga, expected_revision=None,
                                              actor=Actor("waits"), action="create")
             for name, saga in (
                 ("approvals", _saga(f"approvals-{suffix}", _approval("48h"))),
                 ("quick", _saga(f"quick-{suffix}", _approval("1m"))),
                 ("partner", _saga(f"partner-{suffix}", {
                     "id": "confirm", "name": "Confirm payment",
                     "description": "The provider confirms", "timeout": "48h",
                     "action": PARTNER, "compensation": PARTNER})))}
    engine = ScriptedEngine()
    service = CallbackService(ledger, engine, streams.runner.outcomes,
                              StepDefinitions(definitions), clock=streams.clock)

    def waiting(saga: StoredSaga, amount: str) -> str:
        at = streams.clock()
        execution_id = f"w-{uuid.uuid4().hex[:10]}"
        store.create(Execution(id=execution_id, saga_id=saga.id, revision=saga.revision,
                               version=saga.version, status=ExecutionStatus.RUNNING,
                               input={"amount": amount}, started_at=at, updated_at=at),
                     [StepShape.of(step) for step in saga.active_steps()])
        for step in saga.active_steps():
            token = engine.wait(f"token-{execution_id}-{step.id}")
            streams.runner.run(StepRequest.model_validate({
                "execution_id": execution_id, "step_id": step.id, "phase": "action",
                "task_token": token}))
        return execution_id

    def callback_of(execution_id: str) -> str:
        return str(_wait(store, execution_id, "approve").callback_id)

    open_approvals: list[str] = []
    open_partner: list[str] = []
    quick: list[str] = []
    closed: list[str] = []
    for n in range(7):
        if n == 1:
            open_partner.append(waiting(sagas["partner"], "1.00"))
        elif n == 2:
            quick.append(waiting(sagas["quick"], "2.00"))
        elif n == 3:
            approved = waiting(sagas["approvals"], "3.00")
            service.succeed(callback_of(approved), SucceedRequest(
                result={"approved": True, "comment": "fine"}), Caller(subject="alice"))
            closed.append(approved)
        elif n == 4:
            rejected = waiting(sagas["approvals"], "4.00")
            service.fail(callback_of(rejected), FailRequest(error="Rejected", reason="no"),
                         Caller(subject="bob"))
            closed.append(rejected)
        elif n == 5:  # it still waits, but its execution ended (the reconciler failed it)
            ended = waiting(sagas["approvals"], "5.00")
            store.transition(ended, {ExecutionStatus.RUNNING}, ExecutionStatus.FAILED,
                             event_types.SAGA_FAILED, {"reason": "lost"})
            closed.append(ended)
        else:
            open_approvals.append(waiting(sagas["approvals"], f"{n}.00"))
    return Waits(store, [*definitions.events, *store.events], sagas, open_approvals,
                 open_partner, quick, closed, streams.clock)


def moment_after(waits: Waits) -> datetime:
    """A moment after every wait began, before any ended."""
    return waits.clock.at + timedelta(seconds=1)
