"""Many executions run side by side through a set of stores (the in-memory fakes, or MySQL) by
the real step runtime, recorder and fan-out runner, without an engine: their events
interleave in the outbox as concurrent sagas' do. What the projector's tests feed it; the
stores' own view of each execution is what the read model must then equal, field by field.

Each execution ends its own way: completed, compensated after a retried step failed for good,
compensation failed after an unknown outcome, failed and resolved by an operator, parked and
resumed, and a fan-out after a skipped step. `written` runs them on the in-memory stores.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib.domain import event_types
from chalicelib.domain.decisions import StepRequest
from chalicelib.domain.executions import Execution, StepShape, execution_error
from chalicelib.domain.lifecycle import ExecutionStatus, Phase, StepStatus
from chalicelib.domain.models import SagaDefinition, StoredSaga
from chalicelib.domain.read_documents import APPLIED
from chalicelib.domain.step_context import (
    OutcomeUnknown,
    PermanentError,
    RetryableError,
    StepContext,
)
from chalicelib.testing import InMemoryDefinitionStore, InMemoryExecutionStore, InMemoryStepLedger
from chalicelib.usecases.ports import Actor, DefinitionStore, ExecutionStore, RunRef
from chalicelib.usecases.steps.attempt import AttemptRunner
from chalicelib.usecases.steps.fanouts import FanOutRunner
from chalicelib.usecases.steps.ledger import StepLedger
from chalicelib.usecases.steps.recorder import EndReport, OutcomeRecorder

ACTOR = Actor("projection")
ENDINGS = ("completed", "compensated", "compensation_failed", "resolved", "resumed", "fanout")
Move = Callable[[], Any]


def _step(step_id: str, order: int, retries: int, **more: Any) -> dict[str, Any]:
    return {"id": step_id, "name": step_id.upper(), "description": f"step {step_id}",
            "order": order, "action": f"act.{step_id}", "compensation": f"undo.{step_id}",
            "max_retries": retries, "timeout": "30s", **more}


def _sagas(suffix: str) -> tuple[SagaDefinition, SagaDefinition]:
    linear = SagaDefinition.model_validate({
        "id": f"linear-{suffix}", "name": "Linear", "description": "three steps",
        "version": "1.0.0", "steps": [_step("a", 1, 0), _step("b", 2, 1), _step("c", 3, 0)]})
    branches = SagaDefinition.model_validate({
        "id": f"branches-{suffix}", "name": "Branches", "description": "skip and fan out",
        "version": "1.0.0", "steps": [
            _step("create", 1, 0),
            _step("ship", 2, 0, when='$.input.kind != "digital"'),
            _step("reserve", 3, 0, for_each="$.input.lines", max_concurrency=2)]})
    return linear, branches


class Clock:
    """Wall time moving on by an odd number of microseconds at each look: every event has a
    time of its own, with microseconds no BSON date keeps."""

    def __init__(self) -> None:
        self.at = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)

    def __call__(self) -> datetime:
        self.at += timedelta(microseconds=1237)
        return self.at


@dataclass
class Actions:
    """Each action answers {"by": its name}, or raises what `fail` says for its execution."""

    fail: dict[tuple[str, str], Exception] = field(default_factory=dict)

    def resolve(self, name: str) -> Callable[[StepContext], dict[str, Any]]:
        def run(ctx: StepContext) -> dict[str, Any]:
            if (ctx.execution_id, name) in self.fail:
                raise self.fail[(ctx.execution_id, name)]
            return {"by": name, "attempt": ctx.attempt}

        return run


@dataclass
class Streams:
    """Writes interleaved executions through one set of stores."""

    definitions: DefinitionStore
    executions: ExecutionStore
    ledger: StepLedger
    clock: Clock = field(default_factory=Clock)
    actions: Actions = field(default_factory=Actions)

    def __post_init__(self) -> None:
        self.runner = AttemptRunner(self.ledger, self.definitions, self.actions.resolve,
                                    clock=self.clock, sleep=lambda seconds: None)
        self.recorder = OutcomeRecorder(self.ledger, self.definitions, clock=self.clock)
        self.fanouts = FanOutRunner(self.ledger, self.definitions, self.runner.outcomes,
                                    self.clock, max_items=10, max_concurrency=10)
        self.linear, self.branches = (
            self.definitions.insert_version(saga, expected_revision=None, actor=ACTOR,
                                            action="create")
            for saga in _sagas(uuid.uuid4().hex[:8]))

    def run(self, count: int) -> list[str]:
        """`count` executions, their endings in turn, one move of each in turn; their ids."""
        scripts = [self._script(ENDINGS[n % len(ENDINGS)]) for n in range(count)]
        for moves in itertools.zip_longest(*(moves for _, moves in scripts)):
            for move in moves:
                if move is not None:
                    move()
        return [execution_id for execution_id, _ in scripts]

    # -- the moves -------------------------------------------------------------------------

    def _create(self, saga: StoredSaga, saga_input: dict[str, Any]) -> str:
        execution_id = f"p-{uuid.uuid4().hex[:12]}"
        at = self.clock()
        self.executions.create(Execution(
            id=execution_id, saga_id=saga.id, revision=saga.revision, version=saga.version,
            status=ExecutionStatus.RUNNING, input=saga_input, started_at=at, updated_at=at),
            [StepShape.of(step) for step in saga.active_steps()])
        return execution_id

    def _deliver(self, execution_id: str, step_id: str, phase: Phase = Phase.ACTION, *,
                 fails: bool = False, **extra: Any) -> Move:
        def move() -> None:
            request = StepRequest.model_validate({"execution_id": execution_id,
                                                  "step_id": step_id, "phase": phase.value,
                                                  **extra})
            try:
                self.runner.run(request)
            except Exception:
                if not fails:  # a step's failure is raised, for the engine to see
                    raise
        return move

    def _fanout(self, execution_id: str, task: str) -> Move:
        return lambda: self.fanouts.run(StepRequest.model_validate({
            "execution_id": execution_id, "step_id": "reserve", "phase": Phase.ACTION.value,
            "fanout": task}))

    def _end(self, execution_id: str, outcome: ExecutionStatus) -> Move:
        return lambda: self.recorder.record(EndReport(execution_id=execution_id,
                                                      outcome=outcome, error={}))

    def _started(self, execution_id: str) -> Move:
        return lambda: self.executions.mark_started(
            execution_id, RunRef(execution_id, "arn:machine", f"arn:run:{execution_id}"))

    def _script(self, ending: str) -> tuple[str, list[Move]]:
        if ending == "fanout":
            lines = [{"sku": f"sku-{n}"} for n in range(3)]
            x = self._create(self.branches, {"kind": "digital", "lines": lines})
            return x, [self._started(x), self._deliver(x, "create"),
                       self._deliver(x, "ship"), self._fanout(x, "expand"),
                       *(self._deliver(x, "reserve", item=n) for n in (2, 0, 1)),
                       self._fanout(x, "gather"), self._end(x, ExecutionStatus.COMPLETED)]
        x = self._create(self.linear, {"sku": "A-1", "n": 2})
        a, b, c = (self._deliver(x, step) for step in "abc")
        if ending == "completed":
            return x, [self._started(x), a, b, c, self._end(x, ExecutionStatus.COMPLETED)]
        if ending == "compensated":
            self.actions.fail[(x, "act.b")] = RetryableError("busy")
            return x, [self._started(x), a, self._deliver(x, "b", fails=True),
                       self._deliver(x, "b", fails=True), self._deliver(x, "c", fails=True),
                       self._deliver(x, "a", Phase.COMPENSATION, last=True,
                                     error={"Error": "RetryableError", "Cause": "busy"})]
        if ending == "compensation_failed":
            self.actions.fail[(x, "act.a")] = OutcomeUnknown("cut", result={"late": 1})
            self.actions.fail[(x, "undo.a")] = PermanentError("no way back")
            return x, [self._deliver(x, "a", fails=True),
                       self._deliver(x, "a", Phase.COMPENSATION, fails=True),
                       self._end(x, ExecutionStatus.COMPENSATION_FAILED)]
        if ending == "resolved":
            return x, [self._started(x), a, lambda: self.executions.transition(
                x, {ExecutionStatus.RUNNING}, ExecutionStatus.FAILED, event_types.SAGA_FAILED,
                {"reason": "lost"}, error=execution_error(None, None, "Lost", "gone")),
                lambda: self.executions.resolve(x, "ops", "refunded by hand")]
        assert ending == "resumed"
        return x, [self._started(x), a, lambda: self._park(x, "b"),
                   lambda: self.executions.resume(x, ["b"], "ops"), b, c,
                   self._end(x, ExecutionStatus.COMPLETED)]

    def _park(self, execution_id: str, step_id: str) -> None:
        at = self.clock()
        with self.ledger.transaction() as tx:
            tx.lock_execution(execution_id)
            tx.lock_step(execution_id, step_id)
            tx.record_outcome(execution_id, step_id, status=StepStatus.RUNNING,
                              phase=Phase.ACTION, at=at, started=at,
                              error={"type": "Busy", "message": "no"})
        self.executions.transition(
            execution_id, {ExecutionStatus.RUNNING}, ExecutionStatus.PARKED,
            event_types.SAGA_PARKED, {"reason": "out of attempts"},
            error=execution_error(step_id, Phase.ACTION, "Busy", "no"))


@dataclass
class Written:
    """Executions written to the in-memory write model, and its outbox in order."""

    store: InMemoryExecutionStore
    ids: list[str]
    outbox: list[dict[str, Any]]

    def write_view(self, execution_id: str) -> Execution:
        """The write model's view, without its own bookkeeping (which no event carries)."""
        found = self.store.get(execution_id)
        assert found is not None
        return found.model_copy(update={"expected_by": None, "steps": [
            step.model_copy(update={"retry_base": 0}) for step in found.steps]})

    def applicable(self) -> list[dict[str, Any]]:
        return [event for event in self.outbox if event["type"] in APPLIED]


def written(count: int = 2 * len(ENDINGS)) -> Written:
    definitions = InMemoryDefinitionStore()
    store = InMemoryExecutionStore(definitions)
    ids = Streams(definitions, store, InMemoryStepLedger(store)).run(count)
    # The definitions' events first, as their sagas were stored before anything ran.
    return Written(store, ids, [*definitions.events, *store.events])
