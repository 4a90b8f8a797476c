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
    """A step of a saga: what it does, what undoes it, and when it runs. Which fields a step
    needs depends on its kind; the configured validation rules say which, and a refused
    definition is told every fault at once."""

    id: str | None = None
    name: str | None = None
    description: str | None = None
    order: int | None = Field(default=None, description=(
        "when it runs: ascending. Active steps that share an order form a group and run in "
        "parallel (a Step Functions Parallel state); when one of them fails for good the "
        "others finish the attempt they are in, then every step that took effect, in the "
        "group and before it, is compensated: a group's compensations in parallel, groups in "
        "reverse order"))
    # See chalicelib/domain/lifecycle.py.
    kind: str | None = Field(default=None, description=(
        "compensatable (the default): undone when a later step fails for good. pivot (at most "
        "one, alone in its group): the go/no-go point; once it succeeds the saga only goes "
        "forward. retriable (every step after the pivot, no compensation, no max_retries): "
        "retried up to saga.retriable_max_attempts with capped exponential backoff, then the "
        "execution is PARKED for an operator to retry forward or resolve. callback (alone in "
        "its group, either side of the pivot): its action (optional: without one it is an "
        "approval) is called once with a callback object, then the step WAITS until it is "
        "completed through /callbacks/{id}/succeed or /fail, or its timeout (the whole wait, "
        "at most saga.max_wait) ends it as an unknown outcome, compensated (after the pivot: "
        "parked). wait (alone in its group): a timer, `wait` (a duration) or `until` (a "
        "reference to a timestamp); no action, no compensation, never undone"))
    action: str | None = Field(default=None, description=(
        "what does the work: an HTTPS URL (POSTed the participant request), lambda:<function "
        "name or ARN>, or a built-in demo action"))
    compensation: str | None = Field(default=None, description=(
        "what undoes it, the same forms as action: called with the action's result, also "
        "when the action's outcome is unknown (it timed out, or answered after its "
        "deadline)"))
    max_retries: int | None = Field(default=None, description=(
        "how many times a failed attempt is tried again before the step fails for good"))
    timeout: str | None = Field(default=None, description=(
        "a duration such as 500ms, 30s, 2m or 1h: each attempt's deadline (default 30s)"))
    active: bool = Field(default=True, description="an inactive step is kept but never runs")
    type: str | None = None
    # Handed to the action and compensation as they are (amounts, SKUs, targets, ...).
    config: dict[str, Any] = Field(default_factory=dict, description="settings for the action")
    # chalicelib/domain/mapping.py resolves it. None: the whole saga input.
    input: dict[str, Any] | None = Field(default=None, description=(
        "what the step receives as its input: literals, and references '$.input[.<path>]', "
        "'$.results.<earlier step id>[.<path>]' or '$.execution.id' (a path is field names "
        "and [index]es separated by dots; '$$.' stands for a literal '$.'). Left out: the "
        "execution's whole input. A reference to a result field absent when the step runs "
        "fails it for good. Keys must not start with '$' or contain '.' or NUL (MongoDB "
        "refuses them)"))
    # kind wait: exactly one of the two.
    wait: str | None = Field(default=None, description=(
        "kind wait: how long, such as 15m, 24h or 7d (at most saga.max_wait)"))
    until: str | None = Field(default=None, description=(
        "kind wait: a reference to an ISO 8601 timestamp in the input or an earlier step's "
        "result, such as $.input.deliver_by (UTC when it has no zone)"))
    call_timeout: str | None = Field(default=None, description=(
        "kind callback: how long its action's first call may take (default 30s; the rule of "
        "a step's timeout); its timeout is the whole wait"))
    heartbeat: str | None = Field(default=None, description=(
        "kind callback: the wait ends (an unknown outcome) unless a heartbeat arrives at "
        "least this often; shorter than its timeout"))
    # chalicelib/domain/conditions.py reads it.
    when: str | None = Field(default=None, description=(
        "a condition: the step runs only if it is true when the step's turn comes; otherwise "
        "the step is SKIPPED (never run, never compensated; GET /executions/{id} and the "
        "saga.step.skipped event record the condition, its value and the values it read). "
        "References as in input ($.input.<path>, $.results.<earlier step id>.<path>, "
        "$.execution.id) compared with JSON literals: ==, !=, <, <=, >, >=, in, not in, "
        "exists <reference>, combined with and, or, not and parentheses, such as "
        "$.input.kind != \"digital\". An absent reference equals nothing and counts as "
        "false. Never on the pivot"))
    for_each: str | None = Field(default=None, description=(
        "a fan-out: a reference to a list in the input or an earlier step's result, such as "
        "$.input.lines; the step runs once per item (at most saga.max_fanout_items), each "
        "item a run of its own named <step id>[<index>] whose input may read $.item (the "
        "element) and $.item.<path>. Its result is {\"items\": [...]}, each item's result in "
        "item order (null for an item that failed within tolerated_failures). Only a "
        "compensatable step fans out, alone in its group; every item that acted is undone "
        "with its own result"))
    max_concurrency: int | None = Field(default=None, description=(
        "with for_each: how many items run at once, at most (default and ceiling: "
        "saga.max_fanout_concurrency)"))
    tolerated_failures: int | str | None = Field(default=None, description=(
        "with for_each: how many items may fail for good before the step does: a count, or a "
        "percentage of the items (\"10%\", rounded down). Default 0; past it no new item "
        "starts and the step fails"))
    # See chalicelib/domain/children.py.
    saga: str | None = Field(default=None, description=(
        "a child step: the id of another saga it runs (its latest active version, or "
        "saga_version), with the step's input as the child's input; the step waits for the "
        "child, and the child's output (its steps' results by id when its saga maps none) is "
        "the step's result. No action, compensation or max_retries: when this saga "
        "compensates, a completed child is compensated as a whole. The saga must exist; a "
        "compensatable child's saga has no pivot; no saga may call this one back (a cycle); "
        "children nest at most saga.max_child_depth deep. Its timeout is its whole wait for "
        "the child (default 1h, at most saga.max_wait)"))
    saga_version: str | None = Field(default=None, description=(
        "with saga: the child saga's version to run (a semantic version); default its "
        "latest"))


class SagaDefinition(_Model):
    """A saga as it is registered: its steps, and what a completed execution produces."""

    id: str | None = None
    name: str | None = None
    description: str | None = None
    version: str | None = Field(default=None, description=(
        "a semantic version; a new version of a saga must be higher than its latest"))
    steps: list[StepDefinition] = Field(default_factory=list)
    active: bool = Field(default=True, description="an inactive saga cannot be executed")
    type: str | None = None
    metadata: dict[str, str] = Field(default_factory=dict)
    # chalicelib/domain/mapping.py resolves it.
    output: dict[str, Any] | None = Field(default=None, description=(
        "what a COMPLETED execution produces: a mapping in the steps' input language, "
        "resolved against the input and every step's result as the execution completes (in "
        "GET /executions/{id}, the saga.completed event and the WebSocket push); its keys "
        "follow the rule of a step's input"))
    # chalicelib/domain/workflow.py chooses.
    workflow: str | None = Field(default=None, description=(
        "what runs the forward path: a Standard workflow (the default), an Express one "
        "(cheaper, at most 5 minutes, no callback steps; compensations still run on "
        "Standard), or auto (Express when the forward path surely fits in 4 minutes and no "
        "step waits)"))
    # chalicelib/usecases/steps/deadlines.py enforces it.
    deadline: str | None = Field(default=None, description=(
        "how long an execution may take to complete, from its start (such as 24h; at least "
        "1s, at most saga.max_wait). When it passes, the step at work is abandoned as an "
        "unknown outcome and what completed is compensated (error type Deadline, reason "
        "deadline); past the pivot the execution parks instead"))


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
    """A saga's version as it is stored: its definition, with what the store adds."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    description: str
    version: str
    revision: int = Field(description="the saga's versions counted from 1")
    steps: list[StepDefinition]
    active: bool
    type: str | None = None
    metadata: dict[str, str] = Field(default_factory=dict)
    output: dict[str, Any] | None = None
    deadline: str | None = None
    workflow: str = Field(default="standard", description="the workflow asked for")
    workflow_type: str = Field(default="standard", description=(
        "the workflow chosen as the version was stored: standard or express"))
    workflow_reason: str = Field(default="", description="why it was chosen")
    forward_worst_case_s: int | None = Field(default=None, description=(
        "the forward path's longest run, in seconds (null: unbounded)"))
    warnings: list[str] = Field(default_factory=list, description="what the choice warns of")
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
