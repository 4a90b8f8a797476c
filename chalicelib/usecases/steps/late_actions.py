"""The late-action rule: an action may still be at work after its Task timed out.

A compensation waits for its action's last deadline (plus a margin) before it undoes it; a
built-in action that outlived its step's timeout is rolled back; a participant's answer given
after its deadline counts as an unknown outcome; and an action that succeeded after its step
was undone (or its execution ended) is compensated again with its own result.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from chalicelib.domain.action_refs import participant_kind
from chalicelib.domain.lifecycle import Phase
from chalicelib.domain.models import Step
from chalicelib.domain.step_context import ActionFn, OutcomeUnknown, StepContext
from chalicelib.domain.step_runs import LockedStep
from chalicelib.domain.storable import NotStorable, check_result
from chalicelib.durations import parse_duration_ms

logger = logging.getLogger(__name__)


def step_timeout(step: Step) -> timedelta:
    """How long one call of the step may take (a callback's call, not its whole wait)."""
    return timedelta(milliseconds=parse_duration_ms(step.call_timeout_text))


def action_in_flight_s(run: LockedStep, now: datetime, margin_s: int) -> float:
    """How long a compensation must wait: until its action's last deadline plus the margin,
    when an attempt of it may still be at work (bounded by one margin past it)."""
    if run.action_deadline is None:
        return 0.0
    not_before = run.action_deadline + timedelta(seconds=margin_s)
    return max(0.0, (not_before - now).total_seconds())


def outlived_timeout(step: Step, elapsed_s: float) -> bool:
    """Whether an attempt that has run `elapsed_s` seconds is past its step's timeout."""
    return elapsed_s > parse_duration_ms(step.call_timeout_text) / 1000


def check_answer(step: Step, deadline: datetime, result: Any, *,
                 clock: Callable[[], datetime], max_result_bytes: int) -> None:
    """OutcomeUnknown for an action's answer that cannot count as done: one given after its
    deadline (kept, when storable, for its compensation), or one that cannot be stored."""
    try:
        check_result(result, max_bytes=max_result_bytes)
    except NotStorable as error:
        raise OutcomeUnknown(f"step {step.id}'s participant answered what cannot be "
                             f"recorded: {error.message}") from None
    if clock() > deadline:
        raise OutcomeUnknown(f"step {step.id}'s participant answered after its deadline "
                             f"({step.call_timeout_text}); its outcome is unknown",
                             result=result)


def undo_late_success(execution_id: str, step: Step, context: StepContext,
                      result: dict[str, Any], *, resolve_action: Callable[[str], ActionFn],
                      clock: Callable[[], datetime]) -> None:
    """An action that succeeded after its step was compensated (or its execution ended) is
    compensated again, with its own result. Logged, not recorded: nothing follows an
    execution's end event, and the step's record already says it was undone."""
    target = step.target(Phase.COMPENSATION)
    if target is None or participant_kind(target) is None:
        logger.error("step %s of %s succeeded late and has no participant compensation "
                     "to undo it with: %s", step.id, execution_id, result)
        return
    late = replace(context, phase=Phase.COMPENSATION.value, action_result=result,
                   action_error=None, deadline=clock() + step_timeout(step),
                   reason={"step_id": step.id, "type": "LateAction",
                           "message": "the action succeeded after its step was undone"})
    try:
        resolve_action(target)(late)
        logger.warning("step %s of %s succeeded after it was undone; compensated with its "
                       "result", step.id, execution_id)
    except Exception:
        logger.exception("step %s of %s succeeded after it was undone, and compensating it "
                         "failed: a person must look (result %s)", step.id, execution_id,
                         result)
