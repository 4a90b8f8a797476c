"""An in-memory world for driving the step attempts: a saga stored in the in-memory definition
store, one execution "e1" of it, the in-memory step ledger, scripted actions and a clock that
moves only when told."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib.domain.executions import Execution, Fault, StepRun, StepShape
from chalicelib.domain.lifecycle import ExecutionStatus, Phase, StepStatus
from chalicelib.domain.models import SagaDefinition
from chalicelib.domain.step_context import StepContext
from chalicelib.roots.step_handler import run_step
from chalicelib.testing import InMemoryDefinitionStore, InMemoryExecutionStore, InMemoryStepLedger
from chalicelib.usecases.ports import Actor
from chalicelib.usecases.steps.attempt import AttemptRunner

PARTICIPANT = "http://127.0.0.1:9/pay"  # resolved to a test function: nothing listens


@dataclass
class Actions:
    """The actions the saga names: each call is kept; `script` makes one raise or act."""

    ledger: InMemoryStepLedger
    calls: list[tuple[str, str, int, bool]] = field(default_factory=list)
    script: dict[str, Callable[[StepContext], None]] = field(default_factory=dict)
    contexts: list[StepContext] = field(default_factory=list)

    def resolve(self, name: str) -> Callable[[StepContext], dict[str, Any]]:
        def run(ctx: StepContext) -> dict[str, Any]:
            # Whether the (row) locks were held while it ran.
            self.calls.append((name, ctx.phase, ctx.attempt, self.ledger.locked))
            self.contexts.append(ctx)
            if name != PARTICIPANT:
                ctx.cursor.execute("INSERT INTO effects VALUES (%s, %s)", (name, ctx.step_id))
            if name in self.script:
                self.script[name](ctx)
            return {"by": name, "attempt": ctx.attempt}

        return run

    def ran(self, name: str) -> int:
        return sum(1 for call in self.calls if call[0] == name)


class Clock:
    """Wall and monotonic time that move only when told."""

    def __init__(self) -> None:
        self.wall = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
        self.mono = 100.0

    def now(self) -> datetime:
        return self.wall

    def monotonic(self) -> float:
        return self.mono

    def sleep(self, seconds: float) -> None:
        self.mono += seconds
        self.wall += timedelta(seconds=seconds)


@dataclass
class World:
    store: InMemoryExecutionStore
    ledger: InMemoryStepLedger
    actions: Actions
    runtime: AttemptRunner
    clock: Clock
    definitions: InMemoryDefinitionStore

    def deliver(self, step_id: str, phase: Phase = Phase.ACTION, **extra: Any) -> dict[str, Any]:
        return run_step(self.runtime, {"execution_id": "e1", "step_id": step_id,
                                       "phase": phase.value, "attempt": 0, **extra})

    def execution(self) -> Execution:
        found = self.store.get("e1")
        assert found is not None
        return found

    def step(self, step_id: str) -> StepRun:
        return next(s for s in self.execution().steps if s.step_id == step_id)

    def event_types(self) -> list[str]:
        return [e["type"] for e in self.store.events if e["key"] == "e1"]

    def events_of(self, event_type: str) -> list[dict[str, Any]]:
        return [e for e in self.store.events if e["type"] == event_type]

    def set_status(self, status: ExecutionStatus,
                   steps: dict[str, StepStatus] | None = None) -> None:
        execution = self.execution()
        execution.status = status
        for step in execution.steps:
            step.status = (steps or {}).get(step.step_id, step.status)
        self.store.put(execution)


def build_world(saga_definition: dict[str, Any], *,
                faults: list[dict[str, Any]] | None = None,
                saga_input: dict[str, Any] | None = None, **options: Any) -> World:
    definitions = InMemoryDefinitionStore()
    saga = definitions.insert_version(SagaDefinition.model_validate(saga_definition),
                                      expected_revision=None, actor=Actor("test"),
                                      action="create")
    store = InMemoryExecutionStore(definitions)
    now = datetime.now(UTC)
    store.create(Execution(id="e1", saga_id=saga.id, revision=saga.revision,
                           version=saga.version, status=ExecutionStatus.RUNNING,
                           input={"sku": "A-1"} if saga_input is None else saga_input,
                           started_at=now, updated_at=now,
                           faults=[Fault.model_validate(f) for f in faults or []]),
                 [StepShape.of(step) for step in saga.active_steps()])
    ledger = InMemoryStepLedger(store)
    actions = Actions(ledger)
    clock = Clock()
    runtime = AttemptRunner(ledger, definitions, actions.resolve, faults_enabled=bool(faults),
                            sleep=clock.sleep,
                            clock=clock.now, monotonic=clock.monotonic, **options)
    return World(store, ledger, actions, runtime, clock, definitions)


