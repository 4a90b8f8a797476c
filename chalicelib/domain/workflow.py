"""Which kind of Step Functions workflow runs a saga's forward path: Standard or Express. Pure.

Express bills a run by its requests and duration instead of by state transitions (60 to 100
times cheaper for a saga of a second or two) but runs five minutes at most, at least once,
keeps no history and cannot wait for a task token. Only the forward path runs there: every
compensation (on failure, on request, retried) and every retry forward runs on Standard
machines, so the rare path keeps its history and the common one is cheap. The step runtime's
idempotency makes a duplicate Express run harmless, and the write model, not the engine's
history, is the record.

A definition's `workflow` asks for `standard` (the default), `express` or `auto`; the service
chooses (`choose`) when the version is stored and keeps the choice with it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from chalicelib.domain.lifecycle import (
    RETRIABLE_RETRY,
    RetryPolicy,
    StepKind,
    action_retries,
    task_timeout_s,
)
from chalicelib.domain.models import Step
from chalicelib.durations import parse_duration_ms


class Workflow(StrEnum):
    STANDARD = "standard"
    EXPRESS = "express"
    AUTO = "auto"  # Express when the forward path surely fits, else Standard


DEFAULT_WORKFLOW = Workflow.STANDARD
# Step Functions stops an Express run after five minutes.
EXPRESS_MAX_S = 300
# `auto` keeps a minute of room below that: a run near the limit is one slow call from lost.
AUTO_EXPRESS_MAX_S = 240
# What an Express machine cannot run: a Task waiting for its token (a callback step).
NOT_ON_EXPRESS: frozenset[StepKind] = frozenset({StepKind.CALLBACK})


@dataclass(frozen=True)
class WorstCaseLimits:
    """What bounds the forward path besides the steps: the configuration's."""

    task_timeout_margin_s: int
    retriable_max_attempts: int
    max_fanout_items: int
    max_fanout_concurrency: int
    action_retry: RetryPolicy = RetryPolicy()


@dataclass(frozen=True)
class WorkflowChoice:
    requested: Workflow
    chosen: Workflow  # STANDARD or EXPRESS
    # The forward path's longest possible run (every attempt timing out, every backoff at its
    # longest); None when unbounded (a timer until a moment known only at run time).
    worst_case_s: int | None
    reason: str
    warnings: list[str] = field(default_factory=list)


def _backoff_s(policy: RetryPolicy, retries: int) -> float:
    return sum(min(policy.interval_seconds * policy.backoff_rate ** n, policy.max_delay_seconds)
               for n in range(retries))


def step_worst_case_s(step: Step, limits: WorstCaseLimits) -> float | None:
    """How long a step may hold the forward path: every attempt to its Task's timeout, with
    the longest backoff between them; a fan-out's items in rounds of its concurrency."""
    margin = limits.task_timeout_margin_s
    if step.calls_saga:  # its timeout is its whole wait for the child's run
        return parse_duration_ms(step.timeout) / 1000 + margin
    if step.kind is StepKind.WAIT:
        if step.wait is None:
            return None
        return parse_duration_ms(step.wait) / 1000 + margin
    retries = action_retries(step.kind, step.max_retries, limits.retriable_max_attempts)
    policy = RETRIABLE_RETRY if step.kind is StepKind.RETRIABLE else limits.action_retry
    timeout_ms = parse_duration_ms(step.call_timeout_text)
    if step.kind is StepKind.CALLBACK:
        timeout_ms = max(timeout_ms, parse_duration_ms(step.timeout))
    one = (retries + 1) * task_timeout_s(timeout_ms, margin) + _backoff_s(policy, retries)
    if not step.fans_out:
        return one
    at_once = min(step.max_concurrency or limits.max_fanout_concurrency,
                  limits.max_fanout_concurrency)
    return math.ceil(limits.max_fanout_items / at_once) * one


def forward_worst_case_s(steps: Sequence[Step], limits: WorstCaseLimits) -> int | None:
    """The forward path's longest run: its groups one after another, each as long as its
    longest step."""
    groups: dict[int, float] = {}
    for step in steps:
        if not step.active:
            continue
        longest = step_worst_case_s(step, limits)
        if longest is None:
            return None
        groups[step.order] = max(groups.get(step.order, 0.0), longest)
    return math.ceil(sum(groups.values()))


def express_refusals(steps: Sequence[Step]) -> list[Step]:
    """The steps an Express machine cannot run."""
    return [step for step in steps
            if step.active and (step.kind in NOT_ON_EXPRESS or step.calls_saga)]


def _bound_text(worst: int | None) -> str:
    return ("has no bound known before it runs (a timer until a moment in the data)"
            if worst is None else f"may take up to {worst} s")


def choose(requested: Workflow, steps: Sequence[Step], limits: WorstCaseLimits
           ) -> WorkflowChoice:
    """The workflow a version runs on. An explicit `express` with a callback step is refused
    before this (validation); one whose forward path may outlast Express's five minutes is
    accepted with a warning (a run cut there is lost, and the reconciler compensates it)."""
    worst = forward_worst_case_s(steps, limits)
    if requested is Workflow.STANDARD:
        return WorkflowChoice(requested, Workflow.STANDARD, worst, "asked for")
    if requested is Workflow.EXPRESS:
        warnings = []
        if worst is None or worst > EXPRESS_MAX_S:
            warnings.append(
                f"the forward path {_bound_text(worst)}, and an Express run stops after "
                f"{EXPRESS_MAX_S} s: a run cut there is lost, and the reconciler compensates "
                "what it did; use workflow standard (or auto) for a path this long")
        return WorkflowChoice(requested, Workflow.EXPRESS, worst, "asked for", warnings)
    waits = [step.id for step in steps if step.active
             and (step.kind in (*NOT_ON_EXPRESS, StepKind.WAIT) or step.calls_saga)]
    if waits:
        return WorkflowChoice(requested, Workflow.STANDARD, worst,
                              f"step {waits[0]} waits")
    if worst is None or worst > AUTO_EXPRESS_MAX_S:
        return WorkflowChoice(requested, Workflow.STANDARD, worst,
                              f"the forward path {_bound_text(worst)}, over the "
                              f"{AUTO_EXPRESS_MAX_S} s auto allows on Express")
    return WorkflowChoice(requested, Workflow.EXPRESS, worst,
                          f"the forward path takes at most {worst} s, within "
                          f"{AUTO_EXPRESS_MAX_S} s")


def stored_fields(choice: WorkflowChoice | None) -> dict[str, object]:
    """What a stored version keeps of the choice (StoredSaga's workflow fields); None: a
    version stored before sagas had a workflow, which ran on Standard."""
    if choice is None:
        return {"workflow": Workflow.STANDARD.value, "workflow_type": Workflow.STANDARD.value,
                "workflow_reason": "", "forward_worst_case_s": None, "warnings": []}
    return {"workflow": choice.requested.value, "workflow_type": choice.chosen.value,
            "workflow_reason": choice.reason, "forward_worst_case_s": choice.worst_case_s,
            "warnings": list(choice.warnings)}
