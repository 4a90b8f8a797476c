"""A child saga in the console, in a real browser: an order whose pay step ran the payment
saga, then failed at shipping and compensated. The pay step's row in the timeline (and its
cell in the steps table) links to the child's execution, whose page names its parent and
links back."""

from __future__ import annotations

import uuid
from typing import Any

from tests.browser.conftest import Console, run_scenario
from tests.support.participants import Received, serving


def _step(step_id: str, order: int, url: str) -> dict[str, Any]:
    return {"id": step_id, "name": step_id.title(), "description": f"the {step_id} step",
            "order": order, "action": f"{url}/{step_id}", "compensation": f"{url}/undo",
            "max_retries": 0, "timeout": "30s"}


def test_a_child_step_links_to_its_child_execution_and_back(console: Console) -> None:
    def respond(request: Received) -> tuple[int, Any]:
        if request.path == "/ship":
            return 422, {"error": {"type": "NoCarrier", "message": "no carrier today"}}
        return 200, {"path": request.path}

    tag = uuid.uuid4().hex[:8]
    with serving(respond) as participant:
        url = participant.url
        for saga in ({"id": f"payment-{tag}", "name": "Payment", "version": "1.0.0",
                      "description": "the payments team's saga",
                      "steps": [_step("authorize", 1, url), _step("capture", 2, url)]},
                     {"id": f"order-{tag}", "name": "Order", "version": "1.0.0",
                      "description": "an order paid by the payment saga", "steps": [
                          {"id": "pay", "name": "Pay", "description": "the payment saga",
                           "order": 1, "saga": f"payment-{tag}"},
                          _step("ship", 2, url)]}):
            status, stored = console.call("POST", "/sagas", saga)
            assert status == 201, stored
        status, started = console.call("POST", f"/sagas/order-{tag}/execute", {"input": {}})
        assert status == 202, started
        parent = console.wait(started["id"], timeout_s=90)
        assert parent["status"] == "COMPENSATED", parent
        child_id = next(s for s in parent["steps"] if s["step_id"] == "pay")["child"]
        result = run_scenario("child_link", base=console.served.base,
                              execution_id=parent["id"], step_id="pay",
                              parent_status="COMPENSATED", child_status="COMPENSATED")
    href = f"#/executions/{child_id}"
    assert result["parentPage"]["href"] == href
    assert result["parentPage"]["cell"] == href
    assert child_id in result["parentPage"]["label"]
    assert result["childPage"]["hash"] == href
    assert result["childPage"]["parent"] == f"{parent['id']} step pay"
    assert result["childPage"]["steps"] == ["authorize", "capture"]
    assert result["back"] == f"#/executions/{parent['id']}"
