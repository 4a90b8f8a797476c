"""The step Lambdas and the recorder as app.py declares them: by name, each a stand-in that
loads the step runtime (chalicelib.roots.step_entry) on its first call.

Chalice packages only the functions the app declares, so app.py names every one; the packaged
template then points them at step_entry, and the API itself never calls one. Importing the
runtime only when a stand-in is called keeps it out of the API's cold start.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chalicelib.roots.step_names import FAMILIES, RECORDER_FUNCTION, function_name

StepHandler = Callable[[dict[str, Any], Any], dict[str, Any]]
# Chalice function names: the step Lambdas' (step_payment, ..., step_http), then the recorder's.
FUNCTION_NAMES: tuple[str, ...] = (*(function_name(family) for family in FAMILIES),
                                   RECORDER_FUNCTION)


def deferred(name: str) -> StepHandler:
    """The handler of function `name`, its module imported when first called."""

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        from chalicelib.roots.step_entry import HANDLERS

        return HANDLERS[name](event, context)

    handler.__name__ = handler.__qualname__ = name
    return handler
