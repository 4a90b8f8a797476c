"""`saga verify`'s cases, from a stored saga's definition: one run per failure point, each
with the faults to inject, the ending it must reach, the operator's action after it (if any)
and the steps that must be undone exactly once. Pure: no I/O.

For every active step up to the pivot (or of a saga without one): it fails for good (the
steps before it, and its siblings in its group, are undone; it is not: it did nothing), and
it times out (it may have done its work: it is undone at most once, exactly once when it
took effect; the runtime knows, the case cannot). After the pivot, each retriable step fails
until the execution parks, then an operator's retry forward completes it. For every step
with a compensation: its compensation fails once (its retry succeeds) or fails past its
retries (COMPENSATION_FAILED, then an operator's retry of the compensation ends it), under
the pivot failing for good, or in a saga without one, an operator compensating the
completed run. The pivot's own compensation runs only when its outcome is unknown (its
timeout case).

Steps that wait run too. The runner completes every open callback as succeeded (an approval
as approved) unless its case says otherwise. A callback step's cases: it is failed by its
completion (it did nothing: the steps before it are undone), and, when its wait is at most
SHORT_WAIT_S, it is never completed and its wait times out (its call's answer is undone, if it
has a compensation). One with a call also fails for good like any step; its call is not timed
out (its Task waits for the whole wait). A timer has nothing to fail or undo: it only adds its
wait to the run's budget. A callback after the pivot gets no case of its own (its failure
parks, and the retry forward would meet the same completion).

A fan-out's faults are aimed at its first item (`<step id>[0]`): the item failing for good
(the items that succeeded, and the steps before, are undone), timing out, and its
compensation failing. A conditional step's cases need an input under which it runs: a run
where it was skipped is reported as such.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from chalicelib.domain.fanout import item_run_id
from chalicelib.domain.lifecycle import (
    COMPENSATION_RETRY,
    ExecutionStatus,
    Phase,
    StepKind,
)
from chalicelib.domain.models import Step
from chalicelib.durations import format_duration_ms, parse_duration_ms

# Injected faults carry this error name, so a run's record says what was injected.
INJECTED = "VerifyInjected"
# A callback whose wait is at most this long gets a case where it is never completed.
SHORT_WAIT_S = 300


@dataclass(frozen=True)
class Case:
    name: str
    faults: list[dict[str, Any]]
    expected: str  # the execution's status when the run ends
    undone: frozenset[str]  # steps compensated exactly once in the end
    # The operator's actions once the run has ended, in turn ("compensate", "retry-forward",
    # "retry-compensation"), each with the status it must reach.
    then: tuple[tuple[str, str], ...] = ()
    # Step groups in order: undone groups must be undone in the reverse of this.
    groups: tuple[tuple[str, ...], ...] = field(default=())
    # Steps compensated at most once (a timed-out step: exactly once if it took effect), and
    # the ending the run may have instead when none of them did (nothing else to undo).
    maybe_undone: frozenset[str] = frozenset()
    instead: str | None = None
    # Callback steps the runner completes as failed, and those it leaves to time out (every
    # other open callback it completes as succeeded).
    fail_callbacks: frozenset[str] = frozenset()
    unanswered: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Skipped:
    step_id: str
    reason: str


def plan(steps: Sequence[Step], *, retriable_max_attempts: int,
         task_timeout_margin_s: int) -> tuple[list[Case], list[Skipped]]:
    """Every case of the saga's active steps, and the steps left out with why."""
    active = sorted((s for s in steps if s.active), key=lambda s: s.order)
    skipped: list[Skipped] = []
    groups = _groups(active)
    order = tuple(tuple(s.id for s in group) for group in groups)
    pivot = next((i for i, g in enumerate(groups) if g[0].kind is StepKind.PIVOT), None)
    compensated = {s.id for g in groups[:len(groups) if pivot is None else pivot + 1]
                   for s in g if s.compensation is not None or s.calls_saga}
    cases: list[Case] = []
    for index, group in enumerate(groups):
        for step in group:
            if step.kind is StepKind.WAIT:
                continue  # a timer: nothing fails, nothing to undo
            if step.calls_saga:
                # Faults reach only this saga's own participants; the child is undone like
                # any step when a later one fails (the cases of the other steps check it).
                skipped.append(Skipped(step.id, f"a child step: verify saga {step.saga} on "
                                                "its own"))
                continue
            if pivot is not None and index > pivot and step.kind is StepKind.CALLBACK:
                skipped.append(Skipped(step.id, "a callback after the pivot: completed in "
                                                "every run, no case of its own"))
                continue
            if pivot is not None and index > pivot:
                cases.append(Case(
                    f"{step.id} fails until it parks, then is retried forward",
                    [_fault(step.id, times=retriable_max_attempts)], ExecutionStatus.PARKED,
                    frozenset(),
                    then=(("retry-forward", ExecutionStatus.COMPLETED),), groups=order))
                continue
            before = {s.id for g in groups[:index] for s in g} & compensated
            # A sibling in a parallel group may not have started when this step failed (no
            # attempt starts once a step of the execution failed for good): undone if it ran.
            siblings = {s.id for s in group if s.id != step.id} & compensated
            if step.for_each is not None:
                # Its other items may have acted (undone), or not (nothing to undo).
                siblings |= {step.id}
            ending = ExecutionStatus.COMPENSATED if before else ExecutionStatus.FAILED
            if step.kind is StepKind.CALLBACK:
                cases += _callback_cases(step, frozenset(before), frozenset(siblings), order)
                if step.action is None:
                    continue  # an approval makes no call to fail
            cases.append(Case(f"{_target(step)} fails for good",
                              [_fault(_target(step), permanent=True)],
                              ending, frozenset(before), groups=order,
                              maybe_undone=frozenset(siblings),
                              instead=None if before or not siblings
                              else ExecutionStatus.COMPENSATED))
            if step.kind is StepKind.CALLBACK:
                continue  # its call is not timed out: its Task waits for the whole wait
            cases.append(Case(f"{_target(step)} times out",
                              [_fault(_target(step), times=0, delay=_past_timeout(
                                  step, task_timeout_margin_s))],
                              ExecutionStatus.COMPENSATED, frozenset(before), groups=order,
                              maybe_undone=frozenset(({step.id} | siblings) & compensated),
                              instead=None if before else ExecutionStatus.FAILED))
    cases += _compensation_cases(groups, pivot, compensated, order)
    return cases, skipped


def _callback_cases(step: Step, before: frozenset[str], siblings: frozenset[str],
                    order: tuple[tuple[str, ...], ...]) -> list[Case]:
    """A callback failed by its completion (it did nothing), and left to time out when its
    wait is short (what its call did is undone: it answered before it waited)."""
    what = "is rejected" if step.action is None else "is completed as failed"
    cases = [Case(f"{step.id} {what}", [],
                  ExecutionStatus.COMPENSATED if before else ExecutionStatus.FAILED, before,
                  groups=order, maybe_undone=siblings, fail_callbacks=frozenset({step.id}),
                  instead=None if before or not siblings else ExecutionStatus.COMPENSATED)]
    if _waits_briefly(step):
        itself = frozenset({step.id}) if step.compensation is not None else frozenset()
        cases.append(Case(
            f"{step.id} is never completed: its wait times out", [],
            ExecutionStatus.COMPENSATED if before | itself else ExecutionStatus.FAILED,
            before | itself, groups=order, maybe_undone=siblings,
            unanswered=frozenset({step.id}),
            instead=None if before | itself or not siblings else ExecutionStatus.COMPENSATED))
    return cases


def _compensation_cases(groups: list[list[Step]], pivot: int | None, compensated: set[str],
                        order: tuple[tuple[str, ...], ...]) -> list[Case]:
    """Each compensation failing once, and failing for good then retried: under the pivot
    failing for good (the steps before it are undone), or an operator compensating a
    completed run of a saga without one (every step is undone)."""
    if pivot is None:
        trigger: list[dict[str, Any]] = []
        first, undone = ExecutionStatus.COMPLETED, frozenset(compensated)
    else:
        pivot_id = groups[pivot][0].id
        trigger = [_fault(pivot_id, permanent=True)]
        first, undone = "", frozenset(compensated - {pivot_id})
    cases = []
    for step in (s for g in groups for s in g if s.id in undone and not s.calls_saga):
        target = _target(step)
        once = [*trigger, _fault(target, phase=Phase.COMPENSATION, times=1)]
        for_good = [*trigger, _fault(target, phase=Phase.COMPENSATION,
                                     times=COMPENSATION_RETRY.retries + 1)]
        if pivot is None:
            cases += [
                Case(f"{target}'s compensation fails once, then recovers", once, first,
                     undone, then=(("compensate", ExecutionStatus.COMPENSATED),), groups=order),
                Case(f"{target}'s compensation fails for good, then is retried", for_good,
                     first, undone, then=(("compensate", ExecutionStatus.COMPENSATION_FAILED),
                                          ("retry-compensation", ExecutionStatus.COMPENSATED)),
                     groups=order)]
        else:
            cases += [
                Case(f"{target}'s compensation fails once, then recovers", once,
                     ExecutionStatus.COMPENSATED, undone, groups=order),
                Case(f"{target}'s compensation fails for good, then is retried", for_good,
                     ExecutionStatus.COMPENSATION_FAILED, undone,
                     then=(("retry-compensation", ExecutionStatus.COMPENSATED),), groups=order)]
    return cases


def _target(step: Step) -> str:
    """What a case's fault is aimed at: the step, or a fan-out's first item."""
    return item_run_id(step.id, 0) if step.for_each is not None else step.id


def _groups(steps: list[Step]) -> list[list[Step]]:
    groups: list[list[Step]] = []
    for step in steps:
        if groups and groups[-1][0].order == step.order:
            groups[-1].append(step)
        else:
            groups.append([step])
    return groups


def _fault(step_id: str, *, phase: str = Phase.ACTION, times: int = 1, permanent: bool = False,
           delay: str | None = None) -> dict[str, Any]:
    fault: dict[str, Any] = {"step_id": step_id, "phase": phase, "error": INJECTED,
                             "times": times}
    if permanent:
        fault["permanent"] = True
    if delay is not None:
        fault["delay"] = delay
    return fault


def _waits_briefly(step: Step) -> bool:
    """A callback short enough to be left to time out in a case of its own (and its run's
    budget counts that wait)."""
    return parse_duration_ms(step.timeout) <= SHORT_WAIT_S * 1000


def _past_timeout(step: Step, margin_s: int) -> str:
    """A delay every attempt outlives its Task with (the timeout, the margin and a second)."""
    return format_duration_ms(parse_duration_ms(step.timeout) + (margin_s + 1) * 1000)


def run_budget_s(steps: Sequence[Step], margin_s: int) -> float:
    """How long a run may take at most: every attempt of every step timing out, its undo
    too, plus the backoff between attempts; a run not ended by then is reported."""
    total = 60.0
    for step in steps:
        if step.kind is StepKind.WAIT:
            # A timer's wait (one until a moment in the data has no bound known here).
            total += parse_duration_ms(step.wait) / 1000 if step.wait else 0
            continue
        attempts = step.max_retries + 1
        per = parse_duration_ms(step.call_timeout_text) / 1000 + margin_s
        total += attempts * (per + 30) + 2 * per
        if step.kind is StepKind.CALLBACK and _waits_briefly(step):
            total += parse_duration_ms(step.timeout) / 1000 + margin_s  # left to time out
    return total
