"""Validation of saga definitions: the configured rules plus the invariants the service relies on.

Every violation is collected, never just the first, so a client can fix a request in one go.
The configured rules (saga.validation_rules) can be switched off with validation_enabled; the
invariants (safe ids, unique steps, a compensation per step, ...) cannot, because the state
machine compiler and the store depend on them.
"""

from __future__ import annotations

import copy
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from chalicelib.config import DEFAULT_MAX_WAIT, DEFAULT_RETRIABLE_MAX_ATTEMPTS
from chalicelib.domain.action_refs import participant_kind, reference_problem
from chalicelib.domain.branch_validation import BranchLimits, branch_problems
from chalicelib.domain.errors import BadRequest, ErrorKind, SagaError
from chalicelib.domain.lifecycle import (
    DEFAULT_TASK_TIMEOUT_MARGIN_S,
    WAITING_KINDS,
    StepKind,
    max_step_timeout_s,
)
from chalicelib.domain.mapping import MappingError, parse_reference, references
from chalicelib.domain.models import SagaDefinition, StepDefinition
from chalicelib.domain.storable import key_problem
from chalicelib.domain.workflow import NOT_ON_EXPRESS, Workflow, WorstCaseLimits
from chalicelib.durations import format_duration_ms, parse_duration_ms

M = TypeVar("M", bound=BaseModel)

# Ids end up in state machine names, Lambda payloads, URLs and Kafka keys.
SAFE_ID = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?")
# semver.org's grammar: MAJOR.MINOR.PATCH[-prerelease][+build]
SEMVER = re.compile(
    r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)(?:\.(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*))*))?"
    r"(?:\+([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?"
)
DURATION_FIELDS = frozenset({"timeout", "call_timeout"})
# A retriable step has neither: it is never compensated, and saga.retriable_max_attempts says
# how often it is tried. Configured rules that require them do not apply to it.
NOT_FOR_RETRIABLE = ("compensation", "max_retries")  # a field name, not a phase
KINDS = ", ".join(kind.value for kind in StepKind)
# Fields only one kind takes.
_WAIT_FIELDS = ("wait", "until")
# A timer takes none of these.
_NOT_FOR_TIMERS = ("action", "compensation", "max_retries", "timeout")  # a field name, not a phase
_CALLBACK_FIELDS = ("call_timeout", "heartbeat")
# An order is stored as a step run's group (step_runs.step_group, a signed INT); it also names
# a group's Parallel state ("group:<order>"), which 10 digits keep well within 80 characters.
MAX_ORDER = 2**31 - 1

_CHILD_KINDS = (StepKind.COMPENSATABLE, StepKind.PIVOT, StepKind.RETRIABLE)
_NOT_FOR_CHILDREN = {
    "action": "a child step runs its saga: it takes no action",
    "compensation": "a child step is undone by its saga's own compensation: it takes none",
    "max_retries": "a child step runs its saga once (its own steps retry): leave max_retries "
                   "out, or 0",
    "for_each": "a child step does not fan out (yet): call the child saga from a step of "
                "its own",
}


@dataclass(frozen=True)
class Violation:
    field: str
    rule: str
    message: str
    value: Any = None

    def as_dict(self) -> dict[str, Any]:
        return {"field": self.field, "rule": self.rule, "message": self.message,
                "value": self.value}


@dataclass(frozen=True)
class ValidationPolicy:
    """What validation needs from the configuration, as plain data."""

    rules: Mapping[str, Mapping[str, Mapping[str, Any]]] = field(default_factory=dict)
    enabled: bool = True
    saga_types: frozenset[str] = frozenset()
    step_types: frozenset[str] = frozenset()
    max_steps_per_saga: int = 100
    # Built-in action names; None accepts any name. Participant references ("lambda:NAME",
    # "http(s)://...") are always accepted.
    actions: frozenset[str] | None = None
    # saga.task_timeout_margin: a step's Task waits its timeout plus this, within a Lambda's
    # 15 minutes, so a step's timeout is capped there whatever the configured rules allow.
    task_timeout_margin_s: int = DEFAULT_TASK_TIMEOUT_MARGIN_S
    # saga.max_wait: the longest a callback step's timeout (its whole wait) or a timer.
    max_wait_s: int = parse_duration_ms(DEFAULT_MAX_WAIT) // 1000
    # saga.max_fanout_items and saga.max_fanout_concurrency.
    branches: BranchLimits = field(default_factory=BranchLimits)
    # saga.retriable_max_attempts: part of how long a forward path may take (its workflow).
    retriable_max_attempts: int = DEFAULT_RETRIABLE_MAX_ATTEMPTS

    def worst_case_limits(self) -> WorstCaseLimits:
        return WorstCaseLimits(task_timeout_margin_s=self.task_timeout_margin_s,
                               retriable_max_attempts=self.retriable_max_attempts,
                               max_fanout_items=self.branches.max_items,
                               max_fanout_concurrency=self.branches.max_concurrency)

    @classmethod
    def from_settings(cls, saga_settings: Any,
                      actions: frozenset[str] | None = None) -> ValidationPolicy:
        return cls(
            actions=actions,
            rules=saga_settings.validation_rules,
            enabled=saga_settings.validation_enabled,
            saga_types=frozenset(saga_settings.supported_saga_types),
            step_types=frozenset(saga_settings.supported_step_types),
            max_steps_per_saga=saga_settings.max_steps_per_saga,
            task_timeout_margin_s=saga_settings.task_timeout_margin_s,
            max_wait_s=saga_settings.max_wait_s,
            branches=BranchLimits(max_items=saga_settings.max_fanout_items,
                                  max_concurrency=saga_settings.max_fanout_concurrency),
            retriable_max_attempts=saga_settings.retriable_max_attempts,
        )


class DefinitionInvalid(SagaError):
    """Every violation of a definition at once, so a client can fix it in one go."""

    kind = ErrorKind.VALIDATION_FAILED

    def __init__(self, violations: list[Violation]) -> None:
        super().__init__(f"the saga definition has {len(violations)} error(s)",
                         violations=[v.as_dict() for v in violations])
        self.violations = violations


def parse_definition(payload: Any) -> SagaDefinition:
    """The request body as a SagaDefinition, or DefinitionInvalid listing every shape error."""
    if not isinstance(payload, dict):
        raise DefinitionInvalid([Violation("", "type", "the body must be a JSON object",
                                           type(payload).__name__)])
    try:
        return SagaDefinition.model_validate(payload)
    except ValidationError as error:
        raise DefinitionInvalid([_from_pydantic(e) for e in error.errors()]) from None


def parse_step(payload: Any) -> StepDefinition:
    """A step to add as a StepDefinition, or DefinitionInvalid listing every shape error (its
    fields named as in the step). Its rules are checked with the saga it joins."""
    if not isinstance(payload, dict):
        raise BadRequest("the body must be a JSON object describing one step")
    try:
        return StepDefinition.model_validate(payload)
    except ValidationError as error:
        raise DefinitionInvalid([_from_pydantic(e) for e in error.errors()]) from None


def read_definition(payload: Any) -> tuple[SagaDefinition, list[Violation]]:
    """The body as a SagaDefinition with every shape error (a wrong type, an unknown field)
    listed, not raised: the offending values are left out of the definition, so its rules are
    checked with the rest (merge_violations leaves out what those values would repeat). A body
    that is not an object is refused at once."""
    if not isinstance(payload, dict):
        raise DefinitionInvalid([Violation("", "type", "the body must be a JSON object",
                                           type(payload).__name__)])
    return _lenient(SagaDefinition, payload)


def read_step(payload: Any) -> tuple[StepDefinition, list[Violation]]:
    """A step to add, as read_definition reads a saga (its fields named as in the step)."""
    if not isinstance(payload, dict):
        raise BadRequest("the body must be a JSON object describing one step")
    return _lenient(StepDefinition, payload)


def _lenient(model: type[M], payload: dict[str, Any]) -> tuple[M, list[Violation]]:
    try:
        return model.model_validate(payload), []
    except ValidationError as error:
        errors = error.errors()
    pruned = copy.deepcopy(payload)
    for found in errors:
        _drop(pruned, found["loc"])
    try:
        parsed = model.model_validate(pruned)
    except ValidationError:  # nothing usable was left: the shape errors say why
        raise DefinitionInvalid([_from_pydantic(e) for e in errors]) from None
    return parsed, [_from_pydantic(e) for e in errors]


def _drop(payload: Any, loc: tuple[Any, ...]) -> None:
    """Leave out the value at `loc` (a step that is not an object becomes an empty one)."""
    *parents, last = loc if loc else ("",)
    for part in parents:
        try:
            payload = payload[part]
        except (KeyError, IndexError, TypeError):
            return
    if isinstance(payload, dict):
        payload.pop(last, None)
    elif isinstance(payload, list) and isinstance(last, int) and last < len(payload):
        payload[last] = {}


def merge_violations(shape: Sequence[Violation],
                     rules: Sequence[Violation]) -> list[Violation]:
    """The shape errors, then each rule's violation not about a value a shape error already
    names (its field, or within it): one violation per fault."""
    named = [v.field for v in shape]

    def repeats(field_name: str) -> bool:
        return any(field_name == n or field_name.startswith((f"{n}.", f"{n}[")) for n in named)

    return [*shape, *(v for v in rules if not repeats(v.field))]


def _from_pydantic(error: Mapping[str, Any]) -> Violation:
    path = ""
    for part in error["loc"]:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    rule = {"extra_forbidden": "unknown_field", "missing": "required"}.get(error["type"], "type")
    value = error.get("input")
    message = "unknown field" if rule == "unknown_field" else error["msg"]
    return Violation(path, rule, message, value if _is_scalar(value) else None)


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def validate_definition(saga: SagaDefinition, policy: ValidationPolicy) -> list[Violation]:
    violations: list[Violation] = []
    if policy.enabled:
        violations += _field_rules("", saga, policy.rules.get("saga", {}))
        for index, step in enumerate(saga.steps):
            configured = policy.rules.get("step", {})
            skipped = _rules_not_for(step)
            rules = {k: v for k, v in configured.items() if k not in skipped}
            violations += _field_rules(f"steps[{index}].", step, rules)
            if step.kind == StepKind.CALLBACK and step.call_timeout is not None \
                    and "timeout" in configured:
                # The first call of a callback step is bounded like any step's call.
                violations += _duration_rules(f"steps[{index}].call_timeout",
                                              step.call_timeout, configured["timeout"])
    violations += _invariants(saga, policy)
    # A field the configured rules and an invariant both require is reported once, and a
    # timeout over the configured maximum is not also over Lambda's.
    over = {v.field for v in violations if v.rule == "max"}
    seen: set[tuple[str, str]] = set()
    return [v for v in violations
            if (v.field, v.rule) not in seen and not seen.add((v.field, v.rule))
            and not (v.rule == "lambda_max" and v.field in over)]


def check_definition(payload: Any, policy: ValidationPolicy) -> SagaDefinition:
    """Parse and validate in one go; DefinitionInvalid carries every violation, shape errors
    and rules alike."""
    saga, shape = read_definition(payload)
    if violations := merge_violations(shape, validate_definition(saga, policy)):
        raise DefinitionInvalid(violations)
    return saga


# -- configured rules ----------------------------------------------------------------------

def _rules_not_for(step: StepDefinition) -> frozenset[str]:
    """Configured step rules that do not apply to the step's kind: a retriable step has no
    compensation and no max_retries; a timer has no action, compensation, retries or timeout;
    a callback's timeout is its whole wait (saga.max_wait bounds it, call_timeout takes the
    configured timeout rule), and one with no action (an approval) has no compensation."""
    if step.saga is not None:
        # A child step: its saga does the work; its timeout is the whole wait for it.
        return frozenset({*_NOT_FOR_CHILDREN, "timeout"})
    if step.kind == StepKind.RETRIABLE:
        return frozenset(NOT_FOR_RETRIABLE)
    if step.kind == StepKind.WAIT:
        return frozenset(_NOT_FOR_TIMERS)
    if step.kind == StepKind.CALLBACK:
        # Called once: no retries (max_retries is refused by _kind_fields).
        skipped = {"timeout", "compensation", "max_retries"}  # a field name, not a phase
        approval = {"action"}  # a field name, not a phase
        return frozenset(skipped if step.action else skipped | approval)
    return frozenset()


def _field_rules(prefix: str, model: SagaDefinition | StepDefinition,
                 rules: Mapping[str, Mapping[str, Any]]) -> list[Violation]:
    found = []
    for name, rule_set in rules.items():
        value = getattr(model, name, None)
        path = f"{prefix}{name}"
        if value is None or value == "":
            if rule_set.get("required"):
                found.append(Violation(path, "required", "is required", value))
            continue
        found += _value_rules(path, name, value, rule_set)
    return found


def _value_rules(path: str, name: str, value: Any, rule_set: Mapping[str, Any]) -> list[Violation]:
    found = []
    if isinstance(value, str) and name not in DURATION_FIELDS:
        if (low := rule_set.get("min_length")) is not None and len(value) < low:
            found.append(Violation(path, "min_length",
                                   f"must be at least {low} characters long", value))
        if (high := rule_set.get("max_length")) is not None and len(value) > high:
            found.append(Violation(path, "max_length",
                                   f"must be at most {high} characters long", value))
        if rule_set.get("format") == "semver" and not SEMVER.fullmatch(value):
            found.append(Violation(path, "format",
                                   "must be a semantic version such as 1.0.0", value))
    elif name in DURATION_FIELDS:
        found += _duration_rules(path, value, rule_set)
    elif isinstance(value, int):
        if (low := rule_set.get("min")) is not None and value < low:
            found.append(Violation(path, "min", f"must be at least {low}", value))
        if (high := rule_set.get("max")) is not None and value > high:
            found.append(Violation(path, "max", f"must be at most {high}", value))
    return found


def _duration_rules(path: str, value: Any, rule_set: Mapping[str, Any]) -> list[Violation]:
    try:
        ms = parse_duration_ms(value)
    except ValueError:
        return []  # a malformed duration is reported by the invariants, enabled or not
    found = []
    if (low := rule_set.get("min")) is not None and ms < parse_duration_ms(low):
        found.append(Violation(path, "min", f"must be at least {low}", value))
    if (high := rule_set.get("max")) is not None and ms > parse_duration_ms(high):
        found.append(Violation(path, "max", f"must be at most {high}", value))
    return found


# -- invariants ------------------------------------------------------------------------------

def _invariants(saga: SagaDefinition, policy: ValidationPolicy) -> list[Violation]:
    found = []
    if saga.id and not SAFE_ID.fullmatch(saga.id):
        found.append(Violation("id", "charset", _charset_message(), saga.id))
    if saga.type is not None and policy.saga_types and saga.type not in policy.saga_types:
        found.append(Violation("type", "supported",
                               f"must be one of {', '.join(sorted(policy.saga_types))}",
                               saga.type))
    if not saga.steps:
        found.append(Violation("steps", "min_items", "a saga needs at least one step", 0))
    elif not any(step.active for step in saga.steps):
        found.append(Violation("steps", "active", "at least one step must be active", None))
    if len(saga.steps) > policy.max_steps_per_saga:
        found.append(Violation("steps", "max_items",
                               f"a saga has at most {policy.max_steps_per_saga} steps",
                               len(saga.steps)))
    for index, step in enumerate(saga.steps):
        found += _step_invariants(f"steps[{index}].", step, policy)
    found += _mapping_references(saga)
    for index, step in enumerate(saga.steps):
        found += _unstorable_keys(f"steps[{index}].input", step.input)
    found += _unstorable_keys("output", saga.output)
    found += _duplicates("id", [step.id for step in saga.steps])
    found += _shape(saga)
    found += [Violation(p.field, p.rule, p.message, p.value)
              for p in branch_problems(saga, policy.branches)]
    found += _workflow(saga)
    found += _wait_bound("deadline", saga.deadline, policy)
    return found


def _workflow(saga: SagaDefinition) -> list[Violation]:
    """workflow names a kind the service runs; an Express machine cannot wait for a task
    token, so `express` refuses callback steps (`auto` simply picks Standard for them)."""
    if saga.workflow is None:
        return []
    if saga.workflow not in {w.value for w in Workflow}:
        return [Violation("workflow", "enum", "must be one of "
                          f"{', '.join(w.value for w in Workflow)}", saga.workflow)]
    if saga.workflow != Workflow.EXPRESS:
        return []
    return [Violation(f"steps[{index}].kind", "workflow",
                      f"a {step.kind} step waits for a partner, which an Express workflow "
                      "cannot (it runs at most 5 minutes and takes no task token): use "
                      "workflow standard or auto", step.kind)
            for index, step in enumerate(saga.steps)
            if step.active and step.kind in {kind.value for kind in NOT_ON_EXPRESS}] + [
        Violation(f"steps[{index}].saga", "workflow",
                  "a child step waits for its saga's run, which an Express workflow cannot "
                  "(it runs at most 5 minutes and waits for no other run): use workflow "
                  "standard or auto", step.saga)
        for index, step in enumerate(saga.steps) if step.active and step.saga is not None]


def _step_invariants(prefix: str, step: StepDefinition,
                     policy: ValidationPolicy) -> list[Violation]:
    found = []
    if not step.id:  # what the machine, the store and every event name the step by
        found.append(Violation(f"{prefix}id", "required", "is required", step.id))
    elif not SAFE_ID.fullmatch(step.id):
        found.append(Violation(f"{prefix}id", "charset", _charset_message(), step.id))
    kind = step.kind
    if step.saga is None and step.saga_version is not None:
        found.append(Violation(f"{prefix}saga_version", "child",
                               "only a child step (one with saga) takes saga_version",
                               step.saga_version))
    if not step.action and kind not in (StepKind.WAIT, StepKind.CALLBACK) \
            and step.saga is None:
        found.append(Violation(f"{prefix}action", "required", "every step needs an action",
                               step.action))
    if kind is not None and kind not in {k.value for k in StepKind}:
        found.append(Violation(f"{prefix}kind", "supported", f"must be one of {KINDS}", kind))
    found += _kind_fields(prefix, step, policy)
    if step.saga is not None:
        found += _child_fields(prefix, step, policy)
    elif kind in (StepKind.WAIT, StepKind.CALLBACK):
        pass  # their compensation rules are _kind_fields' and _shape's
    elif kind == StepKind.RETRIABLE:
        for name in NOT_FOR_RETRIABLE:
            if getattr(step, name) is not None:
                found.append(Violation(f"{prefix}{name}", "retriable", _NOT_FOR_RETRIABLE[name],
                                       getattr(step, name)))
    elif not step.compensation:
        found.append(Violation(f"{prefix}compensation", "required",
                               "every step needs a compensation (only a retriable step has "
                               "none)", step.compensation))
    if step.order is None:
        found.append(Violation(f"{prefix}order", "required", "is required", None))
    elif step.order < 1:
        found.append(Violation(f"{prefix}order", "min", "must be at least 1", step.order))
    elif step.order > MAX_ORDER:
        found.append(Violation(f"{prefix}order", "max",
                               f"must be at most {MAX_ORDER} (what MySQL's INT holds)",
                               step.order))
    if step.max_retries is not None and step.max_retries < 0:
        found.append(Violation(f"{prefix}max_retries", "min", "must not be negative",
                               step.max_retries))
    if step.saga is not None:
        pass  # its timeout is _child_fields'
    elif kind == StepKind.CALLBACK:
        # Its timeout is the whole wait: no Lambda runs meanwhile, saga.max_wait bounds it.
        found += _wait_bound(f"{prefix}timeout", step.timeout, policy)
        found += _call_bound(f"{prefix}call_timeout", step.call_timeout, policy)
    else:
        found += _call_bound(f"{prefix}timeout", step.timeout, policy)
    for name in ("action", "compensation"):  # a field name, not a phase
        value = getattr(step, name)
        if value and policy.actions is not None and not _is_known_action(value, policy.actions):
            found.append(Violation(
                f"{prefix}{name}", "known_action",
                "must be a built-in action, lambda:<function name or ARN>, or an http(s) URL",
                value))
        elif value and (problem := reference_problem(value)):
            found.append(Violation(f"{prefix}{name}", "participant", problem, value))
    if step.type is not None and policy.step_types and step.type not in policy.step_types:
        found.append(Violation(f"{prefix}type", "supported",
                               f"must be one of {', '.join(sorted(policy.step_types))}",
                               step.type))
    return found


def _child_fields(prefix: str, step: StepDefinition,
                  policy: ValidationPolicy) -> list[Violation]:
    """A child step (saga): a saga id, a semantic version if pinned, a kind that is undone
    or retried (never a waiting kind), none of the fields its saga's steps have instead; its
    timeout is its whole wait for the child's run (at most saga.max_wait). Whether the saga
    exists, has a pivot or calls back is the definition service's (it reads the store)."""
    found = []
    assert step.saga is not None
    if not step.saga or not SAFE_ID.fullmatch(step.saga):
        found.append(Violation(f"{prefix}saga", "charset", _charset_message(), step.saga))
    if step.saga_version is not None and not SEMVER.fullmatch(step.saga_version):
        found.append(Violation(f"{prefix}saga_version", "format",
                               "must be a semantic version such as 1.0.0", step.saga_version))
    if step.kind is not None and step.kind not in {k.value for k in _CHILD_KINDS}:
        found.append(Violation(f"{prefix}kind", "child",
                               "a child step is compensatable, pivot or retriable; a "
                               f"{step.kind} step cannot run a saga", step.kind))
    for name, why in _NOT_FOR_CHILDREN.items():
        value = getattr(step, name)
        if value is not None and not (name == "max_retries" and value == 0):
            found.append(Violation(f"{prefix}{name}", "child", why, value))
    found += _wait_bound(f"{prefix}timeout", step.timeout, policy)
    return found


def _call_bound(path: str, value: str | None, policy: ValidationPolicy) -> list[Violation]:
    """A call's timeout: a duration whose Task (plus the margin) fits in a Lambda."""
    if value is None:
        return []
    if not _is_duration(value):
        return [Violation(path, "format", "must be a duration such as 500ms, 30s, 2m or 1h",
                          value)]
    cap = max_step_timeout_s(policy.task_timeout_margin_s)
    if parse_duration_ms(value) > 1000 * cap:
        return [Violation(
            path, "lambda_max",
            f"must be at most {format_duration_ms(cap * 1000)}: the step's Task waits its "
            f"timeout plus saga.task_timeout_margin ({policy.task_timeout_margin_s}s) within a "
            "Lambda's 15 minutes", value)]
    return []


def _wait_bound(path: str, value: str | None, policy: ValidationPolicy) -> list[Violation]:
    """A wait's length: a duration of at least a second, at most saga.max_wait."""
    if value is None:
        return []
    if not _is_duration(value):
        return [Violation(path, "format", "must be a duration such as 90s, 15m, 24h or 7d",
                          value)]
    ms = parse_duration_ms(value)
    if ms < 1000:
        return [Violation(path, "min", "must be at least 1s", value)]
    if ms > 1000 * policy.max_wait_s:
        return [Violation(path, "max_wait",
                          f"must be at most {format_duration_ms(policy.max_wait_s * 1000)} "
                          "(config saga.max_wait)", value)]
    return []


def _kind_fields(prefix: str, step: StepDefinition,
                 policy: ValidationPolicy) -> list[Violation]:
    """The fields of the waiting kinds: a timer's wait or until (one of them), a callback's
    call_timeout and heartbeat; each refused on the other kinds."""
    found = []
    kind = step.kind
    own = {StepKind.WAIT: _WAIT_FIELDS, StepKind.CALLBACK: _CALLBACK_FIELDS}.get(
        StepKind(kind) if kind in {k.value for k in StepKind} else StepKind.COMPENSATABLE, ())
    for name in (*_WAIT_FIELDS, *_CALLBACK_FIELDS):
        if name not in own and getattr(step, name) is not None:
            owner = "wait" if name in _WAIT_FIELDS else "callback"
            found.append(Violation(f"{prefix}{name}", "kind",
                                   f"only a step of kind {owner} takes {name}",
                                   getattr(step, name)))
    if kind == StepKind.WAIT:
        for name in _NOT_FOR_TIMERS:
            if getattr(step, name) is not None:
                found.append(Violation(f"{prefix}{name}", "kind",
                                       f"a wait step is a timer: it takes no {name}",
                                       getattr(step, name)))
        if (step.wait is None) == (step.until is None):
            found.append(Violation(f"{prefix}wait", "one_of",
                                   "a wait step needs exactly one of wait (a duration such "
                                   "as 15m) and until (a reference to a timestamp, such as "
                                   "$.input.deliver_by)", step.wait))
        found += _wait_bound(f"{prefix}wait", step.wait, policy)
        if step.until is not None:
            try:
                parse_reference(step.until)
            except MappingError as error:
                found.append(Violation(f"{prefix}until", "reference", str(error), step.until))
    if kind == StepKind.CALLBACK:
        if step.max_retries:
            found.append(Violation(f"{prefix}max_retries", "kind",
                                   "a callback step's action is called once (its partner "
                                   "completes it later): leave max_retries out, or 0",
                                   step.max_retries))
        if step.action and participant_kind(step.action) is None:
            found.append(Violation(f"{prefix}action", "participant",
                                   "a callback's action must be a participant (lambda:<name> "
                                   "or an http(s) URL) that hands the callback on; leave it "
                                   "out for an approval", step.action))
        if not step.action and step.compensation:
            found.append(Violation(f"{prefix}compensation", "kind",
                                   "a callback with no action (an approval) did nothing to "
                                   "undo: leave compensation out", step.compensation))
        if step.heartbeat is not None:
            if not _is_duration(step.heartbeat) or parse_duration_ms(step.heartbeat) < 1000:
                found.append(Violation(f"{prefix}heartbeat", "format",
                                       "must be a duration of at least 1s, such as 30s or 5m",
                                       step.heartbeat))
            elif step.timeout is not None and _is_duration(step.timeout) and \
                    parse_duration_ms(step.heartbeat) >= parse_duration_ms(step.timeout):
                found.append(Violation(f"{prefix}heartbeat", "below_timeout",
                                       "must be shorter than the step's timeout (the whole "
                                       "wait)", step.heartbeat))
    return found


_NOT_FOR_RETRIABLE = {
    "compensation": "a retriable step is never compensated (it runs after the pivot, when the "
                    "saga only goes forward): leave compensation out",
    "max_retries": "a retriable step is retried up to saga.retriable_max_attempts times, then "
                   "parks for an operator: leave max_retries out",
}


def _shape(saga: SagaDefinition) -> list[Violation]:
    """Groups and kinds: at most one pivot, alone in its group; every active step after it is
    retriable, and every retriable step comes after it. Steps before the pivot are undone
    when anything up to the pivot fails; after it nothing is undone."""
    active = [(index, step) for index, step in enumerate(saga.steps)
              if step.active and step.order is not None]
    pivots = [(index, step) for index, step in active if step.kind == StepKind.PIVOT]
    found = [Violation(f"steps[{index}].kind", "one_pivot",
                       f"a saga has at most one pivot step; {pivots[0][1].id!r} is one",
                       step.kind)
             for index, step in pivots[1:]]
    pivot = pivots[0][1] if pivots else None
    found += _waiting_alone(active)
    for index, step in active:
        where = f"steps[{index}]"
        if step.kind == StepKind.CALLBACK:
            found += _callback_compensation(where, step, pivot)
        if step.kind in (StepKind.CALLBACK, StepKind.WAIT):
            continue  # either side of the pivot (a callback after it behaves as retriable)
        if pivot is None:
            if step.kind == StepKind.RETRIABLE:
                found.append(Violation(f"{where}.kind", "after_pivot",
                                       "a retriable step must come after a pivot step (a "
                                       "step of kind pivot with a lower order)", step.kind))
            continue
        if step is pivot:
            continue
        if step.order == pivot.order:
            found.append(Violation(f"{where}.order", "pivot_alone",
                                   f"the pivot {pivot.id!r} runs alone: no other active step "
                                   f"may share its order {pivot.order}", step.order))
        elif step.order > pivot.order and step.kind != StepKind.RETRIABLE:
            found.append(Violation(f"{where}.kind", "after_pivot",
                                   f"steps after the pivot {pivot.id!r} must be retriable: "
                                   "once the pivot succeeds the saga only goes forward",
                                   step.kind or StepKind.COMPENSATABLE.value))
        elif step.order < pivot.order and step.kind == StepKind.RETRIABLE:
            found.append(Violation(f"{where}.kind", "after_pivot",
                                   f"a retriable step must come after the pivot {pivot.id!r} "
                                   f"(order above {pivot.order})", step.kind))
    return found


def _waiting_alone(active: list[tuple[int, StepDefinition]]) -> list[Violation]:
    """A callback, wait or child step runs alone in its group (its order is its own)."""
    orders = Counter(step.order for _, step in active)
    return [Violation(f"steps[{index}].order", "waiting_alone",
                      f"a {'child' if step.saga is not None else step.kind} step runs alone: "
                      f"no other active step may share its order {step.order}", step.order)
            for index, step in active
            if (step.kind in {k.value for k in WAITING_KINDS} or step.saga is not None)
            and orders[step.order] > 1]


def _callback_compensation(where: str, step: StepDefinition,
                           pivot: StepDefinition | None) -> list[Violation]:
    """Before the pivot a callback with an action is undone like any step, so it needs a
    compensation; after it, it is never undone, so it takes none."""
    after = pivot is not None and step.order is not None and pivot.order is not None \
        and step.order > pivot.order
    if after and step.compensation:
        return [Violation(f"{where}.compensation", "after_pivot",
                          f"a callback after the pivot {pivot.id!r} is never compensated "
                          "(the saga only goes forward): leave compensation out",
                          step.compensation)]
    if not after and step.action and not step.compensation:
        return [Violation(f"{where}.compensation", "required",
                          "a callback step with an action needs a compensation (only an "
                          "approval, with no action, or one after the pivot has none)",
                          step.compensation)]
    return []


def _mapping_references(saga: SagaDefinition) -> list[Violation]:
    """Every reference of a mapping is well formed and names an active step that has run,
    and succeeded, by the time the mapping is resolved: for a step's input, a step before it;
    for the saga's output, any step (all have succeeded when it completes)."""
    order = {step.id: step.order for step in saga.steps if step.id and step.active}
    found = []
    for index, step in enumerate(saga.steps):
        found += _reference_problems(f"steps[{index}].input", step.input, order,
                                     step.id, step.order)
        if step.until is not None:  # a timer's moment, read like an input reference
            found += [v for v in _reference_problems(f"steps[{index}]", {"until": step.until},
                                                     order, step.id, step.order)
                      if v.rule == "reference"]
    found += _reference_problems("output", saga.output, order, None, None)
    return found


def _reference_problems(prefix: str, mapping: dict[str, Any] | None,
                        order: Mapping[str | None, int | None], own_id: str | None,
                        own_order: int | None) -> list[Violation]:
    """What is wrong with the references of one mapping; own_*: the step it feeds, if any."""
    found = []
    for where, text in references(mapping or {}):
        path = f"{prefix}.{where}"
        try:
            step_id = parse_reference(text).step_id
        except MappingError as error:
            found.append(Violation(path, "reference", str(error), text))
            continue
        if step_id is None:
            continue
        if own_id is not None and step_id == own_id:
            message = "a step cannot use its own result"
        elif step_id not in order:
            message = f"no active step {step_id!r} in this saga"
        elif own_order is not None and (order[step_id] or 0) >= own_order:
            message = (f"step {step_id!r} does not run before this one (order "
                       f"{order[step_id]} is not below {own_order})")
        else:
            continue
        found.append(Violation(path, "reference", message, text))
    return found


def _unstorable_keys(path: str, value: Any) -> list[Violation]:
    """Keys of a mapping MongoDB would refuse: what a mapping resolves to is stored (an
    output in the read model), so it must be storable whatever it is given."""
    found = []
    if isinstance(value, Mapping):
        for key, child in value.items():
            where = f"{path}.{key}"
            if problem := key_problem(str(key)):
                found.append(Violation(where, "storable", f"{problem} (MongoDB refuses it)",
                                       key))
            found += _unstorable_keys(where, child)
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += _unstorable_keys(f"{path}[{index}]", child)
    return found


def _duplicates(name: str, values: Iterable[Any]) -> list[Violation]:
    values = list(values)
    counts = Counter(v for v in values if v is not None)
    return [Violation(f"steps[{index}].{name}", "unique",
                      f"{name} {value!r} is used by more than one step", value)
            for index, value in enumerate(values)
            if value is not None and counts[value] > 1 and values.index(value) != index]


def _is_known_action(value: str, actions: frozenset[str]) -> bool:
    return participant_kind(value) is not None or value in actions


def _is_duration(value: str) -> bool:
    try:
        parse_duration_ms(value)
    except ValueError:
        return False
    return True


def _charset_message() -> str:
    return ("may contain only letters, digits, '.', '_' and '-', "
            "and must start and end with a letter or digit")


__all__ = ["DefinitionInvalid", "ValidationPolicy", "Violation", "check_definition",
           "format_duration_ms", "merge_violations", "parse_definition", "parse_step",
           "read_definition", "read_step", "validate_definition"]
