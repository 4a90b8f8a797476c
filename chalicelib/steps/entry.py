"""The deployed handlers of the step Lambdas and the recorder.

Chalice names every function's handler `app.<name>`, and importing app.py pulls in the whole
API (routing, MongoDB, Kafka). The packaged template points these functions here instead
(see infra/deploy/template.py), so a step's cold start imports only the step runtime.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chalicelib.steps.actions import FAMILIES as BUILTIN_FAMILIES
from chalicelib.steps.handler import handle_outcome, handle_step
from chalicelib.steps.registry import PARTICIPANT_FAMILIES

StepHandler = Callable[[dict[str, Any], Any], dict[str, Any]]
FAMILIES = (*BUILTIN_FAMILIES, *PARTICIPANT_FAMILIES)


def _for_family(family: str) -> StepHandler:
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return handle_step(event, context, family=family)

    handler.__name__ = handler.__qualname__ = f"step_{family}"
    return handler


step_payment = _for_family("payment")
step_order = _for_family("order")
step_inventory = _for_family("inventory")
step_shipping = _for_family("shipping")
step_notification = _for_family("notification")
step_user = _for_family("user")
step_lambda = _for_family("lambda")  # actions "lambda:NAME": a participant's own Lambda
step_http = _for_family("http")  # actions "http(s)://...": a participant's HTTP endpoint


def saga_recorder(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Records the ends no step reports: FAILED (nothing to undo), COMPENSATION_FAILED."""
    return handle_outcome(event, context)


HANDLERS: dict[str, StepHandler] = {
    **{f"step_{family}": globals()[f"step_{family}"] for family in FAMILIES},
    "saga_recorder": saga_recorder,
}
