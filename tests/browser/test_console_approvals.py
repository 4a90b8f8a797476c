"""Approvals decided by a person in the console, on the local stack (state machines in
LocalStack): two executions wait on an approval step; the console's approvals view lists them
with what they decide on, and its header counts them; the execution's own page offers the same
buttons; one is approved from the view with a comment and completes live on its page; the other
is rejected with a comment and ends COMPENSATED live, the comment, as written, its reason and
the step before it undone. The count follows each decision from the live feed."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from chalicelib.domain.lifecycle import ExecutionStatus, StepStatus
from tests.browser.conftest import Console, HeldParticipant, new_customer, run_scenario
from tests.support.participants import serving

STEP = "approve"
BEFORE = "validate-payment"
# What a person writes: slashes, a link with a query, a second line, kept as written.
REJECTION = "Refund over the 50/50 limit: see https://wiki.example/refunds?policy=7\nAsk Dana."
APPROVAL = "Fine by me"


def _saga(participant_url: str) -> dict[str, Any]:
    return {
        "id": f"approvals-{uuid.uuid4().hex[:8]}", "name": "Refund with approval",
        "version": "1.0.0", "description": "Validate, a manager approves, then ship",
        "steps": [
            {"id": BEFORE, "name": "Validate Payment", "description": "Validate the payment",
             "order": 1, "action": "validate_payment", "compensation": "cancel_payment",
             "max_retries": 0, "timeout": "30s"},
            {"id": STEP, "name": "Manager approval",
             "description": "A manager approves the refund", "order": 2, "kind": "callback",
             "timeout": "5m", "input": {"customer": "$.input.customer_id",
                                        "amount": "$.input.amount"}},
            {"id": "ship", "name": "Ship", "description": "Ship what was approved", "order": 3,
             "action": f"{participant_url}/ship", "compensation": f"{participant_url}/unship",
             "max_retries": 0, "timeout": "60s"}]}


def _waiting(console: Console, execution_id: str, timeout_s: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        status, execution = console.call("GET", f"/executions/{execution_id}")
        assert status == 200, execution
        step = next(s for s in execution["steps"] if s["step_id"] == STEP)
        if step["status"] == StepStatus.WAITING.value:
            return execution
        assert execution["status"] == ExecutionStatus.RUNNING.value, execution
        assert time.monotonic() < deadline, execution
        time.sleep(0.2)


def test_approvals_are_listed_counted_approved_and_rejected_in_the_console(
        console: Console) -> None:
    held = HeldParticipant({"shipped": True})
    with serving(held.respond) as participant:
        status, saga = console.call("POST", "/sagas", _saga(participant.url))
        assert status == 201, saga
        customers = [new_customer(), new_customer()]
        ids = []
        for customer in customers:
            status, started = console.call("POST", f"/sagas/{saga['id']}/execute", {
                "input": {"customer_id": customer, "amount": "25.00", "currency": "EUR"}})
            assert status == 202, started
            ids.append(started["id"])
        for execution_id in ids:
            _waiting(console, execution_id)
        approve, reject = ids
        result = run_scenario("approvals", base=console.served.base, approve=approve,
                              reject=reject, step=STEP, release=f"{participant.url}/release",
                              approval_comment=APPROVAL, rejection_comment=REJECTION)
    print(f"BROWSER approvals: {json.dumps(result['marks'])}")
    before, listed = result["before"], result["listed"]
    # The header counts what the view lists (everything waiting here fits one page).
    assert before["count"] == before["rows"] >= 2
    assert before["link"] == f"Approvals{before['count']}"
    for execution_id, customer in zip(ids, customers, strict=True):
        row = listed[execution_id]
        assert row["input"] == {"customer": customer, "amount": "25.00"}
        assert row["step"].startswith("Manager approval")
        assert "A manager approves the refund" in row["step"]
        assert row["buttons"] == [{"decision": "approve", "disabled": False},
                                  {"decision": "reject", "disabled": False}]
    assert result["on_page"] == {"buttons": listed[reject]["buttons"],
                                 "input": listed[reject]["input"]}
    assert result["asked"] == {"title": "Approve",
                               "label": "Comment (optional, up to 500 characters)"}

    approved = result["approved"]
    assert approved["answer"].startswith("Approved: the service answered 200")
    assert approved["count"] == before["count"] - 1
    assert approved["seen"][0] == "RUNNING" and approved["seen"][-1] == "COMPLETED"
    assert "completed by caller:anonymous@" in approved["wait"]

    rejected = result["rejected"]
    assert "needs a comment" in rejected["without_comment"] and rejected["still_open"]
    assert rejected["answer"].startswith("Rejected: the service answered 200")
    assert rejected["count"] == before["count"] - 2
    assert rejected["badge_hidden"] is (rejected["count"] == 0)
    assert rejected["seen"][-1] == "COMPENSATED"
    assert REJECTION in rejected["reason"] and "Rejected" in rejected["reason"]
    assert (BEFORE, "compensation", "succeeded") in [
        (bar["step"], bar["phase"], bar["outcome"]) for bar in rejected["bars"]]
    assert rejected["panels"] == 0  # nothing waits any more
    assert result["same_document"] and result["live"] == "on"

    # The API says the same: who decided, with what.
    status, done = console.call("GET", f"/executions/{approve}")
    step = next(s for s in done["steps"] if s["step_id"] == STEP)
    assert step["result"] == {"approved": True, "comment": APPROVAL}
    assert step["waiting"]["completed_by"].startswith("caller:anonymous@")
    status, undone = console.call("GET", f"/executions/{reject}")
    assert undone["status"] == ExecutionStatus.COMPENSATED.value
    assert undone["error"] == {"step_id": STEP, "phase": "action", "type": "Rejected",
                               "message": REJECTION,
                               "by": next(s for s in undone["steps"] if s["step_id"] == STEP)
                               ["waiting"]["completed_by"]}
