"""`saga verify` end to end through `saga serve`: every failure point of the order-fulfilment
example's shape passes (its timeouts shortened, so each case's run is short), and on a saga
whose compensation does nothing, the check hook finds the cases that prove it."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from chalicelib.demo import demo_data
from chalicelib.roots import runtime
from infra.stack.paths import PROJECT_ROOT
from tests.support.served import Served, http, served
from tests.support.verify_participant import state_participant

EXAMPLE = PROJECT_ROOT / "examples" / "order-fulfilment"


@pytest.fixture(scope="module")
def api() -> Iterator[Served]:
    with served({}) as app:
        yield app


def _create(api: Served, saga: dict[str, Any]) -> str:
    answer = http("POST", f"{api.base}/api/v1/saga/sagas", json.dumps(saga).encode())
    assert answer.status == 201, answer.json()
    return str(saga["id"])


def _verify(api: Served, saga_id: str, tmp_path: Path, *extra: str) -> tuple[int, str, Any]:
    junit = tmp_path / "verify.xml"
    done = subprocess.run(
        [sys.executable, "-m", "infra.cli", "verify", saga_id, "--api", api.base,
         "--junit", str(junit), "--concurrency", "8", *extra],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=600, check=False)
    return done.returncode, done.stdout + done.stderr, ET.parse(junit).getroot()


def test_every_failure_point_of_the_order_fulfilment_shape_passes(api: Served,
                                                                  tmp_path: Path) -> None:
    saga = json.loads((EXAMPLE / "saga.json").read_text())
    saga["id"] = f"verify-orders-{uuid.uuid4().hex[:6]}"
    for step in saga["steps"]:  # the same shape, with short timeouts: short timed-out runs
        step["timeout"] = "5s"  # (still ample for a built-in step on a loaded 2-core machine)
        if step.get("max_retries"):
            step["max_retries"] = 1
    saga_id = _create(api, saga)
    # Cases run at once: a customer and a stock of their own, ample for every case.
    order = {**json.loads((EXAMPLE / "order.json").read_text()),
             "customer_id": f"verify-{uuid.uuid4().hex[:8]}", "amount": "10.00",
             "currency": "EUR", "sku": f"sku-verify-{uuid.uuid4().hex[:6]}"}
    with runtime.container().connector.transaction() as cur:
        demo_data.seed_account(cur, order["customer_id"], "100000.00")
        demo_data.seed_account(cur, "merchant", "0.00")
        demo_data.seed_stock(cur, order["sku"], 100000)
    input_file = tmp_path / "order.json"
    input_file.write_text(json.dumps(order))
    code, output, suite = _verify(api, saga_id, tmp_path, "--input", str(input_file))
    assert code == 0, output
    assert suite.get("tests") == "16" and suite.get("failures") == "0", output
    assert f"{saga_id}: 16 of 16 cases passed" in output


def test_a_compensation_that_undoes_nothing_is_found_by_the_check_hook(
        api: Served, saga_verify: Callable[..., list[dict[str, Any]]],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Through the SDK's pytest plugin (`saga_verify`), as a team's own CI would run it."""
    monkeypatch.setenv("SAGA_CLI", f"{sys.executable} -m infra.cli")
    with state_participant() as participant:
        def step(step_id: str, order: int, undo: str = "/undo") -> dict[str, Any]:
            return {"id": f"{step_id}-{step_id}", "name": f"Step {step_id}",
                    "description": f"the work of step {step_id}",
                    "order": order, "action": f"{participant.url}/do",
                    "compensation": f"{participant.url}{undo}", "max_retries": 0,
                    "timeout": "5s"}

        # (step ids a-a, b-b, c-c: ids are at least two characters)
        saga_id = _create(api, {
            "id": f"verify-broken-{uuid.uuid4().hex[:6]}", "name": "Broken undo",
            "version": "1.0.0", "description": "its second step's compensation does nothing",
            "steps": [step("a", 1), step("b", 2, "/undo-nothing"), step("c", 3)]})
        check = f"{sys.executable} -m tests.support.verify_check {participant.url}"
        results = {r["case"]: r for r in saga_verify(saga_id, check=check,
                                                     cases=["fails for good"],
                                                     expect_failures=True, api=api.base)}
    # Where b took effect and was "compensated": the hook sees it was not undone.
    assert not results["c-c fails for good"]["passed"]
    assert any("not undone by the participant: b-b" in problem
               for problem in results["c-c fails for good"]["problems"])
    # Where b never ran or failed for good, nothing of it needed undoing: those pass.
    assert results["a-a fails for good"]["passed"] and results["b-b fails for good"]["passed"]


def test_callbacks_are_completed_failed_or_left_to_time_out_as_each_case_says(
        api: Served, saga_verify: Callable[..., list[dict[str, Any]]],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """An approval and a partner's callback: `saga verify` completes them as each case says,
    and a Python check (the SDK plugin's) reads the participant's own state."""
    monkeypatch.setenv("SAGA_CLI", f"{sys.executable} -m infra.cli")
    with state_participant() as participant:
        saga_id = _create(api, {
            "id": f"verify-waits-{uuid.uuid4().hex[:6]}", "name": "Waits",
            "version": "1.0.0", "description": "reserve, an approval, a partner's callback",
            "steps": [
                {"id": "a-a", "name": "Reserve", "description": "the participant's work",
                 "order": 1, "action": f"{participant.url}/do",
                 "compensation": f"{participant.url}/undo", "max_retries": 0,
                 "timeout": "5s"},
                {"id": "ap-ap", "name": "Approve", "description": "a person decides",
                 "order": 2, "kind": "callback", "timeout": "4s"},
                {"id": "cb-cb", "name": "Confirm", "description": "the partner confirms",
                 "order": 3, "kind": "callback", "action": f"{participant.url}/do",
                 "compensation": f"{participant.url}/undo", "timeout": "48h",
                 "call_timeout": "5s"}]})

        def reserve_undone(result: dict[str, Any]) -> list[str]:
            with urllib.request.urlopen(f"{participant.url}/state?execution="
                                        f"{result['execution_id']}", timeout=10) as answer:
                state = json.loads(answer.read())
            return [] if state.get("a-a") == "undone" else [f"a-a not undone: {state}"]

        results = {r["case"]: r for r in saga_verify(
            saga_id, check=reserve_undone, api=api.base,
            cases=["rejected", "completed as failed", "never completed"])}
    assert sorted(results) == ["ap-ap is never completed: its wait times out",
                               "ap-ap is rejected", "cb-cb is completed as failed"]
    assert {r["status"] for r in results.values()} == {"COMPENSATED"}
