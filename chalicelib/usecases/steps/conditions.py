"""A conditional step's `when`, evaluated against the write model on its first delivery.

A false condition records the step SKIPPED (no attempt, never compensated) with the condition,
its value and the values it read, and the saga.step.skipped event, in the delivery's own
transaction; a true one lets the delivery run. A condition that cannot be evaluated on the
data it meets (a type error) fails the step for good, saying why.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from chalicelib.domain import events
from chalicelib.domain.conditions import ConditionEvaluationError, evaluate, parse_condition
from chalicelib.domain.lifecycle import StepStatus
from chalicelib.domain.models import Step
from chalicelib.domain.step_context import PermanentError
from chalicelib.domain.step_runs import LockedExecution
from chalicelib.usecases.steps.ledger import LedgerTransaction
from chalicelib.usecases.steps.scopes import scope_of


def skipped_by_condition(tx: LedgerTransaction, execution: LockedExecution, step: Step, *,
                         at: datetime, step_id: str | None = None) -> dict[str, Any] | None:
    """The step's record once skipped, if its condition is false now; None if it has no
    condition, already ran or was decided, or its condition is true. Under the execution's
    row lock; step_id: the run to skip (a fan-out's own)."""
    if step.when is None:
        return None
    run = tx.lock_step(execution.id, step_id or step.id)
    if run is None or run.status is not StepStatus.PENDING:
        return None  # its first delivery decided (a retried attempt does not ask again)
    condition = parse_condition(step.when)
    parsed = tx.load_execution(execution.id)
    scope = scope_of(tx, execution.id, parsed.input, tx.results(execution.id),
                     list(condition.references()))
    try:
        evaluation = evaluate(condition, scope, skipped=scope.skipped)
    except ConditionEvaluationError as error:
        raise PermanentError(f"step {step.id}'s condition: {error}") from None
    if evaluation.value:
        return None
    checked = {"when": step.when, "value": False, "operands": evaluation.operands}
    record = tx.record_skipped(execution.id, step_id or step.id, at=at, condition=checked)
    tx.append_events(execution.id, [(events.step_skipped(
        saga_id=execution.saga_id, step_id=step_id or step.id, at=at, condition=checked,
        step=record), at)])
    return record
