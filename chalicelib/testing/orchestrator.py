"""Step Functions in memory (the Orchestrator port), with a scripted run.

`script` says how each started run ends (by run name; `default` otherwise), and `fail_start`
makes the next starts raise, as an unreachable Step Functions would.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from chalicelib.ports import Machines, RunState
from chalicelib.saga.lifecycle import RunStatus
from chalicelib.saga.models import StoredSaga


class OrchestratorDown(ConnectionError):
    """What a start raises while the fake is told to be down."""


@dataclass
class ScriptedOrchestrator:
    default: RunState = field(default_factory=lambda: RunState(RunStatus.RUNNING))
    script: dict[str, RunState] = field(default_factory=dict)
    fail_start: int = 0  # this many starts raise
    fail_ensure: bool = False
    starts: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    described: list[str] = field(default_factory=list)
    ensured: list[tuple[str, int]] = field(default_factory=list)
    deleted: list[tuple[str, list[int]]] = field(default_factory=list)

    def machines_for(self, saga: StoredSaga) -> Machines:
        base = f"arn:sfn:machine:{saga.id}-r{saga.revision}"
        return Machines(forward_arn=base, compensation_arn=f"{base}-undo")

    def ensure_machines(self, saga: StoredSaga) -> Machines:
        if self.fail_ensure:
            raise OrchestratorDown("Step Functions is unreachable")
        self.ensured.append((saga.id, saga.revision))
        return self.machines_for(saga)

    def delete_machines(self, saga_id: str, revisions: list[int]) -> None:
        self.deleted.append((saga_id, revisions))

    def start(self, machine_arn: str, name: str, execution_input: dict[str, Any],
              saga: StoredSaga | None = None) -> str:
        if self.fail_start > 0:
            self.fail_start -= 1
            raise OrchestratorDown("Step Functions is unreachable")
        self.starts.append((machine_arn, name, execution_input))
        return self.run_arn(machine_arn, name)

    def describe(self, run_arn: str) -> RunState:
        self.described.append(run_arn)
        name = run_arn.rsplit(":", 1)[-1]
        if name in self.script:
            return self.script[name]
        started = any(self.run_arn(arn, run) == run_arn for arn, run, _ in self.starts)
        return self.default if started else RunState(RunStatus.MISSING)

    def run_arn(self, machine_arn: str, name: str) -> str:
        return f"{machine_arn}:run:{name}"
