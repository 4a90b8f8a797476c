"""`saga verify`'s cases from a definition, and its checks of an ended run: pure, on the
order-fulfilment example (two parallel steps, a pivot, two retriable steps)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from chalicelib.domain.lifecycle import StepKind
from chalicelib.domain.models import Step, StepDefinition
from infra.verify.checks import problems
from infra.verify.plan import Case, plan, run_budget_s
from infra.verify.report import junit, text
from infra.verify.runner import Result

EXAMPLE = Path(__file__).parents[2] / "examples" / "order-fulfilment" / "saga.json"
STEPS = [Step.of(StepDefinition.model_validate(s))
         for s in json.loads(EXAMPLE.read_text())["steps"]]


def _cases() -> dict[str, Case]:
    cases, skipped = plan(STEPS, retriable_max_attempts=5, task_timeout_margin_s=5)
    assert skipped == []
    return {case.name: case for case in cases}


def test_every_failure_point_of_the_example_is_a_case() -> None:
    cases = _cases()
    assert sorted(cases) == sorted([
        "create-order fails for good", "create-order times out",
        "reserve-stock fails for good", "reserve-stock times out",
        "authorize-payment fails for good", "authorize-payment times out",
        "capture-payment fails for good", "capture-payment times out",
        "ship fails until it parks, then is retried forward",
        "notify fails until it parks, then is retried forward",
        # Under the pivot failing for good (after it nothing is compensated); the pivot's own
        # compensation runs only when its outcome is unknown: its timeout case.
        *[f"{s}'s compensation fails once, then recovers" for s in
          ("create-order", "reserve-stock", "authorize-payment")],
        *[f"{s}'s compensation fails for good, then is retried" for s in
          ("create-order", "reserve-stock", "authorize-payment")]])


def test_each_case_expects_what_the_lifecycle_says() -> None:
    cases = _cases()
    first = cases["create-order fails for good"]
    assert (first.expected, first.undone) == ("FAILED", frozenset())
    # A group is undone whatever failed in it; the failed step itself did nothing, and its
    # sibling is undone if it ran (it may not have started when the step failed).
    sibling = cases["reserve-stock fails for good"]
    assert (sibling.expected, sibling.undone, sibling.maybe_undone) == (
        "COMPENSATED", frozenset({"create-order"}), frozenset({"authorize-payment"}))
    # A timed-out step may have done its work: it is undone at most once (exactly once if it
    # took effect, which only the runtime knows).
    timed_out = cases["reserve-stock times out"]
    assert (timed_out.undone, timed_out.maybe_undone) == (
        frozenset({"create-order"}), frozenset({"reserve-stock", "authorize-payment"}))
    assert (cases["create-order times out"].expected,
            cases["create-order times out"].instead) == ("COMPENSATED", "FAILED")
    timeout = cases["reserve-stock times out"].faults[0]
    assert timeout["delay"] == "16s" and timeout["times"] == 0
    parked = cases["ship fails until it parks, then is retried forward"]
    assert (parked.expected, parked.then, parked.undone) == (
        "PARKED", (("retry-forward", "COMPLETED"),), frozenset())
    assert parked.faults[0]["times"] == 5
    failing = cases["reserve-stock's compensation fails for good, then is retried"]
    assert (failing.expected, failing.then) == ("COMPENSATION_FAILED",
                                                (("retry-compensation", "COMPENSATED"),))
    assert failing.faults == [
        {"step_id": "capture-payment", "phase": "action", "error": "VerifyInjected",
         "times": 1, "permanent": True},
        {"step_id": "reserve-stock", "phase": "compensation", "error": "VerifyInjected",
         "times": 4}]
    assert failing.undone == frozenset({"create-order", "reserve-stock", "authorize-payment"})


def test_a_saga_without_a_pivot_is_compensated_by_an_operator_to_reach_its_undos() -> None:
    flat = [s.model_copy(update={"kind": StepKind.COMPENSATABLE,
                                 "compensation": s.compensation or f"undo-{s.id}",
                                 "max_retries": s.max_retries or 0}) for s in STEPS]
    cases, _ = plan(flat, retriable_max_attempts=5, task_timeout_margin_s=5)
    once = next(c for c in cases if c.name == "notify's compensation fails once, then recovers")
    assert (once.expected, once.then) == ("COMPLETED", (("compensate", "COMPENSATED"),))
    assert once.undone == frozenset(s.id for s in STEPS)


def _execution(status: str, undone: dict[str, str]) -> dict[str, Any]:
    """undone: step id -> when its compensation succeeded."""
    return {"status": status, "steps": [
        {"step_id": s.id, "compensated_at": undone.get(s.id), "attempts": [
            {"phase": "compensation", "outcome": "succeeded"}] if s.id in undone else []}
        for s in STEPS]}


def test_the_checks_find_a_missing_a_double_an_extra_and_an_out_of_order_undo() -> None:
    case = _cases()["capture-payment fails for good"]
    good = _execution("COMPENSATED", {"authorize-payment": "2026-01-01T00:00:02Z",
                                      "reserve-stock": "2026-01-01T00:00:02Z",
                                      "create-order": "2026-01-01T00:00:03Z"})
    assert problems(case, good, "COMPENSATED") == []
    missing = _execution("COMPENSATED", {"reserve-stock": "2026-01-01T00:00:02Z",
                                         "create-order": "2026-01-01T00:00:03Z"})
    assert problems(case, missing, "COMPENSATED") == [
        "authorize-payment was compensated 0 times, expected once"]
    extra = _execution("COMPENSATED", {"authorize-payment": "2026-01-01T00:00:02Z",
                                       "reserve-stock": "2026-01-01T00:00:02Z",
                                       "create-order": "2026-01-01T00:00:03Z",
                                       "capture-payment": "2026-01-01T00:00:01Z"})
    assert problems(case, extra, "COMPENSATED") == [
        "capture-payment was compensated, and must not be"]
    backwards = _execution("COMPENSATED", {"authorize-payment": "2026-01-01T00:00:02Z",
                                           "reserve-stock": "2026-01-01T00:00:04Z",
                                           "create-order": "2026-01-01T00:00:03Z"})
    assert problems(case, backwards, "COMPENSATED") == [
        "groups were not undone in reverse order"]
    twice = good["steps"][0]["attempts"] * 2
    good["steps"][0]["attempts"] = twice
    assert problems(case, good, "FAILED") == [
        "ended COMPENSATED, expected FAILED",
        "create-order was compensated 2 times, expected once"]


def test_the_report_is_a_table_and_junit_xml() -> None:
    case = _cases()["create-order fails for good"]
    results = [Result(case, "e-1", "FAILED", [], 1.0),
               Result(case, "e-2", "COMPENSATED", ["ended COMPENSATED, expected FAILED"], 2.0)]
    assert "1 of 2 cases passed" in text("order-fulfilment", results, [])
    xml = junit("order-fulfilment", results)
    assert 'failures="1"' in xml and "execution e-2" in xml and 'tests="2"' in xml


def test_a_runs_budget_covers_every_attempt_timing_out() -> None:
    assert run_budget_s(STEPS, 5) > sum(3 * 25 for _ in STEPS)


BRANCHES = Path(__file__).parents[2] / "examples" / "order-branches" / "saga.json"


def _branch_cases() -> dict[str, Case]:
    steps = [Step.of(StepDefinition.model_validate(s))
             for s in json.loads(BRANCHES.read_text())["steps"]]
    cases, skipped = plan(steps, retriable_max_attempts=5, task_timeout_margin_s=5)
    assert skipped == []
    return {case.name: case for case in cases}


def _item(step_id: str, *, acted: bool, undone: int) -> dict[str, Any]:
    attempts = ([{"phase": "action", "outcome": "succeeded"}] if acted else []) + [
        {"phase": "compensation", "outcome": "succeeded"}] * undone
    return {"step_id": step_id, "status": "COMPENSATED" if undone else "FAILED",
            "attempts": attempts, "compensated_at": "2026-01-01T00:00:00+00:00"
            if undone else None}


def test_a_fanouts_faults_are_aimed_at_its_first_item() -> None:
    cases = _branch_cases()
    failing = cases["reserve-lines[0] fails for good"]
    assert failing.faults == [{"step_id": "reserve-lines[0]", "phase": "action",
                               "error": "VerifyInjected", "times": 1, "permanent": True}]
    assert failing.undone == {"create-order", "ship"}
    assert "reserve-lines" in failing.maybe_undone
    assert "reserve-lines[0]'s compensation fails for good, then is retried" in cases


def test_each_item_that_acted_is_undone_once_and_a_skipped_step_never() -> None:
    case = _branch_cases()["reserve-lines[0] fails for good"]
    run = {"status": "COMPENSATED", "steps": [
        {"step_id": "create-order", "attempts": [{"phase": "compensation",
                                                  "outcome": "succeeded"}],
         "compensated_at": "2026-01-01T00:00:02+00:00"},
        {"step_id": "ship", "status": "SKIPPED", "attempts": []},
        {"step_id": "reserve-lines", "status": "FAILED", "fanout": {"items": 3},
         "attempts": []},
        _item("reserve-lines[0]", acted=False, undone=0),
        _item("reserve-lines[1]", acted=True, undone=1),
        _item("reserve-lines[2]", acted=True, undone=0)]}
    assert problems(case, run, "COMPENSATED") == [
        "reserve-lines[2] succeeded and was not compensated"]
    run["steps"][-1] = _item("reserve-lines[2]", acted=True, undone=2)
    assert problems(case, run, "COMPENSATED") == [
        "reserve-lines[2] was compensated 2 times, at most once"]
    # The shipment's own failure case under a digital order tested nothing: it says so.
    ship = _branch_cases()["ship fails for good"]
    run["steps"][-1] = _item("reserve-lines[2]", acted=True, undone=1)
    assert any("ship was skipped by its condition" in p
               for p in problems(ship, run, "COMPENSATED"))
