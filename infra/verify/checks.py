"""What `saga verify` checks of an ended run, from the execution as the API reports it. Pure.

The rules: the run ended as the case says; every step the case undoes was compensated exactly
once and no other step at all (nothing past the pivot, nothing that failed for good); groups
were undone in reverse order, each group's undos before any of an earlier group's."""

from __future__ import annotations

from datetime import datetime
from itertools import pairwise
from typing import Any

from infra.verify.plan import Case


def problems(case: Case, execution: dict[str, Any], expected_status: str) -> list[str]:
    found = []
    status = execution.get("status")
    if status != expected_status and not (status == case.instead and not case.then):
        found.append(f"ended {status}, expected {expected_status}")
    steps = {step["step_id"]: step for step in execution.get("steps", [])}
    undone_times: dict[str, datetime] = {}
    for step_id, step in steps.items():
        undos = [a for a in step.get("attempts", [])
                 if a.get("phase") == "compensation" and a.get("outcome") == "succeeded"]
        if step_id in case.undone:
            if len(undos) != 1:
                found.append(f"{step_id} was compensated {len(undos)} times, expected once")
            elif step.get("compensated_at"):
                undone_times[step_id] = datetime.fromisoformat(
                    str(step["compensated_at"]).replace("Z", "+00:00"))
        elif step_id in case.maybe_undone:
            if len(undos) > 1:
                found.append(f"{step_id} was compensated {len(undos)} times, at most once")
            elif undos and step.get("compensated_at"):
                undone_times[step_id] = datetime.fromisoformat(
                    str(step["compensated_at"]).replace("Z", "+00:00"))
        elif undos:
            found.append(f"{step_id} was compensated, and must not be")
    found += _order_problems(case, undone_times)
    return found


def _order_problems(case: Case, undone: dict[str, datetime]) -> list[str]:
    """A later group's undos all end before an earlier group's first one."""
    found = []
    groups = [[undone[s] for s in group if s in undone] for group in case.groups]
    groups = [times for times in groups if times]
    for later, earlier in pairwise(reversed(groups)):
        if max(later) > min(earlier):
            found.append("groups were not undone in reverse order")
    return found
