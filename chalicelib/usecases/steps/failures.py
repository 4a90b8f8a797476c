"""The errors a step attempt ends with that the state machines catch by name.

Lambda reports an error by its class name, so each name the machines retry or catch
(chalicelib.domain.lifecycle) is a class here.
"""

from __future__ import annotations

from chalicelib.domain.lifecycle import OUTCOME_UNKNOWN, OUTCOME_UNKNOWN_FINAL, STEP_SKIPPED
from chalicelib.domain.step_context import OutcomeUnknown, PermanentError


class StepAborted(PermanentError):
    """The step must not run: its execution moved on (compensated, resolved) meanwhile."""


def injected_error(name: str, message: str) -> Exception:
    # An injected fault is reported under the error name it asks for.
    return type(name, (Exception,), {})(message)


_OutcomeUnknownRetried = type(OUTCOME_UNKNOWN, (OutcomeUnknown,), {})
_OutcomeUnknownFinal = type(OUTCOME_UNKNOWN_FINAL, (OutcomeUnknown,), {})


def outcome_unknown(message: str, *, final: bool) -> OutcomeUnknown:
    """An action whose outcome is unknown, under the name its machine retries (or not)."""
    return (_OutcomeUnknownFinal if final else _OutcomeUnknownRetried)(message)


_StepSkipped = type(STEP_SKIPPED, (Exception,), {})


def step_skipped(step_id: str) -> Exception:
    """A waiting step (its Task is a callback's or a timer's) whose condition was false: the
    machine catches it by name and moves on; the skip is already recorded."""
    return _StepSkipped(f"step {step_id} was skipped: its condition is false")
