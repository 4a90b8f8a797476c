"""`saga verify` on a saga that waits: an approval, a partner's callback and a timer. The plan
gives each callback its cases (failed by its completion; left to time out when its wait is
short) and the timer none; the runner completes each open callback as its case says."""

from __future__ import annotations

from typing import Any

from chalicelib.domain.callbacks import APPROVED
from chalicelib.domain.models import Step, StepDefinition
from infra.api_client import ApiError
from infra.verify.plan import Case, plan, run_budget_s
from infra.verify.runner import REJECTED, Verifier

STEPS = [Step.of(StepDefinition.model_validate(step)) for step in [
    {"id": "reserve", "name": "Reserve", "description": "stock", "order": 1,
     "action": "reserve", "compensation": "release", "max_retries": 0, "timeout": "10s"},
    {"id": "approve", "name": "Approve", "description": "a manager decides", "order": 2,
     "kind": "callback", "timeout": "2m"},
    {"id": "confirm", "name": "Confirm", "description": "the provider confirms", "order": 3,
     "kind": "callback", "action": "pay", "compensation": "refund", "timeout": "48h",
     "call_timeout": "10s"},
    {"id": "cool", "name": "Cool off", "description": "a pause", "order": 4, "kind": "wait",
     "wait": "30s"},
    {"id": "notify", "name": "Notify", "description": "the customer", "order": 5,
     "action": "notify", "compensation": "unnotify", "max_retries": 0, "timeout": "10s"}]]


def _cases() -> dict[str, Case]:
    cases, skipped = plan(STEPS, retriable_max_attempts=3, task_timeout_margin_s=5)
    assert skipped == []
    return {case.name: case for case in cases}


def test_each_callback_gets_its_cases_and_the_timer_none() -> None:
    cases = _cases()
    rejected = cases["approve is rejected"]
    assert (rejected.expected, rejected.undone, rejected.faults, rejected.fail_callbacks) == (
        "COMPENSATED", frozenset({"reserve"}), [], frozenset({"approve"}))
    # A short wait is also left to time out: the approval did nothing, so only reserve.
    undecided = cases["approve is never completed: its wait times out"]
    assert (undecided.undone, undecided.unanswered) == (frozenset({"reserve"}),
                                                        frozenset({"approve"}))
    failed = cases["confirm is completed as failed"]
    assert failed.undone == frozenset({"reserve"}) and failed.fail_callbacks == {"confirm"}
    # Its call may fail for good like any step's; its 48 h wait is never left to time out.
    assert cases["confirm fails for good"].faults[0]["permanent"] is True
    assert not any(name.startswith("confirm is never") for name in cases)
    assert not any(name.startswith(("cool ", "cool's")) for name in cases)
    assert "confirm's compensation fails once, then recovers" in cases
    assert not any(name.startswith("approve's compensation") for name in cases)


def test_a_runs_budget_counts_the_timer_and_a_short_wait_left_to_time_out() -> None:
    without = run_budget_s([s for s in STEPS if s.id not in ("cool", "approve")], 5)
    assert run_budget_s(STEPS, 5) - without >= 30 + 120


class _Api:
    """The API as the runner sees it: one execution, its approval waiting until the runner
    completes it; each call kept."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, Any]] = []
        self.ended: str | None = None

    def call(self, method: str, path: str, body: Any = None) -> Any:
        self.calls.append((method, path, body))
        if path.endswith("/execute"):
            return {"id": "e-1", "status": "RUNNING", "consistency": {"sequence": 1}}
        if path.startswith("/callbacks/"):
            if self.ended:
                raise ApiError(409, "completed already")
            self.ended = "COMPENSATED" if path.endswith("/fail") else "COMPLETED"
            return {}
        if self.ended:
            return {"id": "e-1", "status": self.ended, "consistency": {"sequence": 9},
                    "steps": []}
        return {"id": "e-1", "status": "RUNNING", "consistency": {"sequence": 2}, "steps": [
            {"step_id": "approve", "status": "WAITING",
             "waiting": {"kind": "callback", "callback_id": "cb_1", "approval": True,
                         "completed_at": None}}]}


def _run(case: Case) -> tuple[_Api, list[tuple[str, str, Any]]]:
    api = _Api()
    verifier = Verifier(api, "s", {}, budget_s=0.3, sleep=lambda _: None)  # type: ignore[arg-type]
    verifier.run(case)
    return api, [call for call in api.calls if call[1].startswith("/callbacks/")]


def test_the_runner_completes_each_open_callback_once_as_its_case_says() -> None:
    cases = _cases()
    _, completions = _run(cases["reserve fails for good"])
    assert completions == [("POST", "/callbacks/cb_1/succeed", {"result": APPROVED})]
    _, completions = _run(cases["approve is rejected"])
    assert completions == [("POST", "/callbacks/cb_1/fail", {
        "error": REJECTED, "reason": "saga verify fails this callback"})]
    api, completions = _run(cases["approve is never completed: its wait times out"])
    assert completions == [] and api.ended is None  # left to time out: the budget ends it
