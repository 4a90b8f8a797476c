"""What `saga verify` checks of an ended run, from the execution as the API reports it. Pure.

The rules: the run ended as the case says; every step the case undoes was compensated exactly
once and no other step at all (nothing past the pivot, nothing that failed for good, nothing
skipped by its condition); groups were undone in reverse order, each group's undos before any
of an earlier group's. A fan-out is undone through its items: each item that succeeded
exactly once, no other item at all, and only those of a step the case undoes."""

from __future__ import annotations

from datetime import datetime
from itertools import pairwise
from typing import Any

from chalicelib.domain.fanout import split_run_id
from chalicelib.domain.lifecycle import ExecutionStatus, Outcome, Phase, StepStatus
from infra.verify.plan import Case


def problems(case: Case, execution: dict[str, Any], expected_status: str) -> list[str]:
    found = []
    status = execution.get("status")
    if status != expected_status and not (status == case.instead and not case.then):
        found.append(f"ended {status}, expected {expected_status}")
    steps = {step["step_id"]: step for step in execution.get("steps", [])}
    for fault in case.faults:
        aimed = steps.get(split_run_id(fault["step_id"])[0]) or {}
        if aimed.get("status") == StepStatus.SKIPPED:
            found.append(f"{aimed['step_id']} was skipped by its condition under this input, so "
                         "the case tested nothing: verify with an input under which it runs")
    undone_times: dict[str, datetime] = {}
    for step_id, step in steps.items():
        undos = [a for a in step.get("attempts", [])
                 if a.get("phase") == Phase.COMPENSATION and a.get("outcome") == Outcome.SUCCEEDED]
        own_id, index = split_run_id(step_id)
        if index is not None:
            found += _item_problems(case, own_id, step, undos, undone_times,
                                    compensated=status == ExecutionStatus.COMPENSATED)
            continue
        if step.get("fanout") is not None or step.get("status") == StepStatus.SKIPPED:
            if step.get("status") == StepStatus.SKIPPED and undos:
                found.append(f"{step_id} was skipped by its condition, and compensated")
            continue  # a fan-out is undone through its items; a skipped step never
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


def _item_problems(case: Case, own_id: str, item: dict[str, Any], undos: list[Any],
                   undone_times: dict[str, datetime], *, compensated: bool) -> list[str]:
    """An item of a fan-out the case undoes: compensated exactly once if it succeeded (at most
    once if its outcome was unknown), never if it did nothing; its step's undo time is its
    items' last."""
    step_id = item["step_id"]
    if own_id not in case.undone | case.maybe_undone:
        return [f"{step_id} was compensated, and must not be"] if undos else []
    if len(undos) > 1:
        return [f"{step_id} was compensated {len(undos)} times, at most once"]
    acted = any(a.get("phase") == Phase.ACTION and a.get("outcome") == Outcome.SUCCEEDED
                for a in item.get("attempts", []))
    if acted and not undos and (own_id in case.undone or compensated):
        return [f"{step_id} succeeded and was not compensated"]
    if undos and item.get("compensated_at"):
        at = datetime.fromisoformat(str(item["compensated_at"]).replace("Z", "+00:00"))
        undone_times[own_id] = max(undone_times.get(own_id, at), at)
    return []


def _order_problems(case: Case, undone: dict[str, datetime]) -> list[str]:
    """A later group's undos all end before an earlier group's first one."""
    found = []
    groups = [[undone[s] for s in group if s in undone] for group in case.groups]
    groups = [times for times in groups if times]
    for later, earlier in pairwise(reversed(groups)):
        if max(later) > min(earlier):
            found.append("groups were not undone in reverse order")
    return found
