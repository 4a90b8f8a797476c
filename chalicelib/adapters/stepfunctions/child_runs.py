"""The runs a child step's machine starts (Step Functions' startExecution.sync:2): which
machine, under which name, with which input. Derived from names: no call to AWS, so a child's
start spends only its StartExecution."""

from __future__ import annotations

from typing import Any

from chalicelib.adapters.stepfunctions.arns import StatesArns
from chalicelib.adapters.stepfunctions.machine_input import execution_input
from chalicelib.adapters.stepfunctions.names import (
    EXPRESS,
    FORWARD,
    PARENT_UNDO_SUFFIX,
    UNDO,
    machine_name,
    run_name,
)
from chalicelib.domain.models import StoredSaga
from chalicelib.domain.workflow import Workflow
from chalicelib.usecases.ports import RunKind
from chalicelib.usecases.steps.children import RunSpec


class StepFunctionsChildRuns:
    """Child runs of one stage, in the account and region of the parent's machine."""

    def __init__(self, stage: str) -> None:
        self._stage = stage

    def _machine(self, beside: str, saga: StoredSaga, kind: str) -> str:
        # beside: the parent's machine ARN (arn:aws:states:<region>:<account>:stateMachine:..)
        parts = beside.split(":")
        arns = StatesArns(region=parts[3], account=parts[4])
        return arns.machine(machine_name(self._stage, saga.id, saga.revision, kind))

    def forward(self, saga: StoredSaga, execution_id: str, *, beside: str) -> RunSpec:
        """The child's forward run, on the machine its version runs forward on (an Express
        version has no Standard forward machine unless it can park; a failed Express run hands
        its compensation to a Standard run, which the parent's settle waits for); named by the
        child's id, so a repeated start is the same run."""
        kind = EXPRESS if saga.workflow_type == Workflow.EXPRESS.value else FORWARD
        return RunSpec(self._machine(beside, saga, kind),
                       run_name(execution_id, RunKind.FORWARD), execution_input(execution_id))

    def compensation(self, saga: StoredSaga, execution_id: str, *, beside: str,
                     error: dict[str, Any]) -> RunSpec:
        """The completed child's compensation, asked for by its parent: one run per child
        (a repeated start with the same input is the same run)."""
        run_input: dict[str, Any] = {**execution_input(execution_id), "error": error}
        return RunSpec(self._machine(beside, saga, UNDO), f"{execution_id}{PARENT_UNDO_SUFFIX}",
                       run_input)
