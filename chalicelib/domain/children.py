"""Child steps: a step that runs another saga and waits for it (its `saga` field).

The child's execution id is derived from the parent's id and the step, so a repeated start
finds the child it made instead of starting a second one. The parent step's outcome follows
the child's end: COMPLETED gives the step's result (the child's output), any other end fails
the step for good. When the parent compensates, a completed child is compensated as a whole
(its own compensate-after-complete), in the parent's reverse order.

Pure: the decisions below read a child's status and say what the runtime does with it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from chalicelib.domain.lifecycle import ExecutionStatus, StepKind
from chalicelib.domain.models import SagaDefinition, StoredSaga
from chalicelib.domain.validation import Violation

# Child execution ids fit in 64 characters, so every run name made from one (its suffixes
# take at most 10) stays within Step Functions' 80.
MAX_CHILD_ID = 64
_DIGEST = 16
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")

# The step's error types (the machines' name for a child that has not ended yet is the
# lifecycle's CHILD_RUNNING).
CHILD_FAILED_TYPE = "ChildSagaFailed"
CHILD_DEPTH_TYPE = "ChildDepthExceeded"
CHILD_MISSING_TYPE = "ChildSagaMissing"
CHILD_UNDO_FAILED_TYPE = "ChildCompensationFailed"
# The error a child's compensation starts with when its parent asks for it: also how an undo
# tells its own compensation of the child from the child compensating itself.
PARENT_COMPENSATES_TYPE = "ParentCompensates"
# What a cycle walk looks at, at most: sagas are few, and a walk must end by itself.
MAX_WALK = 1000


def child_execution_id(parent_id: str, step_id: str, round_base: int = 0) -> str:
    """The child's id: readable (the parent's and the step's ids, cut short) and unique (a
    hash of both, exact and case-sensitive), at most MAX_CHILD_ID characters of
    [A-Za-z0-9._-], starting and ending with a letter or digit. round_base: the step's action
    attempts before its current round (0 until an operator retries a parked execution
    forward, which gives a retriable child step a new child: its last one ended unfinished)."""
    key = f"{parent_id}\0{step_id}" + (f"\0{round_base}" if round_base else "")
    digest = hashlib.sha256(key.encode()).hexdigest()[:_DIGEST]
    room = MAX_CHILD_ID - _DIGEST - 2
    parent = _UNSAFE.sub("-", parent_id)[: room * 2 // 3].strip("._-")
    step = _UNSAFE.sub("-", step_id)[: room - len(parent)].strip("._-")
    return ".".join(part for part in (parent, step, digest) if part)


@dataclass(frozen=True)
class ParentLink:
    """Which execution and step started a child, and how deep the child is (a top-level
    execution is depth 0)."""

    execution_id: str
    step_id: str
    depth: int

    def record(self) -> dict[str, Any]:
        return {"execution_id": self.execution_id, "step_id": self.step_id,
                "depth": self.depth}


class ChildMove(StrEnum):
    """What a child step's Task does next."""

    RUN = "run"  # start the child's run (a repeated start is the same run) and wait for it
    SETTLE = "settle"  # the child has ended: record the step's outcome
    SUCCEED = "succeed"  # the step succeeds with the child's result
    FAIL = "fail"  # the step fails for good (the child did not complete)
    WAIT = "wait"  # the child has not ended yet: try again later
    BEGIN_UNDO = "begin_undo"  # move the completed child to COMPENSATING, then run its undo
    UNDONE = "undone"  # nothing (more) of the child to undo: the step is compensated
    UNDO_FAILED = "undo_failed"  # the child's compensation failed: an operator's turn


def on_start(child: ExecutionStatus | None) -> ChildMove:
    """The forward Task found the child in this state (None: not made yet, it is made now)."""
    if child is None or child is ExecutionStatus.RUNNING:
        return ChildMove.RUN
    return ChildMove.SETTLE


def on_settle(child: ExecutionStatus | None) -> ChildMove:
    """After the child's run ended (or its start was refused as a repeat)."""
    if child is ExecutionStatus.COMPLETED:
        return ChildMove.SUCCEED
    if child is None or child.is_final:
        return ChildMove.FAIL
    return ChildMove.WAIT  # still running, or compensating itself: its run ends later


def on_undo(child: ExecutionStatus | None, *, compensated_by_parent: bool) -> ChildMove:
    """The parent's undo of the step found the child in this state. compensated_by_parent:
    the child is COMPENSATING because an earlier undo attempt of this step asked for it."""
    if child is ExecutionStatus.COMPLETED:
        return ChildMove.BEGIN_UNDO
    if child is ExecutionStatus.COMPENSATING and compensated_by_parent:
        return ChildMove.RUN  # the same run again (a repeat is the one already going)
    if child in (None, ExecutionStatus.COMPENSATED, ExecutionStatus.FAILED,
                 ExecutionStatus.TIMED_OUT):
        return ChildMove.UNDONE  # never made, undone itself, or did nothing
    if child is ExecutionStatus.COMPENSATION_FAILED:
        return ChildMove.UNDO_FAILED
    return ChildMove.WAIT  # running (the parent stopped waiting) or compensating itself


def on_undone(child: ExecutionStatus | None) -> ChildMove:
    """After the child's compensation run ended."""
    if child is ExecutionStatus.COMPENSATION_FAILED:
        return ChildMove.UNDO_FAILED
    if child is None or child.is_final:
        return ChildMove.UNDONE
    return ChildMove.WAIT


def child_result(output: dict[str, Any] | None,
                 results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The step's result: the child's output when its saga maps one, else its steps'
    results by step id."""
    return dict(output) if output is not None else {"steps": dict(results)}


def find_cycle(saga_id: str, first: Iterable[str],
               calls: Callable[[str], Iterable[str]]) -> list[str] | None:
    """A path of saga ids from `saga_id` back to itself through the sagas it calls (`first`,
    its own child sagas; `calls(id)`, another saga's), or None. Walks at most MAX_WALK sagas."""
    path_to: dict[str, list[str]] = {}
    stack = [(callee, [saga_id, callee]) for callee in first]
    while stack and len(path_to) < MAX_WALK:
        current, path = stack.pop()
        if current == saga_id:
            return path
        if current in path_to:
            continue
        path_to[current] = path
        stack.extend((callee, [*path, callee]) for callee in calls(current))
    return None


def child_problems(saga: SagaDefinition,
                   version_of: Callable[[str, str | None], StoredSaga | None],
                   callees: Callable[[str], Iterable[str]]) -> list[Violation]:
    """A valid definition's child steps as the stored sagas see them: the saga each calls
    exists (at the version it pins); a child that is undone (not retriable, not the pivot)
    calls a saga without a pivot, since a saga past its pivot is never compensated; and no
    child's saga calls this saga back, directly or through others (a cycle).
    version_of(saga id, version or None for the latest); callees(saga id): the sagas its
    latest version calls."""
    found: list[Violation] = []
    for index, step in enumerate(saga.steps):
        if step.saga is None or not step.active:
            continue
        where = f"steps[{index}]"
        if step.saga == saga.id:
            found.append(Violation(f"{where}.saga", "cycle",
                                   f"step {step.id} calls saga {saga.id!r}, itself: a cycle",
                                   step.saga))
            continue
        child = version_of(step.saga, step.saga_version)
        if child is None:
            at = f" at version {step.saga_version}" if step.saga_version else ""
            found.append(Violation(f"{where}.saga", "exists",
                                   f"step {step.id} calls saga {step.saga!r}{at}, which does "
                                   "not exist: store it first", step.saga))
            continue
        pivot = child.pivot()
        if pivot is not None and step.kind in (None, StepKind.COMPENSATABLE.value):
            found.append(Violation(
                f"{where}.kind", "child_pivot",
                f"step {step.id} calls saga {step.saga!r}, whose step {pivot.id!r} is a pivot: "
                "a completed run of it is never compensated, so it cannot be undone as a "
                "compensatable step; call it after this saga's pivot, as a retriable step",
                step.kind or StepKind.COMPENSATABLE.value))
        if saga.id is not None and (cycle := find_cycle(
                saga.id, [step.saga], callees)) is not None:
            found.append(Violation(f"{where}.saga", "cycle",
                                   f"step {step.id} calls saga {step.saga!r}, which calls this "
                                   f"saga back: {' -> '.join(cycle)}", step.saga))
    return found
