"""Fan-out steps, on the recorder Lambda's side: start the items, gather them, and around a
compensation list the items to undo and end their undo. The items themselves run as step
attempts (chalicelib.usecases.steps.attempt), each under its own run "<step id>[<index>]".

Forward:  expand (its condition decided, its list read and checked, its item runs added) ->
          the engine's Map runs every item, at most max_concurrency at once (an item that
          fails for good ends its iteration; once more items failed than tolerated, no new
          item starts) -> gather: every item ended within the tolerance, the step succeeds
          with {"items": [...]}; else it fails and raises Saga.FanOutFailed, and the step's
          own undo runs first (its items may have done their work).
Undo:     undo-items lists the items whose action may have taken effect -> the engine's Map
          compensates each with its own action's result -> undone: the step is compensated
          (or its compensation failed), and the chain's last undo ends the compensation.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from chalicelib.domain import events
from chalicelib.domain.decisions import StepRequest
from chalicelib.domain.fanout import (
    FanOutPlan,
    Tally,
    gathered,
    list_problem,
    to_undo,
    tolerated_count,
)
from chalicelib.domain.lifecycle import FANOUT_FAILED, ExecutionStatus, StepStatus
from chalicelib.domain.mapping import MappingError, resolve
from chalicelib.domain.models import Step
from chalicelib.domain.step_context import PermanentError
from chalicelib.domain.step_runs import LockedExecution
from chalicelib.domain.storable import TooLarge, check_event_size
from chalicelib.usecases.ports import DefinitionStore
from chalicelib.usecases.steps.conditions import skipped_by_condition
from chalicelib.usecases.steps.ledger import LedgerTransaction, StepLedger
from chalicelib.usecases.steps.recording import OutcomeWriter
from chalicelib.usecases.steps.revisions import StepDefinitions
from chalicelib.usecases.steps.scopes import scope_of

_FanOutFailed = type(FANOUT_FAILED, (Exception,), {})
_UndoFailed = type("Saga.FanOutUndoFailed", (Exception,), {})


@dataclass
class FanOutRunner:
    ledger: StepLedger
    definitions: DefinitionStore
    outcomes: OutcomeWriter
    clock: Callable[[], datetime]
    # config saga.max_fanout_items and saga.max_fanout_concurrency.
    max_items: int
    max_concurrency: int
    cache_definitions: bool = True
    sleep: Callable[[float], None] = time.sleep

    def __post_init__(self) -> None:
        self.steps = StepDefinitions(self.definitions, cache=self.cache_definitions)

    def run(self, request: StepRequest) -> dict[str, Any]:
        match request.fanout:
            case "expand":
                return self.expand(request)
            case "gather":
                return self.gather(request)
            case "undo-items":
                return self.undo_items(request)
            case "undone":
                return self.undone(request)
        raise PermanentError(f"no fan-out task {request.fanout!r}")

    def _locked(self, tx: LedgerTransaction,
                request: StepRequest) -> tuple[LockedExecution, Step]:
        return self.steps.locked(tx, request.execution_id, request.step_id)

    def expand(self, request: StepRequest) -> dict[str, Any]:
        """The items' indexes, [0, n): the Map's list (the items' values stay in MySQL)."""
        with self.ledger.transaction() as tx:
            execution, step = self._locked(tx, request)
            run = tx.lock_step(execution.id, step.id)
            if run is None:
                raise PermanentError(f"execution {execution.id!r} has no step {step.id!r}")
            if run.status is not StepStatus.PENDING:  # a repeated delivery: the same items
                count = (0 if run.status is StepStatus.SKIPPED
                         else len(tx.items_of(execution.id, step.id)))
                return {"items": list(range(count))}
            if execution.status is not ExecutionStatus.RUNNING or execution.error is not None:
                return {"items": []}  # the run moved on: nothing new starts
            if skipped_by_condition(tx, execution, step, at=self.clock()) is not None:
                return {"items": []}
            values = self._list(tx, execution, step)
            plan = FanOutPlan(items=len(values),
                              max_concurrency=min(step.max_concurrency or self.max_concurrency,
                                                  self.max_concurrency),
                              tolerated=tolerated_count(step.tolerated_failures, len(values)))
            now = self.clock()
            record = tx.start_items(execution.id, step.id, count=len(values),
                                    plan=plan.record(), at=now)
            tx.append_events(execution.id, [(events.step_fanned_out(
                saga_id=execution.saga_id, step_id=step.id, at=now, plan=plan.record(),
                step=record), now)])
        return {"items": list(range(len(values)))}

    def _list(self, tx: LedgerTransaction, execution: LockedExecution,
              step: Step) -> list[Any]:
        """What the step fans out over, read now; PermanentError when it is absent, not a
        list, or longer than saga.max_fanout_items (the saga compensates what came before)."""
        assert step.for_each is not None
        parsed = tx.load_execution(execution.id)
        scope = scope_of(tx, execution.id, parsed.input, tx.results(execution.id),
                         [step.for_each])
        try:
            value = resolve(step.for_each, scope)
        except MappingError as error:
            raise PermanentError(f"step {step.id}'s for_each: {error}") from None
        if problem := list_problem(step.id, step.for_each, value, max_items=self.max_items):
            raise PermanentError(problem)
        return list(value)

    def gather(self, request: StepRequest) -> dict[str, Any]:
        """Every item has ended: the step succeeds with its items' results, or fails (more
        items failed for good than tolerated, or some never started) and its undo runs."""
        with self.ledger.transaction() as tx:
            execution, step = self._locked(tx, request)
            run = tx.lock_step(execution.id, step.id)
            if run is None or run.status in (StepStatus.SKIPPED, StepStatus.SUCCEEDED):
                return {"status": None if run is None else run.status.value}
            items = tx.items_of(execution.id, step.id)
            tally = Tally.of(item.status for item in items)
            tolerated = tolerated_count(step.tolerated_failures, len(items))
            if tally.complete(tolerated) and run.status is StepStatus.RUNNING:
                result = gathered([item.result if item.status is StepStatus.SUCCEEDED
                                   else None for item in items])
                try:
                    check_event_size({"result": result})
                except TooLarge as error:
                    raise PermanentError(f"step {step.id}'s items' results: {error}") from None
                self.outcomes.fanout_succeeded(tx, step, execution, result)
                return {"status": StepStatus.SUCCEEDED.value, "items": tally.total}
            message = (f"{tally.failed} of {tally.total} items failed for good; "
                       f"{tolerated} tolerated" + (f"; {tally.never_started} never started"
                                                   if tally.never_started else ""))
            if run.status is StepStatus.RUNNING:
                self.outcomes.fanout_failed(tx, step, execution, message)
        raise _FanOutFailed(f"step {step.id}: {message}")

    def undo_items(self, request: StepRequest) -> dict[str, Any]:
        """The items to compensate ({"items": [index, ...]}): those that may have acted."""
        with self.ledger.transaction() as tx:
            execution, step = self._locked(tx, request)
            items = tx.items_of(execution.id, step.id)
        listed = to_undo({index: item.status for index, item in enumerate(items)},
                         {index: item.action_attempts for index, item in enumerate(items)},
                         skip_undone=request.skip_undone)
        return {"items": listed}

    def undone(self, request: StepRequest) -> dict[str, Any]:
        """The items' undo has ended: any item whose compensation failed fails the chain
        (its record says why); else the step is compensated, and the chain's last undo ends
        the compensation."""
        with self.ledger.transaction() as tx:
            execution, step = self._locked(tx, request)
            run = tx.lock_step(execution.id, step.id)
            items = tx.items_of(execution.id, step.id)
            failed = [item.step_id for item in items
                      if item.status is StepStatus.COMPENSATION_FAILED]
            if not failed:
                if run is not None and run.status is StepStatus.SUCCEEDED:
                    self.outcomes.fanout_compensated(tx, step, execution)
                if request.last:
                    self.outcomes.finish_compensation(
                        tx, execution, skipped=execution.status is ExecutionStatus.RUNNING)
                return {"status": "undone"}
        raise _UndoFailed(f"step {step.id}: the compensation of {', '.join(failed)} failed")

