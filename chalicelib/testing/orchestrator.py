"""The Engine port in memory, with scripted runs.

`script` says how each started run ends (by run name; `default` otherwise), `fail_start`
makes the next starts raise, as an unreachable engine would, and `keeps_history` False plays
an engine with nothing to describe. Runs are named as on Step Functions: the forward run by
its execution's id, a compensation `<id>-c<n>`, a retry forward `<id>-f<n>`. A step waits on
a token given by `wait`; completing one that no longer waits raises WaitGone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from chalicelib.domain.lifecycle import RunStatus
from chalicelib.domain.models import StoredSaga
from chalicelib.usecases.ports import EngineBusy, RunKind, RunRef, RunState, WaitGone

_SUFFIX = {RunKind.COMPENSATION: "c", RunKind.RESUME: "f"}


class EngineDown(ConnectionError):
    """What a start raises while the fake is told to be down."""


@dataclass(frozen=True)
class Started:
    """One start, as the engine was asked for it."""

    saga_id: str
    revision: int
    execution_id: str
    kind: RunKind
    at_step: str | None
    parent: RunRef | None
    ref: RunRef

    @property
    def run_name(self) -> str:
        return _name_of(self.ref)


@dataclass(frozen=True)
class Answer:
    """What a waiting step heard: succeeded (output), failed (error, cause) or a heartbeat."""

    token: str
    kind: str
    output: dict[str, Any] | None = None
    error: str | None = None
    cause: str | None = None


def _name_of(ref: RunRef) -> str:
    # A ref without its run names the forward run, which is named by the execution's id.
    return ref.run.rsplit(":run:", 1)[-1] if ref.run else ref.execution_id


@dataclass
class ScriptedEngine:
    default: RunState = field(default_factory=lambda: RunState(RunStatus.RUNNING))
    script: dict[str, RunState] = field(default_factory=dict)
    fail_start: int = 0  # this many starts raise
    busy_start: int = 0  # this many starts are refused for the engine's rate (EngineBusy)
    fail_prepare: bool = False
    keeps_history: bool = True
    starts: list[Started] = field(default_factory=list)
    described: list[RunRef] = field(default_factory=list)
    prepared: list[tuple[str, int]] = field(default_factory=list)
    discarded: list[tuple[str, list[int]]] = field(default_factory=list)
    waiting: set[str] = field(default_factory=set)
    answers: list[Answer] = field(default_factory=list)

    @staticmethod
    def where(saga: StoredSaga, kind: RunKind = RunKind.FORWARD) -> str:
        undo = "-undo" if kind is RunKind.COMPENSATION else ""
        return f"fake:{saga.id}-r{saga.revision}{undo}"

    def prepare(self, saga: StoredSaga) -> None:
        if self.fail_prepare:
            raise EngineDown("the engine is unreachable")
        self.prepared.append((saga.id, saga.revision))

    def discard(self, saga_id: str, revisions: list[int]) -> None:
        self.discarded.append((saga_id, revisions))

    def plan(self, saga: StoredSaga, execution_id: str) -> RunRef:
        return RunRef(execution_id, self.where(saga))

    def start(self, saga: StoredSaga, execution_id: str, kind: RunKind, *,
              at_step: str | None = None, parent: RunRef | None = None) -> RunRef:
        if self.fail_start > 0:
            self.fail_start -= 1
            raise EngineDown("the engine is unreachable")
        if self.busy_start > 0:
            self.busy_start -= 1
            raise EngineBusy("throttled")
        where = self.where(saga, kind)
        name = execution_id if kind is RunKind.FORWARD else \
            f"{execution_id}-{_SUFFIX[kind]}{len(self.starts) + 1}"
        # Every start asked is kept; a repeated forward start names the same run.
        ref = RunRef(execution_id, where, f"{where}:run:{name}")
        self.starts.append(Started(saga.id, saga.revision, execution_id, kind, at_step, parent,
                                   ref))
        return ref

    def describe(self, run: RunRef) -> RunState:
        if not self.keeps_history:
            raise AssertionError("an engine without history was asked to describe a run")
        self.described.append(run)
        name = _name_of(run)
        if name in self.script:
            return self.script[name]
        started = any(s.ref.where == run.where and s.run_name == name for s in self.starts)
        return self.default if started else RunState(RunStatus.MISSING)

    # -- waiting steps --------------------------------------------------------------------

    def wait(self, token: str) -> str:
        """A step now waits on `token` (as a Task with a task token would)."""
        self.waiting.add(token)
        return token

    def complete_step(self, token: str, output: dict[str, Any]) -> None:
        self._answer(Answer(token, "succeeded", output=output), ends=True)

    def fail_step(self, token: str, error: str, cause: str) -> None:
        self._answer(Answer(token, "failed", error=error, cause=cause), ends=True)

    def heartbeat(self, token: str) -> None:
        self._answer(Answer(token, "heartbeat"), ends=False)

    def _answer(self, answer: Answer, *, ends: bool) -> None:
        if answer.token not in self.waiting:
            raise WaitGone(f"no step waits on token {answer.token!r}")
        if ends:
            self.waiting.discard(answer.token)
        self.answers.append(answer)
