"""What a run of a saga's machine is started with: the execution's id, and where a retry
forward enters the forward machine again."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from chalicelib.adapters.stepfunctions.compiler import forward_name, groups_of
from chalicelib.domain.models import Step


def resume_state(steps: Sequence[Step], step_id: str) -> str:
    """Where a retry forward starts the forward machine again: the state of the group the
    step runs in (succeeded siblings answer as duplicates)."""
    group = next(g for g in groups_of(steps) if any(s.id == step_id for s in g))
    return forward_name(group)


def execution_input(execution_id: str, resume_at: str = "",
                    parent: dict[str, str] | None = None) -> dict[str, Any]:
    """The whole input of an execution: ids only (payloads are capped at 256 KB).

    "error" is there from the start because every Task's Parameters read "$.error", and
    "resume_at" because a pivot saga's machine starts with a Choice on it (empty: from the
    start; a retry forward names the parked group's state, see resume_state). A child run
    also carries its parent run's reference; no state reads it, so a machine runs the same
    with or without one."""
    run_input: dict[str, Any] = {"execution_id": execution_id, "error": None,
                                 "resume_at": resume_at}
    if parent is not None:
        run_input["parent"] = parent
    return run_input
