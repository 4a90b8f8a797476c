"""The recorder Lambda's use case: how an execution ended, recorded from the machine's own
path (COMPLETED after every Task succeeded; FAILED, COMPENSATION_FAILED, PARKED, and
COMPENSATED after a group of parallel undos; see the compiler)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from chalicelib.domain import events
from chalicelib.domain.executions import (
    MAX_ERROR_MESSAGE,
    ExecutionStatus,
    OutputError,
    execution_error,
)
from chalicelib.domain.lifecycle import EVENT_OF, Phase, StepStatus
from chalicelib.domain.mapping import MappingError, resolve, unresolved
from chalicelib.domain.step_context import PermanentError
from chalicelib.domain.step_runs import LockedExecution
from chalicelib.usecases.ports import DefinitionStore
from chalicelib.usecases.steps.ledger import LedgerTransaction, StepLedger
from chalicelib.usecases.steps.scopes import scope_of

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EndReport:
    """What the machine reports: the execution, how it ended, and the error it caught."""

    execution_id: str
    outcome: ExecutionStatus
    error: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Recorded:
    """The execution now has this status."""

    status: ExecutionStatus


@dataclass(frozen=True)
class AlreadyRecorded:
    """A repeated report: the execution already had this status."""

    status: ExecutionStatus


@dataclass(frozen=True)
class EndRefused:
    """The execution moved on (an operator's action, the reconciler): it keeps `status`,
    and the `reported` end is not recorded, since final means final."""

    status: ExecutionStatus
    reported: ExecutionStatus


RecordedEnd = Recorded | AlreadyRecorded | EndRefused


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class OutcomeRecorder:
    ledger: StepLedger
    # Where a completing execution's output mapping is read (None: no output is recorded).
    definitions: DefinitionStore | None = None
    clock: Callable[[], datetime] = _utc_now

    def record(self, report: EndReport) -> RecordedEnd:
        execution_id = report.execution_id
        outcome = report.outcome
        with self.ledger.transaction() as tx:
            execution = tx.lock_execution(execution_id)
            if execution is None:
                raise PermanentError(f"no execution {execution_id!r}")
            if outcome is ExecutionStatus.COMPENSATED and \
                    execution.status is ExecutionStatus.RUNNING:
                # Every undo was skipped (each step of the group failed for good): nothing
                # had been done, so nothing was compensated.
                outcome = ExecutionStatus.FAILED
            if execution.status is outcome:
                return AlreadyRecorded(outcome)
            kind = EVENT_OF[outcome]
            at = self.clock()
            # The failing step recorded why; else the machine's error, without its trace.
            raw = report.error
            error = None if outcome is ExecutionStatus.COMPLETED else (
                execution.error or execution_error(
                    None, Phase.COMPENSATION if outcome is ExecutionStatus.COMPENSATION_FAILED
                    else Phase.ACTION, raw.get("Error") or "Error", raw.get("Cause")))
            if not tx.set_execution_status(execution_id, outcome, at=at, error=error):
                # It moved on (an operator's action, the reconciler): final means final.
                return EndRefused(execution.status, outcome)
            if outcome is ExecutionStatus.COMPENSATION_FAILED:
                # Parallel undos may fail side by side: the error names every one.
                error = {**(error or {}), "failed_steps": tx.steps_in(
                    execution_id, StepStatus.COMPENSATION_FAILED)}
                tx.set_execution_error(execution_id, error)
            made: dict[str, Any] = {}
            if outcome is ExecutionStatus.COMPLETED:
                output, failed = self._output(tx, execution)
                made = {"output": output,
                        "output_error": None if failed is None else failed.model_dump()}
                tx.set_execution_output(execution_id, output, made["output_error"])
            tx.append_events(execution_id, [(events.moved(
                kind, saga_id=execution.saga_id, status=outcome, execution_error=error,
                **made), at)])
        return Recorded(outcome)

    def _output(self, tx: LedgerTransaction, execution: LockedExecution
                ) -> tuple[dict[str, Any] | None, OutputError | None]:
        """The saga's output mapping resolved against the input and every step's result, or
        why it could not be. All steps succeeded, so a value that is still absent is the
        mapping's own fault: the execution completes all the same, with no output, and says
        which reference failed (output_error), so the missing output is never silent."""
        saga = (self.definitions.get_revision(execution.saga_id, execution.revision)
                if self.definitions is not None else None)
        if saga is None or saga.output is None:
            return None, None
        parsed = tx.load_execution(execution.id)
        scope = scope_of(tx, execution.id, parsed.input, tx.results(execution.id), saga.output)
        try:
            return resolve(saga.output, scope), None
        except MappingError as error:
            logger.warning("execution %s completed without its output: %s", execution.id, error)
            where, reference, why = unresolved(saga.output, scope) or ("", "", str(error))
            return None, OutputError(field=where, reference=reference,
                                     message=why[:MAX_ERROR_MESSAGE])
