"""The deployed handlers of the step Lambdas and the recorder.

Chalice names every function's handler `app.<name>`, and importing app.py loads the API's
routing and edge (app.py's own `app.<name>` are stand-ins that import this module when called:
chalicelib/roots/step_functions.py). The packaged template points these functions here
instead (see infra/deploy/template.py), so a step's cold start imports only the step runtime.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chalicelib.roots.step_handler import (
    handle_child,
    handle_deadline,
    handle_fanout,
    handle_outcome,
    handle_step,
    handle_timer,
)
from chalicelib.roots.step_names import FAMILIES, RECORDER_FUNCTION, function_name

StepHandler = Callable[[dict[str, Any], Any], dict[str, Any]]


def _for_family(family: str) -> StepHandler:
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return handle_step(event, context, family=family)

    handler.__name__ = handler.__qualname__ = function_name(family)
    return handler


def saga_recorder(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Records the ends no step reports (FAILED with nothing to undo, COMPENSATION_FAILED),
    and runs the steps that call nobody: a timer (set, fired) and an approval (a callback
    with no action, which only waits), a fan-out's own Tasks (start, gather and undo its
    items) and a child step's (make and settle its child, undo it), and decides what a saga's
    deadline that passed makes of its execution."""
    if "child" in event:
        return handle_child(event, context)
    if "timer" in event:
        return handle_timer(event, context)
    if "fanout" in event:
        return handle_fanout(event, context)
    if "deadline" in event:
        return handle_deadline(event, context)
    if "step_id" in event:
        return handle_step(event, context, family="recorder")
    return handle_outcome(event, context)


# Chalice function name -> handler: the step Lambdas' (step_payment, ..., step_http), then the
# recorder's.
STEP_HANDLERS: dict[str, StepHandler] = {function_name(family): _for_family(family)
                                         for family in FAMILIES}
HANDLERS: dict[str, StepHandler] = {**STEP_HANDLERS, RECORDER_FUNCTION: saga_recorder}
# Lambda finds a handler by its module attribute (chalicelib.roots.step_entry.step_payment).
globals().update(STEP_HANDLERS)
