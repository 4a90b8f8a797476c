"""Validation of the shapes beyond a line of steps: conditions (`when`) and fan-outs
(`for_each`). Pure; chalicelib.domain.validation gathers these with the other invariants, so
every violation of a definition is told at once, each naming its step.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from chalicelib.domain.conditions import ConditionError, parse_condition
from chalicelib.domain.lifecycle import StepKind
from chalicelib.domain.mapping import MappingError, parse_reference, references
from chalicelib.domain.models import SagaDefinition, StepDefinition

# An item's run is "<step id>[<index>]" in step_runs.step_id (VARCHAR(100)), so a fan-out's
# own id leaves room for the widest index.
MAX_FANOUT_STEP_ID = 90
_PERCENT = re.compile(r"(\d{1,3})%")
# Kinds that may fan out: a pivot is one decision, a waiting step waits once, and a retriable
# step's retry forward resumes a whole step, not its items.
FANOUT_KINDS = frozenset({StepKind.COMPENSATABLE})


@dataclass(frozen=True)
class BranchLimits:
    """What the configuration bounds (saga.max_fanout_items, saga.max_fanout_concurrency)."""

    max_items: int = 100
    max_concurrency: int = 40


@dataclass(frozen=True)
class Problem:
    """A violation before it is one (validation.Violation is built by the caller)."""

    field: str
    rule: str
    message: str
    value: Any = None


def branch_problems(saga: SagaDefinition, limits: BranchLimits) -> list[Problem]:
    order = {step.id: step.order for step in saga.steps if step.id and step.active}
    shared = Counter(step.order for step in saga.steps if step.active)
    found: list[Problem] = _item_reference_problems(saga)
    for index, step in enumerate(saga.steps):
        prefix = f"steps[{index}]."
        name = f"step {step.id!r}" if step.id else f"steps[{index}]"
        if step.when is not None:
            found += _condition_problems(prefix, name, step, order)
        if step.for_each is not None:
            found += _fanout_problems(prefix, name, step, order, limits,
                                      shares_order=step.active and shared[step.order] > 1)
        else:
            for field in ("max_concurrency", "tolerated_failures"):
                if getattr(step, field) is not None:
                    found.append(Problem(f"{prefix}{field}", "for_each",
                                         f"{name}: only a fan-out step (with for_each) takes "
                                         f"{field}", getattr(step, field)))
    return found


def _item_reference_problems(saga: SagaDefinition) -> list[Problem]:
    """$.item is the element a fan-out's item works on: only a fan-out step's input has it."""
    found = []
    for index, step in enumerate(saga.steps):
        if step.for_each is not None:
            continue
        name = f"step {step.id!r}" if step.id else f"steps[{index}]"
        found += [Problem(f"steps[{index}].input.{where}", "reference",
                          f"{name}: {text}: only a fan-out step (with for_each) has an item",
                          text)
                  for where, text in references(step.input or {}) if _is_item(text)]
    found += [Problem(f"output.{where}", "reference",
                      f"{text}: the saga's output has no item (only a fan-out step's input "
                      "does)", text)
              for where, text in references(saga.output or {}) if _is_item(text)]
    return found


def _is_item(text: str) -> bool:
    return text == "$.item" or text.startswith(("$.item.", "$.item["))


def _condition_problems(prefix: str, name: str, step: StepDefinition,
                        order: Mapping[str | None, int | None]) -> list[Problem]:
    path = f"{prefix}when"
    if step.kind == StepKind.PIVOT:
        return [Problem(path, "pivot", f"{name} is the pivot, the saga's go/no-go point: it "
                        "always runs, so it cannot carry when", step.when)]
    try:
        condition = parse_condition(step.when or "")
    except ConditionError as error:
        return [Problem(path, "condition", f"{name}: {error}", step.when)]
    return [Problem(path, "reference", f"{name}: {message}", text)
            for text in condition.references()
            if (message := _reference_problem(text, step, order))]


def _fanout_problems(prefix: str, name: str, step: StepDefinition,
                     order: Mapping[str | None, int | None], limits: BranchLimits, *,
                     shares_order: bool) -> list[Problem]:
    found: list[Problem] = []
    path = f"{prefix}for_each"
    kind = StepKind(step.kind) if step.kind in {k.value for k in StepKind} else None
    if kind is StepKind.PIVOT:
        found.append(Problem(path, "pivot", f"{name} is the pivot, the saga's one go/no-go "
                             "step: it cannot fan out", step.for_each))
    elif kind is not None and kind is not StepKind.COMPENSATABLE:
        found.append(Problem(path, "kind", f"{name}: a {kind.value} step cannot fan out "
                             "(only a compensatable one does)", step.for_each))
    found += _list_reference_problems(path, name, step, order)
    if shares_order:
        found.append(Problem(f"{prefix}order", "fanout_alone", f"{name} fans out: it runs "
                             f"alone, no other active step may share its order {step.order}",
                             step.order))
    if step.id and len(step.id) > MAX_FANOUT_STEP_ID:
        found.append(Problem(f"{prefix}id", "max_length", f"{name}: a fan-out step's id has "
                             f"at most {MAX_FANOUT_STEP_ID} characters (its items are named "
                             "<id>[<index>])", step.id))
    if step.max_concurrency is not None and not 1 <= step.max_concurrency \
            <= limits.max_concurrency:
        found.append(Problem(f"{prefix}max_concurrency", "range",
                             f"{name}: must be from 1 to {limits.max_concurrency} (config "
                             "saga.max_fanout_concurrency)", step.max_concurrency))
    found += _tolerance_problems(f"{prefix}tolerated_failures", name, step.tolerated_failures)
    return found


def _list_reference_problems(path: str, name: str, step: StepDefinition,
                             order: Mapping[str | None, int | None]) -> list[Problem]:
    text = step.for_each or ""
    try:
        reference = parse_reference(text)
    except MappingError as error:
        return [Problem(path, "reference", f"{name}: {error}", text)]
    if reference.root == "execution":
        return [Problem(path, "list", f"{name}: {text} is the execution's id, not a list: "
                        "fan out over a list in the input or an earlier step's result", text)]
    if reference.root == "input" and not reference.path:
        return [Problem(path, "list", f"{name}: the saga input is an object, not a list: name "
                        "the list in it, such as $.input.lines", text)]
    if reference.root == "results" and not reference.path:
        return [Problem(path, "list", f"{name}: a step's result is an object, not a list: name "
                        f"the list in it, such as {text}.items", text)]
    if message := _reference_problem(text, step, order):
        return [Problem(path, "reference", f"{name}: {message}", text)]
    return []


def _tolerance_problems(path: str, name: str, value: int | str | None) -> list[Problem]:
    if value is None:
        return []
    if isinstance(value, bool) or (isinstance(value, int) and value < 0):
        return [Problem(path, "tolerance", f"{name}: a count of at least 0, or a percentage "
                        "such as \"10%\"", value)]
    if isinstance(value, str):
        match = _PERCENT.fullmatch(value)
        if match is None or int(match.group(1)) > 100:
            return [Problem(path, "tolerance", f"{name}: a count of at least 0, or a "
                            "percentage from \"0%\" to \"100%\"", value)]
    return []


def _reference_problem(text: str, step: StepDefinition,
                       order: Mapping[str | None, int | None]) -> str | None:
    """What is wrong with a reference a step reads when its turn comes, if anything."""
    try:
        reference = parse_reference(text)
    except MappingError as error:
        return str(error)
    if reference.root == "item":
        return f"{text}: only a fan-out step's input has an item"
    step_id = reference.step_id
    if step_id is None:
        return None
    if step.id is not None and step_id == step.id:
        return f"{text}: a step cannot use its own result"
    if step_id not in order:
        return f"{text}: no active step {step_id!r} in this saga"
    if step.order is not None and (order[step_id] or 0) >= step.order:
        return (f"{text}: step {step_id!r} does not run before this one (order "
                f"{order[step_id]} is not below {step.order})")
    return None
