"""The step Lambdas by name: which one (family) hosts an action, and what each is called.

Apart from the action registry (chalicelib/roots/step_registry.py), which imports the
participants' clients: the API names these functions as it loads, and its engine routes steps
to them, without importing any of that.
"""

from __future__ import annotations

from collections.abc import Mapping

from chalicelib.demo import FAMILIES as BUILTIN_FAMILIES
from chalicelib.domain.action_refs import participant_kind
from chalicelib.domain.step_context import PermanentError

# Participants' actions run in these Lambdas; built-in ones in step_<family>.
PARTICIPANT_FAMILIES = ("lambda", "http")
# The one list of step Lambdas: the built-in action families (chalicelib.demo), then
# the participants' ("lambda:NAME" and "http(s)://..."). app.py declares a function for each.
FAMILIES: tuple[str, ...] = (*BUILTIN_FAMILIES, *PARTICIPANT_FAMILIES)
# The Lambda that records the ends no step reports (chalicelib.roots.step_entry).
RECORDER_FUNCTION = "saga_recorder"


def family_of(action: str, builtin_families: Mapping[str, str]) -> str:
    kind = participant_kind(action)
    if kind is not None:
        return kind
    try:
        return builtin_families[action]
    except KeyError:
        raise PermanentError(f"unknown action {action!r}") from None


def function_name(family: str) -> str:
    """The Chalice function name of a family's step Lambda."""
    return f"step_{family}"
