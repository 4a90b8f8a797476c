"""What an attempt works with (its StepContext), read under the row locks."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from chalicelib.domain.decisions import StepRequest, compensation_facts
from chalicelib.domain.fanout import split_run_id
from chalicelib.domain.lifecycle import Phase
from chalicelib.domain.mapping import MappingError, resolve
from chalicelib.domain.models import Step
from chalicelib.domain.step_context import Cursor, PermanentError, StepContext
from chalicelib.domain.step_runs import LockedExecution
from chalicelib.domain.verdicts import Admitted
from chalicelib.usecases.steps.ledger import LedgerTransaction
from chalicelib.usecases.steps.recording import cause
from chalicelib.usecases.steps.scopes import scope_of


def build_context(tx: LedgerTransaction, request: StepRequest, step: Step,
                  execution: LockedExecution, admitted: Admitted, deadline: datetime, *,
                  cursor: Cursor, eager_results: bool,
                  defaults: Mapping[str, Any]) -> StepContext:
    """The step's input (its mapping resolved), the earlier steps' results, its deadline,
    and for a compensation what its action did and why the saga compensates. A mapping whose
    value is absent fails the step for good."""
    parsed = admitted.execution
    results: Mapping[str, Mapping[str, Any]] = (
        tx.results(request.execution_id) if eager_results
        else LazyResults(lambda: tx.results(request.execution_id)))
    step_input: Mapping[str, Any] = parsed.input
    item = _item(tx, request, step, parsed.input, results)
    if step.input is not None:
        try:
            scope = scope_of(tx, request.execution_id, parsed.input, results, step.input)
            if item is not None:
                scope = replace(scope, item=item["value"])
            step_input = resolve(step.input, scope)
        except MappingError as error:
            raise PermanentError(f"step {step.id}'s input: {error}") from None
    extra: dict[str, Any] = {}
    if request.phase is Phase.COMPENSATION:
        extra = compensation_facts(admitted.run, execution.error or cause(tx, request))
    return StepContext(
        execution_id=request.execution_id, saga_id=parsed.saga_id, step_id=step.id,
        phase=request.phase, attempt=admitted.number, saga_input=step_input,
        config=step.config, cursor=cursor, results=results, defaults=defaults,
        saga_version=parsed.version, deadline=deadline, item=item, **extra)


def _item(tx: LedgerTransaction, request: StepRequest, step: Step,
          saga_input: Mapping[str, Any],
          results: Mapping[str, Any]) -> dict[str, Any] | None:
    """A fan-out item's {"step_id", "index", "value"}: its list read again (the input and
    earlier results never change once its step started), the item picked by its index."""
    if step.item_index is None or step.for_each is None:
        return None
    own_id = split_run_id(step.id)[0]
    try:
        values = resolve(step.for_each, scope_of(tx, request.execution_id, saga_input,
                                                 results, [step.for_each]))
    except MappingError as error:
        raise PermanentError(f"step {own_id}'s for_each: {error}") from None
    if not isinstance(values, list) or step.item_index >= len(values):
        raise PermanentError(f"step {own_id}'s for_each has no item {step.item_index}")
    return {"step_id": own_id, "index": step.item_index, "value": values[step.item_index]}


class _NoTransaction:
    """The cursor a participant's context carries: it runs outside the step's transaction."""

    rowcount = 0
    lastrowid = 0

    def execute(self, query: str, args: Any = None) -> int:
        raise RuntimeError("a participant runs outside the step's transaction")

    def fetchone(self) -> dict[str, Any] | None:
        raise RuntimeError("a participant runs outside the step's transaction")

    def fetchall(self) -> list[dict[str, Any]]:
        raise RuntimeError("a participant runs outside the step's transaction")


NO_TRANSACTION = _NoTransaction()


class LazyResults(Mapping[str, dict[str, Any]]):
    """Earlier steps' results, read on first use: most actions never look at them."""

    def __init__(self, load: Callable[[], dict[str, dict[str, Any]]]) -> None:
        self._load = load
        self._data: dict[str, dict[str, Any]] | None = None

    def _results(self) -> dict[str, dict[str, Any]]:
        if self._data is None:
            self._data = self._load()
        return self._data

    def __getitem__(self, key: str) -> dict[str, Any]:
        return self._results()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._results())

    def __len__(self) -> int:
        return len(self._results())
