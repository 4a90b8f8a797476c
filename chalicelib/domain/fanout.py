"""Fan-out steps: one step run once per item of a list known only at run time. Pure.

Each item has a run of its own in the write model, named `<step id>[<index>]`: its attempts,
its result, its idempotency key, its compensation (with its own action's result) and its
events are an ordinary step's, so every rule of a line of steps holds for items too. The
fan-out's own run says how many items it has and, once they have ended, holds their results
in item order as `{"items": [...]}` (a result stays a JSON object).

An item that fails for good does not fail the step while at most `tolerated_failures` items
have (a count, or a percentage of the items rounded down, as Step Functions'
ToleratedFailurePercentage); past that, no new item starts, the step fails, and every item
that may have done its work is compensated before the earlier steps are.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from chalicelib.domain.lifecycle import StepStatus
from chalicelib.domain.storable import ENVELOPE_OVERHEAD_BYTES, KAFKA_MAX_REQUEST_BYTES

_ITEM_RUN = re.compile(r"(?P<step>.+)\[(?P<index>\d+)\]")
_PERCENT = re.compile(r"(\d{1,3})%")

# Items whose action may have taken effect: undone when the saga compensates. A PENDING item
# never started (its fan-out stopped starting new ones), a FAILED one did nothing.
_MAY_HAVE_ACTED = frozenset({StepStatus.SUCCEEDED, StepStatus.OUTCOME_UNKNOWN,
                             StepStatus.RUNNING, StepStatus.COMPENSATING,
                             StepStatus.COMPENSATION_FAILED})
# An item failed for good: counted against the tolerance (an unknown outcome too: it is
# compensated, but it did not succeed).
_FAILED = frozenset({StepStatus.FAILED, StepStatus.OUTCOME_UNKNOWN})


def item_run_id(step_id: str, index: int) -> str:
    return f"{step_id}[{index}]"


def split_run_id(run_id: str) -> tuple[str, int | None]:
    """(the step's id, the item's index or None): step ids never hold brackets."""
    match = _ITEM_RUN.fullmatch(run_id)
    return (match["step"], int(match["index"])) if match else (run_id, None)


def tolerated_count(tolerated: int | str | None, items: int) -> int:
    """How many of `items` may fail for good before the fan-out does."""
    if tolerated is None:
        return 0
    if isinstance(tolerated, str):
        match = _PERCENT.fullmatch(tolerated)
        return items * int(match.group(1)) // 100 if match else 0
    return tolerated


def item_result_limit(max_result_bytes: int, max_items: int) -> int:
    """The most an item's result may take: saga.max_result_bytes, but never more than an even
    share of one event, so the fan-out's {"items": [...]} fits in its saga.step.succeeded."""
    share = (KAFKA_MAX_REQUEST_BYTES - ENVELOPE_OVERHEAD_BYTES) // max_items - 16
    return max(1, min(max_result_bytes, share))


@dataclass(frozen=True)
class FanOutPlan:
    """What a fan-out's run records as its items start: {"items", "max_concurrency",
    "tolerated"} (tolerated: the count its tolerated_failures comes to)."""

    items: int
    max_concurrency: int
    tolerated: int

    def record(self) -> dict[str, Any]:
        return {"items": self.items, "max_concurrency": self.max_concurrency,
                "tolerated": self.tolerated}


def list_problem(step_id: str, reference: str, value: Any, *, max_items: int) -> str | None:
    """Why `value` (what for_each names) cannot be fanned out over, if it cannot."""
    if not isinstance(value, list):
        kind = {dict: "an object", str: "a string", bool: "a boolean", int: "a number",
                float: "a number", type(None): "null"}.get(type(value), type(value).__name__)
        return f"step {step_id}'s for_each {reference} is {kind}, not a list"
    if len(value) > max_items:
        return (f"step {step_id}'s for_each {reference} has {len(value)} items; a fan-out "
                f"takes at most {max_items} (config saga.max_fanout_items)")
    return None


@dataclass(frozen=True)
class Tally:
    """Where a fan-out's items stand, from their runs' statuses."""

    succeeded: int
    failed: int
    never_started: int
    total: int

    @classmethod
    def of(cls, statuses: Iterable[StepStatus]) -> Tally:
        listed = list(statuses)
        return cls(succeeded=sum(s is StepStatus.SUCCEEDED for s in listed),
                   failed=sum(s in _FAILED for s in listed),
                   never_started=sum(s is StepStatus.PENDING for s in listed),
                   total=len(listed))

    def over(self, tolerated: int) -> bool:
        """More items failed for good than tolerated: no new item starts, the step fails."""
        return self.failed > tolerated

    def complete(self, tolerated: int) -> bool:
        """Every item ended, within the tolerance: the step succeeds."""
        return not self.over(tolerated) and self.never_started == 0 and \
            self.succeeded + self.failed == self.total


def gathered(results: Sequence[Mapping[str, Any] | None]) -> dict[str, Any]:
    """The fan-out's result: each item's result in item order (None for an item that failed
    within the tolerance)."""
    return {"items": [None if result is None else dict(result) for result in results]}


def to_undo(statuses: Mapping[int, StepStatus], attempts: Mapping[int, int], *,
            skip_undone: bool) -> list[int]:
    """The items a compensation sends undoes to, in item order: those whose action may have
    taken effect (and, in a forward run's undo, a PENDING one with an attempt admitted, whose
    call may still be out; a compensation-only run leaves never-done items as they are)."""
    return sorted(index for index, status in statuses.items()
                  if status in _MAY_HAVE_ACTED
                  or (not skip_undone and status is StepStatus.PENDING and attempts.get(index)))
