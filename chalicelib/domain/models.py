"""Saga definitions as the API receives and returns them. Data only: rules live in validation.py.

The models parse shapes and types; every value rule (lengths, ranges, formats, uniqueness) comes
from the configured validation rules, so that a request can be told all of its faults at once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from chalicelib.domain.lifecycle import (
    DEFAULT_KIND,
    Phase,
    StepKind,
    is_compensated,
    needs_action,
)
from chalicelib.durations import parse_duration_ms


class _Model(BaseModel):
    # Strict: JSON's types as sent, never coerced ("1", 1.0 or true are not an order of 1).
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False, strict=True)


class StepDefinition(_Model):
    id: str | None = None
    name: str | None = None
    description: str | None = None
    # Active steps that share an order form a group and run in parallel.
    order: int | None = None
    # compensatable (the default), pivot, retriable, callback or wait: see
    # chalicelib/domain/lifecycle.py.
    kind: str | None = None
    action: str | None = None
    compensation: str | None = None
    max_retries: int | None = None
    timeout: str | None = None
    active: bool = True
    type: str | None = None
    # Free-form settings handed to the action and compensation (amounts, SKUs, targets, ...).
    config: dict[str, Any] = Field(default_factory=dict)
    # What the step receives as its input: literals and references to the execution's input
    # and earlier steps' results (chalicelib/domain/mapping.py). None: the whole saga input.
    input: dict[str, Any] | None = None
    # kind wait: how long ("15m"), or until when: a reference to a timestamp in the input or
    # an earlier step's result ("$.input.deliver_by"); exactly one of the two.
    wait: str | None = None
    until: str | None = None
    # kind callback: its timeout is the whole wait (at most saga.max_wait); the first call to
    # its action gets call_timeout (the usual step bound); with heartbeat set, the wait ends
    # unless a heartbeat arrives at least this often.
    call_timeout: str | None = None
    heartbeat: str | None = None
    # Runs only if this condition over the saga input and earlier results is true
    # (chalicelib/domain/conditions.py); otherwise the step is SKIPPED. Never on the pivot.
    when: str | None = None
    # A fan-out: runs once per item of the list this reference names ("$.input.lines"), at
    # most max_concurrency at once; tolerated_failures items (a count, or a percentage such
    # as "10%") may fail for good before the step does.
    for_each: str | None = None
    max_concurrency: int | None = None
    tolerated_failures: int | str | None = None
    # A child step: runs another saga (its latest version, or saga_version) with the step's
    # input as the child's input, and waits for it; the child's output is the step's result.
    # No action or compensation: a completed child is undone as a whole (the child's own
    # compensation). See chalicelib/domain/children.py.
    saga: str | None = None
    saga_version: str | None = None


class SagaDefinition(_Model):
    id: str | None = None
    name: str | None = None
    description: str | None = None
    version: str | None = None
    steps: list[StepDefinition] = Field(default_factory=list)
    active: bool = True
    type: str | None = None
    metadata: dict[str, str] = Field(default_factory=dict)
    # What a COMPLETED execution produces: a mapping (chalicelib/domain/mapping.py) resolved
    # against the input and every step's result when it completes.
    output: dict[str, Any] | None = None
    # standard (the default), express or auto: what runs the forward path
    # (chalicelib/domain/workflow.py).
    workflow: str | None = None
    # How long the saga may take to complete ("24h"), from the start of its forward run, at
    # most saga.max_wait: when it passes, what completed is compensated (past the pivot, the
    # execution parks). See chalicelib/usecases/steps/deadlines.py.
    deadline: str | None = None


# What a step gets when its definition leaves these out: applied once, by Step.of.
DEFAULT_TIMEOUT = "30s"
DEFAULT_MAX_RETRIES = 0
DEFAULT_CALL_TIMEOUT = "30s"
# A child step's timeout is its whole wait for the child's run.
DEFAULT_CHILD_TIMEOUT = "1h"


class Step(BaseModel):
    """A step as the service runs it: validated, every field the compiler and the step runtime
    rely on set, defaults applied. Built from a stored definition by Step.of."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    order: int
    # None for a timer, and for a callback with no action (an approval).
    action: str | None
    # None for a retriable step or a timer (never compensated), or an approval (did nothing).
    compensation: str | None
    max_retries: int
    timeout: str
    active: bool
    name: str | None = None
    type: str | None = None
    config: dict[str, Any] = Field(default_factory=dict)
    input: dict[str, Any] | None = None
    kind: StepKind = DEFAULT_KIND
    wait: str | None = None
    until: str | None = None
    call_timeout: str | None = None
    heartbeat: str | None = None
    when: str | None = None
    for_each: str | None = None
    max_concurrency: int | None = None
    tolerated_failures: int | str | None = None
    # An item of a fan-out, as the step runtime runs it: its index (the step's id is then the
    # item's run, "<step id>[<index>]").
    item_index: int | None = None
    # A child step's saga (and the version it is pinned to, if any).
    saga: str | None = None
    saga_version: str | None = None

    @property
    def calls_saga(self) -> bool:
        """A child step: its work is another saga's run."""
        return self.saga is not None

    @property
    def fans_out(self) -> bool:
        return self.for_each is not None and self.item_index is None

    @property
    def call_timeout_text(self) -> str:
        """How long one call of the step's action or compensation may take: a callback's
        call_timeout (its timeout is the whole wait), any other step's timeout."""
        return self.call_timeout if self.call_timeout is not None else self.timeout

    @property
    def group(self) -> int:
        """The parallel group it runs in: the order it shares with its siblings."""
        return self.order

    def target(self, phase: Phase) -> str | None:
        """What runs in a phase: the action, or the compensation (None: a retriable step's)."""
        return self.action if phase is Phase.ACTION else self.compensation

    @classmethod
    def of(cls, definition: StepDefinition) -> Step:
        """The runnable step of a definition that passed validation (whose invariants make
        id, order and action present, and a compensation for every step that is undone)."""
        kind = StepKind(definition.kind) if definition.kind else DEFAULT_KIND
        child = definition.saga is not None
        has_action = bool(definition.action) or child
        if (definition.id is None or definition.order is None
                or (needs_action(kind) and not has_action)
                or (not definition.compensation and is_compensated(kind, has_action=has_action)
                    and kind is not StepKind.CALLBACK and not child)):
            raise ValueError(f"step {definition.id!r} is not a validated definition: it needs "
                             "an id, an order, an action and a compensation")
        return cls(id=definition.id, order=definition.order, action=definition.action or None,
                   compensation=definition.compensation or None, kind=kind,
                   wait=definition.wait, until=definition.until,
                   heartbeat=definition.heartbeat,
                   call_timeout=(definition.call_timeout or DEFAULT_CALL_TIMEOUT
                                 if kind is StepKind.CALLBACK else None),
                   max_retries=(DEFAULT_MAX_RETRIES if definition.max_retries is None
                                else definition.max_retries),
                   timeout=definition.timeout or (DEFAULT_CHILD_TIMEOUT if child
                                                  else DEFAULT_TIMEOUT),
                   active=definition.active, saga=definition.saga,
                   saga_version=definition.saga_version,
                   name=definition.name, type=definition.type, config=definition.config,
                   input=definition.input, when=definition.when,
                   for_each=definition.for_each,
                   max_concurrency=definition.max_concurrency,
                   tolerated_failures=definition.tolerated_failures)


class StoredSaga(BaseModel):
    """A validated definition version as stored, with what the store adds."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    description: str
    version: str
    revision: int
    steps: list[StepDefinition]
    active: bool
    type: str | None = None
    metadata: dict[str, str] = Field(default_factory=dict)
    output: dict[str, Any] | None = None
    deadline: str | None = None
    # The workflow asked for, the one chosen when the version was stored (standard or
    # express), why, the forward path's worst case in seconds (None: unbounded) and what the
    # choice warns of.
    workflow: str = "standard"
    workflow_type: str = "standard"
    workflow_reason: str = ""
    forward_worst_case_s: int | None = None
    warnings: list[str] = Field(default_factory=list)
    created_at: datetime
    updated_at: datetime
    version_created_at: datetime

    def active_steps(self) -> list[Step]:
        """The steps that run, in order (a group's steps in the order the definition lists
        them)."""
        return sorted((Step.of(s) for s in self.steps if s.active), key=lambda s: s.order)

    def deadline_s(self) -> int | None:
        """Its deadline in whole seconds (None: it has none)."""
        return None if self.deadline is None else parse_duration_ms(self.deadline) // 1000

    def pivot(self) -> Step | None:
        """Its pivot step, if it has one: past it the saga never compensates."""
        return next((s for s in self.active_steps() if s.kind is StepKind.PIVOT), None)

    def step(self, step_id: str) -> Step | None:
        found = next((s for s in self.steps if s.id == step_id), None)
        return Step.of(found) if found is not None else None
