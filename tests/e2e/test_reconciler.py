"""The reconciler repairs what the write model got wrong, against real Step Functions runs."""

from __future__ import annotations

import copy
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from chalicelib.adapters.mysql.executions import MySQLExecutionStore
from chalicelib.config import Settings
from chalicelib.domain.executions import Execution, ExecutionStatus, StepShape
from chalicelib.domain.lifecycle import StepKind
from chalicelib.roots import runtime
from tests.e2e.conftest import Api, seed_customer

SEED = json.loads((Path(__file__).parents[1] / "fixtures" / "payment-saga.json").read_text())


def _reconcile(settings: Settings) -> dict[str, ExecutionStatus]:
    repairs = runtime.container().new_reconciler(grace_seconds=0).run()
    return {repair.execution_id: repair.now for repair in repairs}


def test_a_lost_completion_and_a_run_that_never_started_are_repaired(
    api: Api, settings_e2e: Settings, demo: Any
) -> None:
    definition = copy.deepcopy(SEED) | {"id": f"rec-{uuid.uuid4().hex[:10]}"}
    api.create_saga(definition)
    customer = f"cust-{uuid.uuid4().hex[:8]}"
    seed_customer(customer)
    done = api.wait(api.execute(definition["id"], input={
        "customer_id": customer, "amount": "5.00", "currency": "EUR"})["id"])
    assert done["status"] == "COMPLETED", done
    # As if the last step's record had been lost: the write model still says RUNNING.
    with runtime.container().connector.transaction() as cur:
        cur.execute("UPDATE executions SET status = 'RUNNING', ended_at = NULL WHERE id = %s",
                    (done["id"],))
    # And an execution recorded but never started (a crash between the two).
    now = datetime.now(UTC)
    orphan, _ = MySQLExecutionStore(runtime.container().connector).create(Execution(
        id=f"orphan-{uuid.uuid4().hex[:8]}", saga_id=definition["id"], revision=1,
        version="1.0.0", status=ExecutionStatus.RUNNING, input={},
        state_machine_arn=done["state_machine_arn"], started_at=now, updated_at=now),
        [StepShape(step_id="validate-payment", group=1, kind=StepKind.COMPENSATABLE)])

    repaired = _reconcile(settings_e2e)
    assert repaired[done["id"]] is ExecutionStatus.COMPLETED
    assert repaired[orphan.id] is ExecutionStatus.FAILED
    assert api.wait(done["id"])["status"] == "COMPLETED"
    failed = api.wait(orphan.id)
    assert failed["status"] == "FAILED" and "never started" in failed["error"]["message"]
    # A second pass finds nothing left to repair.
    assert done["id"] not in _reconcile(settings_e2e)


def test_a_run_that_ended_compensated_closes_an_execution_still_running(
    api: Api, settings_e2e: Settings, demo: Any
) -> None:
    """The run ended Saga.Compensated while the write model still says RUNNING (its undos
    were skipped, or their record lost): RUNNING -> COMPENSATED was once refused by the
    transition table, and such an execution stayed RUNNING for good."""
    definition = copy.deepcopy(SEED) | {"id": f"rec-{uuid.uuid4().hex[:10]}"}
    api.create_saga(definition)
    customer = f"cust-{uuid.uuid4().hex[:8]}"
    seed_customer(customer)
    undone = api.wait(api.execute(definition["id"], input={
        "customer_id": customer, "amount": "5.00", "currency": "EUR"}, faults=[
        {"step_id": "send-notification", "error": "Boom", "permanent": True}])["id"])
    assert undone["status"] == "COMPENSATED", undone
    with runtime.container().connector.transaction() as cur:
        cur.execute("UPDATE executions SET status = 'RUNNING', ended_at = NULL WHERE id = %s",
                    (undone["id"],))
    assert _reconcile(settings_e2e)[undone["id"]] is ExecutionStatus.COMPENSATED
    assert api.wait(undone["id"])["status"] == "COMPENSATED"
    assert undone["id"] not in _reconcile(settings_e2e)


def test_the_scheduled_reconciler_lambda_runs(api: Api) -> None:
    from chalice.test import Client

    from infra.deploy.local import load_app

    with Client(load_app(), stage_name="test") as client:
        response = client.lambda_.invoke("reconciler", client.events.generate_cw_event(
            source="aws.events", detail_type="Scheduled Event", detail={}, resources=[]))
    assert isinstance(response.payload["repaired"], list)
