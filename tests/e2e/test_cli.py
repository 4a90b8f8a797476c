"""The `saga` command as a user runs it: a separate process, over real HTTP and WebSocket."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from infra.local_api import running
from infra.ws_gateway import LocalWebsocketGateway
from tests.e2e.conftest import Api, new_customer, seed_customer

SEED = json.loads((Path(__file__).parents[1] / "fixtures" / "payment-saga.json").read_text())


@pytest.fixture(scope="module")
def api_url(client: Any) -> Iterator[str]:
    with running("test") as url:
        yield url


@pytest.fixture
def saga(api_url: str, ws_gateway: LocalWebsocketGateway,
         tmp_path: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    env = {**os.environ, "SAGA_API_URL": api_url,
           "SAGA_WS_URL": f"ws://127.0.0.1:{ws_gateway.ws_port}/ws"}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        try:
            return subprocess.run([sys.executable, "-m", "infra.cli", *args], env=env,
                                  capture_output=True, text=True, timeout=120, check=False)
        except subprocess.TimeoutExpired as hung:  # say what it had printed by then
            pytest.fail(f"saga {' '.join(args)} did not end in 120 s; it printed "
                        f"{hung.stdout!r} {hung.stderr!r}")

    return run


def _files(tmp_path: Path, customer: str) -> tuple[str, str, str]:
    definition = dict(SEED, id=f"cli-{uuid.uuid4().hex[:8]}",
                      output={"charged": "$.results.process-payment.amount",
                              "customer": "$.input.customer_id"})
    saga_file = tmp_path / "saga.json"
    saga_file.write_text(json.dumps(definition))
    input_file = tmp_path / "input.yaml"
    input_file.write_text(f"customer_id: {customer}\namount: '3.00'\ncurrency: EUR\n")
    return definition["id"], str(saga_file), str(input_file)


def test_create_run_follow_and_inspect(saga: Any, tmp_path: Path, api: Api,
                                       demo: Callable[[], dict[str, Any]]) -> None:
    customer = new_customer()
    saga_id, saga_file, input_file = _files(tmp_path, customer)
    created = saga("sagas", "create", "-f", saga_file)
    assert created.returncode == 0, created.stderr
    assert f"stored {saga_id} 1.0.0 (revision 1, 3 steps)" in created.stdout
    again = saga("sagas", "create", "-f", saga_file)
    assert again.returncode == 2 and "already exists" in again.stderr

    listed = saga("sagas", "list", "--json")
    assert saga_id in [s["id"] for s in json.loads(listed.stdout)["items"]]
    shown = saga("sagas", "show", saga_id)
    assert "process_payment" in shown.stdout and "refund_payment" in shown.stdout

    completed = saga("run", saga_id, "--input", input_file, "--follow")
    assert completed.returncode == 0, completed.stdout + completed.stderr
    lines = completed.stdout.splitlines()
    assert [line.split()[1] for line in lines if "succeeded" in line] == [
        "validate-payment", "process-payment", "send-notification"]
    assert lines[-1].startswith("COMPLETED in ")
    execution_id = lines[0].split()[-1]
    assert lines[-2] == f'  output: {{"charged": "3.00", "customer": "{customer}"}}'

    shown = saga("executions", "show", execution_id)
    assert shown.returncode == 0 and "COMPLETED" in shown.stdout.splitlines()[0]
    assert f'  output: {{"charged": "3.00", "customer": "{customer}"}}' in shown.stdout
    assert '       result: {"account_id": ' in shown.stdout
    listed = saga("executions", "list", "--saga", saga_id, "--json")
    assert [e["id"] for e in json.loads(listed.stdout)["items"]] == [execution_id]
    started = json.loads(listed.stdout)["items"][0]["started_at"]
    since = saga("executions", "list", "--saga", saga_id, "--after", started, "--json")
    assert [e["id"] for e in json.loads(since.stdout)["items"]] == [execution_id]
    until = saga("executions", "list", "--saga", saga_id, "--before", started, "--json")
    assert json.loads(until.stdout)["items"] == []
    vague = saga("executions", "list", "--after", "yesterday")
    assert vague.returncode == 2 and "ISO 8601 time with its zone" in vague.stderr
    stats = saga("stats", saga_id)
    assert stats.returncode == 0 and "1 executions" in stats.stdout


def test_a_failing_run_shows_the_compensation_and_exits_non_zero(
    saga: Any, tmp_path: Path, demo: Callable[[], dict[str, Any]]
) -> None:
    saga_id, saga_file, input_file = _files(tmp_path, new_customer())
    assert saga("sagas", "create", "-f", saga_file).returncode == 0
    faults = tmp_path / "faults.json"
    faults.write_text(json.dumps([{"step_id": "send-notification", "error": "SmtpDown",
                                   "times": 9}]))
    failed = saga("run", saga_id, "--input", input_file, "--faults", str(faults), "--follow")
    assert failed.returncode == 1
    out = failed.stdout
    assert "↻ send-notification failed (attempt 1): SmtpDown" in out
    assert "✗ send-notification failed for good (attempt 3)" in out
    assert out.index("↩ process-payment compensated") < out.index(
        "↩ validate-payment compensated")
    assert out.splitlines()[-1].startswith("COMPENSATED in ")

    as_json = saga("run", saga_id, "--input", input_file, "--faults", str(faults), "--follow",
                   "--json")
    assert as_json.returncode == 1
    events = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert events[-1]["type"] == "saga.compensated"


def test_clear_errors_and_exit_codes(saga: Any, tmp_path: Path) -> None:
    missing = saga("sagas", "show", "no-such-saga")
    assert missing.returncode == 2 and "does not exist" in missing.stderr
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(dict(SEED, id="x", version="one")))
    invalid = saga("sagas", "create", "-f", str(bad))
    assert invalid.returncode == 2
    assert "version: must be a semantic version" in invalid.stderr
    unreachable = subprocess.run(
        [sys.executable, "-m", "infra.cli", "sagas", "list", "--api", "http://127.0.0.1:9"],
        capture_output=True, text=True, timeout=60, check=False)
    assert unreachable.returncode == 3 and "cannot reach the API" in unreachable.stderr


def test_deploy_to_prod_without_credentials_says_so(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(HOME=str(tmp_path), AWS_CONFIG_FILE=str(tmp_path / "none"),
               AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
               AWS_EC2_METADATA_DISABLED="true")
    result = subprocess.run([sys.executable, "-m", "infra.cli", "deploy", "--stage", "prod"],
                            env=env, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2
    assert "no AWS credentials found for stage prod" in result.stderr


def test_run_follow_without_input_completes_locally(saga: Any, tmp_path: Path,
                                                    demo: Callable[[], dict[str, Any]]) -> None:
    seed_customer("demo-customer", "1000.00")
    saga_id, saga_file, _ = _files(tmp_path, new_customer())
    assert saga("sagas", "create", "-f", saga_file).returncode == 0
    result = saga("run", saga_id, "--follow")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[-1].startswith("COMPLETED in ")


def test_a_shaped_saga_parks_and_is_retried_forward_from_the_terminal(
    saga: Any, tmp_path: Path, demo: Callable[[], dict[str, Any]]
) -> None:
    from chalicelib.demo import demo_data
    from chalicelib.roots import runtime

    example = Path(__file__).parents[2] / "examples" / "order-fulfilment"
    definition = json.loads((example / "saga.json").read_text())
    definition["id"] = f"cli-fulfil-{uuid.uuid4().hex[:8]}"
    saga_file = tmp_path / "saga.json"
    saga_file.write_text(json.dumps(definition))
    sku = f"SKU-{uuid.uuid4().hex[:6]}"
    with runtime.container().connector.transaction() as cur:
        demo_data.seed_stock(cur, sku, 5)
    order = {**json.loads((example / "order.json").read_text()), "sku": sku,
             "customer_id": new_customer(), "amount": "5.00", "currency": "EUR"}
    input_file = tmp_path / "order.json"
    input_file.write_text(json.dumps(order))
    faults = tmp_path / "faults.json"
    faults.write_text(json.dumps([{"step_id": "ship", "error": "CarrierDown", "times": 3}]))
    assert saga("sagas", "create", "-f", str(saga_file)).returncode == 0
    shown = saga("sagas", "show", definition["id"]).stdout
    assert "capture-payment" in shown and " pivot " in shown and " retriable " in shown

    parked = saga("run", definition["id"], "--input", str(input_file), "--faults", str(faults),
                  "--follow")
    assert parked.returncode == 1, parked.stdout + parked.stderr
    out = parked.stdout
    assert ("6 steps: create-order → reserve-stock ∥ authorize-payment → capture-payment "
            "(pivot) → ship ∥ notify (retriable)") in out
    assert "  ∥ group 2, running in parallel: reserve-stock, authorize-payment" in out
    assert "  ⏸ parked after the pivot: ship CarrierDown" in out
    assert out.splitlines()[-1].startswith("PARKED in ")
    execution_id = out.splitlines()[0].split()[-1]

    resumed = saga("executions", "retry-forward", execution_id, "--follow")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "▶ retried forward by" in resumed.stdout
    assert "✓ ship succeeded (attempt 4" in resumed.stdout
    assert resumed.stdout.splitlines()[-1].startswith("COMPLETED in ")
    timeline = saga("executions", "show", execution_id).stdout
    assert "group 3, pivot" in timeline and "group 4, retriable" in timeline


def test_follow_attaches_to_a_running_execution_and_compensate_undoes_it(
        saga: Any, tmp_path: Path, demo: Callable[[], dict[str, Any]]) -> None:
    customer = new_customer()
    saga_id, saga_file, _ = _files(tmp_path, customer)
    assert saga("sagas", "create", "-f", saga_file).returncode == 0
    versions = saga("sagas", "versions", saga_id)
    assert versions.returncode == 0 and versions.stdout.splitlines()[1].split()[:3] == [
        "1.0.0", "1", "standard"]
    # Inline JSON input; the payment step takes 3 s, so the run is still going when we attach.
    body = json.dumps({"customer_id": customer, "amount": "2.00", "currency": "EUR"})
    faults = json.dumps([{"step_id": "process-payment", "delay": "3s", "times": 0}])
    started = saga("run", saga_id, "--input", body, "--faults", faults, "--json")
    assert started.returncode == 0, started.stderr
    execution_id = json.loads(started.stdout)["id"]
    attached = saga("executions", "follow", execution_id)
    assert attached.returncode == 0, attached.stdout + attached.stderr
    lines = attached.stdout.splitlines()
    assert lines[0].startswith(f"{execution_id}  {saga_id} 1.0.0  RUNNING")
    assert any("✓ process-payment succeeded" in line for line in lines)
    assert lines[-1].startswith("COMPLETED in ")
    # Attached after the end: told at once, with the end's exit code.
    again = saga("executions", "show", execution_id, "--follow")
    assert again.returncode == 0 and "COMPLETED" in again.stdout.splitlines()[0]
    undone = saga("executions", "compensate", execution_id, "--follow")
    assert undone.returncode == 1, undone.stdout + undone.stderr  # it did not complete
    assert "↩ process-payment compensated" in undone.stdout
    assert undone.stdout.splitlines()[-1].startswith("COMPENSATED in ")


def _approval_saga(tmp_path: Path) -> tuple[str, str]:
    """A saga whose second step waits for a person: validate the payment, then approve."""
    definition = {
        "id": f"cli-approve-{uuid.uuid4().hex[:8]}", "name": "Refund with approval",
        "version": "1.0.0", "description": "Validate the payment, then a manager approves",
        "steps": [{**SEED["steps"][0], "max_retries": 0},
                  {"id": "approve", "name": "Manager approval",
                   "description": "A manager approves the refund", "order": 2,
                   "kind": "callback", "timeout": "2m",
                   "input": {"customer": "$.input.customer_id", "amount": "$.input.amount"}}]}
    saga_file = tmp_path / "approval.json"
    saga_file.write_text(json.dumps(definition))
    return definition["id"], str(saga_file)


def test_approvals_are_listed_approved_and_rejected_from_the_terminal(
        saga: Any, tmp_path: Path, api: Api, demo: Callable[[], dict[str, Any]]) -> None:
    saga_id, saga_file = _approval_saga(tmp_path)
    assert saga("sagas", "create", "-f", saga_file).returncode == 0
    customers = [new_customer(), new_customer()]

    def approve_step(execution: dict[str, Any]) -> dict[str, Any]:
        return next(s for s in execution["steps"] if s["step_id"] == "approve")

    ids = []
    for customer in customers:  # one after the other: the first waits longest
        ids.append(api.execute(saga_id, input={"customer_id": customer, "amount": "4.00",
                                               "currency": "EUR"})["id"])
        api.wait(ids[-1], until=lambda e: approve_step(e)["status"] == "WAITING"
                 and e["consistency"]["source"] == "read_model", timeout_s=60)

    listed = saga("callbacks", "list", "--approvals", "--saga", saga_id)
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0].split() == ["CALLBACK", "KIND", "SAGA", "EXECUTION", "STEP", "SINCE",
                                "UNTIL", "INPUT"]
    assert [line.split()[4] for line in lines[1:3]] == ids  # oldest first
    assert all(" approval " in line and "approve (Manager approval)" in line
               for line in lines[1:3])
    assert f'{{"amount": "4.00", "customer": "{customers[0]}"}}' in lines[1]
    assert lines[3] == "2 shown of 2 open approvals"
    as_json = json.loads(saga("callbacks", "list", "--approvals", "--saga", saga_id,
                              "--json").stdout)
    assert as_json["total"] == 2 and [i["execution_id"] for i in as_json["items"]] == ids
    assert as_json["items"][1]["input"] == {"customer": customers[1], "amount": "4.00"}
    approved_cb, rejected_cb = (item["callback_id"] for item in as_json["items"])

    approved = saga("callbacks", "succeed", approved_cb, "--comment", "within budget")
    assert approved.returncode == 0, approved.stderr
    assert approved.stdout.strip() == (f"{approved_cb}: step approve of execution {ids[0]} "
                                       "is SUCCEEDED")
    rejected = saga("callbacks", "fail", rejected_cb, "--reason", "over the 50/50 limit")
    assert rejected.returncode == 0, rejected.stderr
    assert rejected.stdout.strip().endswith(f"of execution {ids[1]} is FAILED")
    again = saga("callbacks", "fail", rejected_cb, "--reason", "twice")
    assert again.returncode == 2 and "already completed" in again.stderr

    completed, compensated = (api.wait(execution_id, timeout_s=60) for execution_id in ids)
    assert completed["status"] == "COMPLETED", completed
    assert approve_step(completed)["result"] == {"approved": True, "comment": "within budget"}
    assert compensated["status"] == "COMPENSATED", compensated
    assert compensated["error"]["type"] == "Rejected"
    assert compensated["error"]["message"] == "over the 50/50 limit"
    assert compensated["error"]["by"] == approve_step(compensated)["waiting"]["completed_by"]
    assert compensated["steps"][0]["status"] == "COMPENSATED"  # the payment check undone
    after = saga("callbacks", "list", "--approvals", "--saga", saga_id)
    assert after.returncode == 0 and after.stdout.strip() == "no open approvals"
