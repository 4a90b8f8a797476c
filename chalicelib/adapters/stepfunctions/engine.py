"""Step Functions as the Engine: one pair of state machines per saga revision (forward and
compensation; on Express, an Express forward machine beside them), runs named after their
execution (names.py)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.adapters.aws_errors import throttled
from chalicelib.adapters.stepfunctions.arns import StatesArns
from chalicelib.adapters.stepfunctions.compiler import (
    CompileOptions,
    Deadline,
    MachineTargets,
    compile_compensation,
    compile_forward,
)
from chalicelib.adapters.stepfunctions.machine_input import execution_input, resume_state
from chalicelib.adapters.stepfunctions.names import (
    EXPRESS,
    FORWARD,
    UNDO,
    compensation_machine_of,
    handoff_run_name,
    is_express,
    machine_kind,
    machine_name,
    run_name,
)
from chalicelib.domain.lifecycle import HANDED_OFF, Phase, RunStatus
from chalicelib.domain.models import Step, StoredSaga
from chalicelib.domain.workflow import Workflow
from chalicelib.usecases.ports import EngineBusy, RunKind, RunRef, RunState, WaitGone

# What Step Functions answers to a task token whose Task no longer waits.
_GONE = frozenset({"TaskDoesNotExist", "TaskTimedOut", "InvalidToken"})


class StepFunctionsEngine:
    keeps_history = True

    def __init__(self, client: Any, *, stage: str, role_arn: str, region: str, account: str,
                 function_for: Callable[[Step, Phase], str], recorder_arn: str,
                 options: CompileOptions | None = None) -> None:
        self._sfn = client
        self._stage = stage
        self._role_arn = role_arn
        self._arns = StatesArns(region, account)
        self._targets = MachineTargets(function_for=function_for, recorder=recorder_arn)
        self._options = options or CompileOptions()

    # -- machines -----------------------------------------------------------------------------

    def _machine_arn(self, saga_id: str, revision: int, kind: str) -> str:
        """Derived from the name: no call to Step Functions, so the request paths stay clear
        of its control-plane quotas (CreateStateMachine: 1/s)."""
        return self._arns.machine(machine_name(self._stage, saga_id, revision, kind))

    def prepare(self, saga: StoredSaga) -> None:
        """Create (or bring up to date) the machines: when a version is stored, and at deploy.
        A version on Express gets its Express forward machine, the Standard compensation
        machine its failures are handed to, and (only if it can park) the Standard forward
        machine a retry forward runs on."""
        comment = f"saga {saga.id} version {saga.version} (revision {saga.revision})"
        steps = saga.active_steps()
        express = _on_express(saga)
        undo_arn = self._machine_arn(saga.id, saga.revision, UNDO)
        seconds = saga.deadline_s()
        deadline = None if seconds is None else Deadline(seconds, undo_arn)
        if not express or saga.pivot() is not None:
            forward = compile_forward(steps, self._targets, self._options, comment=comment,
                                      deadline=deadline)
            self._ensure(machine_name(self._stage, saga.id, saga.revision, FORWARD), forward)
        undo = compile_compensation(steps, self._targets, self._options,
                                    comment=f"compensation of {comment}")
        self._ensure(machine_name(self._stage, saga.id, saga.revision, UNDO), undo)
        if express:
            self._ensure(machine_name(self._stage, saga.id, saga.revision, EXPRESS),
                         compile_forward(steps, self._targets, self._options,
                                         comment=f"{comment}, on Express",
                                         handoff_to=undo_arn, deadline=deadline),
                         express=True)

    def _ensure(self, name: str, definition: dict[str, Any], *, express: bool = False) -> None:
        text = json.dumps(definition)
        arn = self._arns.machine(name)
        try:
            self._sfn.create_state_machine(name=name, definition=text, roleArn=self._role_arn,
                                           type="EXPRESS" if express else "STANDARD")
        except ClientError as error:
            if error.response["Error"]["Code"] != "StateMachineAlreadyExists":
                raise
            # Same revision, same definition, unless the compiler changed: keep it current.
            current = self._sfn.describe_state_machine(stateMachineArn=arn)["definition"]
            if json.loads(current) != definition:
                self._sfn.update_state_machine(stateMachineArn=arn, definition=text)

    def discard(self, saga_id: str, revisions: list[int]) -> None:
        for revision in revisions:
            for kind in (FORWARD, UNDO, EXPRESS):
                try:
                    self._sfn.delete_state_machine(
                        stateMachineArn=self._machine_arn(saga_id, revision, kind))
                except ClientError as error:
                    if error.response["Error"]["Code"] != "StateMachineDoesNotExist":
                        raise

    # -- runs ---------------------------------------------------------------------------------

    def _kind_of(self, saga: StoredSaga, kind: RunKind) -> str:
        """The machine a run of that kind starts: an Express version's forward run on its
        Express machine; every other run (compensations, retries forward) on Standard."""
        if kind is RunKind.FORWARD and _on_express(saga):
            return EXPRESS
        return machine_kind(kind)

    def plan(self, saga: StoredSaga, execution_id: str) -> RunRef:
        return RunRef(execution_id, self._machine_arn(saga.id, saga.revision,
                                                      self._kind_of(saga, RunKind.FORWARD)))

    def start(self, saga: StoredSaga, execution_id: str, kind: RunKind, *,
              at_step: str | None = None, parent: RunRef | None = None) -> RunRef:
        machine_arn = self._machine_arn(saga.id, saga.revision, self._kind_of(saga, kind))
        name = run_name(execution_id, kind)
        resume_at = resume_state(saga.active_steps(), at_step) if at_step else ""
        run_input = execution_input(execution_id, resume_at, _parent_input(parent))
        try:
            run_arn = self._start(machine_arn, name, run_input)
        except ClientError as error:
            # The machine was never made (Step Functions was down when the version was
            # stored) or was removed: make the saga's machines once and start once more.
            if error.response["Error"]["Code"] != "StateMachineDoesNotExist":
                raise
            self.prepare(saga)
            run_arn = self._start(machine_arn, name, run_input)
        return RunRef(execution_id, machine_arn, run_arn)

    def _start(self, machine_arn: str, name: str, run_input: dict[str, Any]) -> str:
        try:
            return str(self._sfn.start_execution(stateMachineArn=machine_arn, name=name,
                                                 input=json.dumps(run_input))["executionArn"])
        except ClientError as error:
            # A repeated start with the same name and input is the same run.
            if error.response["Error"]["Code"] == "ExecutionAlreadyExists":
                return self._arns.run(machine_arn, name)
            if throttled(error):  # still over the rate after the client's own retries
                raise EngineBusy(f"Step Functions throttled StartExecution of {name}") \
                    from error
            raise

    def describe(self, run: RunRef) -> RunState:
        if is_express(run.where):
            # An Express run keeps no history: only the compensation it hands a failure to
            # (a Standard run, named after the execution) can be asked about; without one,
            # UNKNOWN leaves the verdict to the write model.
            found = self._describe(self._handoff_run(run))
            return RunState(RunStatus.UNKNOWN) if found.status is RunStatus.MISSING else found
        # A ref without its run: the forward run, found by its name (the execution's id).
        found = self._describe(run.run or self._arns.run(
            run.where, run_name(run.execution_id, RunKind.FORWARD)))
        if found.status is RunStatus.FAILED and found.error == HANDED_OFF:
            # Its deadline passed and what completed was handed to the compensation machine:
            # that run says how the execution is doing.
            return self._describe(self._handoff_run(run))
        return found

    def _handoff_run(self, run: RunRef) -> str:
        """The compensation run a forward run hands its execution to (Express failure,
        deadline): one per execution, on the version's compensation machine."""
        return self._arns.run(compensation_machine_of(run.where),
                              handoff_run_name(run.execution_id))

    def _describe(self, run_arn: str) -> RunState:
        try:
            found = self._sfn.describe_execution(executionArn=run_arn)
        except ClientError as error:
            if error.response["Error"]["Code"] == "ExecutionDoesNotExist":
                return RunState(RunStatus.MISSING)
            raise
        return RunState(RunStatus(found["status"]), found.get("error"), found.get("cause"))

    # -- waiting steps (a Task with .waitForTaskToken) ----------------------------------------

    def complete_step(self, token: str, output: dict[str, Any]) -> None:
        self._answer(self._sfn.send_task_success, taskToken=token, output=json.dumps(output))

    def fail_step(self, token: str, error: str, cause: str) -> None:
        self._answer(self._sfn.send_task_failure, taskToken=token, error=error, cause=cause)

    def heartbeat(self, token: str) -> None:
        self._answer(self._sfn.send_task_heartbeat, taskToken=token)

    @staticmethod
    def _answer(call: Callable[..., Any], **params: str) -> None:
        try:
            call(**params)
        except ClientError as error:
            if error.response["Error"]["Code"] in _GONE:
                raise WaitGone(error.response["Error"].get("Message", "")) from error
            raise


def _on_express(saga: StoredSaga) -> bool:
    return saga.workflow_type == Workflow.EXPRESS


def _parent_input(parent: RunRef | None) -> dict[str, str] | None:
    if parent is None:
        return None
    return {"execution_id": parent.execution_id, "run": parent.run or ""}


def run_history(client: Any, run_arn: str) -> list[dict[str, Any]]:
    """Every event of a state machine run, in order."""
    pages = client.get_paginator("get_execution_history").paginate(executionArn=run_arn)
    return [event for page in pages for event in page["events"]]
