"""Step Functions: one pair of state machines per saga revision, runs named by execution id."""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.ports import Machines, RunState
from chalicelib.saga.compiler import (
    CompileOptions,
    MachineTargets,
    compile_compensation,
    compile_forward,
)
from chalicelib.saga.lifecycle import Phase, RunStatus
from chalicelib.saga.models import Step, StoredSaga

# The two machines of a version (the names are part of their ARNs: never change them).
FORWARD = "forward"
UNDO = "compensation"  # a field name, not a phase
_NAME_CHARS = re.compile(r"[^A-Za-z0-9_-]")


def machine_name(stage: str, saga_id: str, revision: int, kind: str) -> str:
    """A name of at most 80 characters, unique per (stage, saga, revision, kind): stages may
    share one account (locally, `local` and `test` share LocalStack).

    The readable part maps '.' to '-' (Step Functions allows neither '.' nor long names), so
    on its own it is not injective (`a.b` and `a-b`); a hash of the exact, case-sensitive
    stage and id makes it so, and keeps the name derivable from the id alone."""
    suffix = f"-r{revision}" + ("-undo" if kind == UNDO else "")
    digest = hashlib.sha256(f"{stage}\0{saga_id}".encode()).hexdigest()[:16]
    readable = _NAME_CHARS.sub("-", f"{stage}-{saga_id}")
    room = 80 - len(suffix) - len(digest) - 1
    return f"{readable[:room]}-{digest}{suffix}"


@dataclass(frozen=True)
class FunctionNames:
    """Deployed Lambda names, as Chalice names them: {app}-{stage}-{function}."""

    app: str
    stage: str
    region: str
    account: str

    def arn(self, function: str) -> str:
        return (f"arn:aws:lambda:{self.region}:{self.account}:function:"
                f"{self.app}-{self.stage}-{function}")


class StepFunctionsOrchestrator:
    def __init__(self, client: Any, *, stage: str, role_arn: str, region: str, account: str,
                 function_for: Callable[[Step, Phase], str], recorder_arn: str,
                 options: CompileOptions | None = None) -> None:
        self._sfn = client
        self._stage = stage
        self._role_arn = role_arn
        self._prefix = f"arn:aws:states:{region}:{account}"
        self._targets = MachineTargets(function_for=function_for, recorder=recorder_arn)
        self._options = options or CompileOptions()

    def machine_arn(self, name: str) -> str:
        return f"{self._prefix}:stateMachine:{name}"

    def run_arn(self, machine_arn: str, name: str) -> str:
        machine = machine_arn.rsplit(":", 1)[-1]
        return f"{self._prefix}:execution:{machine}:{name}"

    def machines_for(self, saga: StoredSaga) -> Machines:
        """The machines' ARNs, derived from their names: no call to Step Functions, so the
        request paths stay clear of its control-plane quotas (CreateStateMachine: 1/s)."""
        name = functools.partial(machine_name, self._stage, saga.id, saga.revision)
        return Machines(forward_arn=self.machine_arn(name(FORWARD)),
                        compensation_arn=self.machine_arn(name(UNDO)))

    def ensure_machines(self, saga: StoredSaga) -> Machines:
        """Create (or bring up to date) the machines: when a version is stored, and at deploy."""
        comment = f"saga {saga.id} version {saga.version} (revision {saga.revision})"
        steps = saga.active_steps()
        forward = compile_forward(steps, self._targets, self._options, comment=comment)
        undo = compile_compensation(steps, self._targets, self._options,
                                    comment=f"compensation of {comment}")
        name = functools.partial(machine_name, self._stage, saga.id, saga.revision)
        return Machines(forward_arn=self._ensure(name(FORWARD), forward),
                        compensation_arn=self._ensure(name(UNDO), undo))

    def _ensure(self, name: str, definition: dict[str, Any]) -> str:
        text = json.dumps(definition)
        arn = self.machine_arn(name)
        try:
            self._sfn.create_state_machine(name=name, definition=text, roleArn=self._role_arn,
                                           type="STANDARD")
        except ClientError as error:
            if error.response["Error"]["Code"] != "StateMachineAlreadyExists":
                raise
            # Same revision, same definition, unless the compiler changed: keep it current.
            current = self._sfn.describe_state_machine(stateMachineArn=arn)["definition"]
            if json.loads(current) != definition:
                self._sfn.update_state_machine(stateMachineArn=arn, definition=text)
        return arn

    def delete_machines(self, saga_id: str, revisions: list[int]) -> None:
        for revision in revisions:
            for kind in (FORWARD, UNDO):
                arn = self.machine_arn(machine_name(self._stage, saga_id, revision, kind))
                try:
                    self._sfn.delete_state_machine(stateMachineArn=arn)
                except ClientError as error:
                    if error.response["Error"]["Code"] != "StateMachineDoesNotExist":
                        raise

    def start(self, machine_arn: str, name: str, execution_input: dict[str, Any],
              saga: StoredSaga | None = None) -> str:
        try:
            return self._start(machine_arn, name, execution_input)
        except ClientError as error:
            # The machine was never made (Step Functions was down when the version was
            # stored) or was removed: make the saga's machines once and start once more.
            if saga is None or error.response["Error"]["Code"] != "StateMachineDoesNotExist":
                raise
        self.ensure_machines(saga)
        return self._start(machine_arn, name, execution_input)

    def _start(self, machine_arn: str, name: str, execution_input: dict[str, Any]) -> str:
        try:
            return self._sfn.start_execution(stateMachineArn=machine_arn, name=name,
                                             input=json.dumps(execution_input))["executionArn"]
        except ClientError as error:
            # A repeated start with the same name and input is the same run.
            if error.response["Error"]["Code"] == "ExecutionAlreadyExists":
                return self.run_arn(machine_arn, name)
            raise

    def describe(self, run_arn: str) -> RunState:
        try:
            run = self._sfn.describe_execution(executionArn=run_arn)
        except ClientError as error:
            if error.response["Error"]["Code"] == "ExecutionDoesNotExist":
                return RunState(RunStatus.MISSING)
            raise
        return RunState(RunStatus(run["status"]), run.get("error"), run.get("cause"))


def run_history(client: Any, run_arn: str) -> list[dict[str, Any]]:
    """Every event of a state machine run, in order."""
    pages = client.get_paginator("get_execution_history").paginate(executionArn=run_arn)
    return [event for page in pages for event in page["events"]]
