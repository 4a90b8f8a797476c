"""The stage deployed as one CloudFormation stack from the packaged template, in LocalStack.

The `deployed` fixture already ran `deploy_local` for stage `test`; these tests look at what it
made: the stack, its functions' configuration, and the REST API served by LocalStack's API
Gateway in front of the API Lambda."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from chalicelib.adapters import aws
from chalicelib.config import Settings
from infra.deploy.local import deploy_local, gateway_url, local_stack_name
from tests.support.sagas import one_step_saga
from tests.support.served import http


def _request(url: str, method: str = "GET", body: Any = None) -> tuple[int, Any]:
    answer = http(method, url, None if body is None else json.dumps(body).encode())
    return answer.status, answer.json()


@pytest.fixture(scope="module")
def stack(settings_e2e: Settings) -> dict[str, Any]:
    cfn = aws.client("cloudformation", settings_e2e.aws)
    described: dict[str, Any] = cfn.describe_stacks(
        StackName=local_stack_name(settings_e2e))["Stacks"][0]
    described["resources"] = {
        r["LogicalResourceId"]: r for r in
        cfn.list_stack_resources(StackName=local_stack_name(settings_e2e))["StackResourceSummaries"]}
    return described


def test_the_stage_is_one_stack_holding_every_function(stack: dict[str, Any]) -> None:
    assert stack["StackStatus"] in ("CREATE_COMPLETE", "UPDATE_COMPLETE")
    for logical in ("APIHandler", "RestAPI", "StepPayment", "StepInventory", "SagaRecorder",
                    "OutboxRelay", "Projector", "Reconciler", "StateMachineRole"):
        assert stack["resources"][logical]["ResourceStatus"].endswith("COMPLETE"), logical
    assert "WebsocketAPI" not in stack["resources"]  # the local gateway stands in


def test_functions_take_their_configuration_from_secrets(settings_e2e: Settings) -> None:
    lam = aws.client("lambda", settings_e2e.aws)
    config = lam.get_function_configuration(FunctionName="saga-orchestrator-test-step_payment")
    variables = config["Environment"]["Variables"]
    assert variables["DB_NAME"] == settings_e2e.database.mysql.database == "saga_db_test"
    assert variables["MONGODB_DB"] == settings_e2e.database.mongodb.database
    assert variables["SAGA_STAGE"] == "test"
    assert not any("resolve:" in value for value in variables.values())
    assert config["Handler"] == "chalicelib.roots.step_entry.step_payment"
    assert config["Timeout"] == 900


def test_the_rest_api_answers_through_localstacks_api_gateway(
        settings_e2e: Settings, stack: dict[str, Any]) -> None:
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    base = gateway_url(settings_e2e, outputs)
    status, health = _request(f"{base}/health")
    assert status == 200 and health["stage"] == "test", health
    status, refused = _request(f"{base}/api/v1/saga/sagas", "POST", {"name": "no id"})
    assert status == 400 and refused["error"]["code"] == "validation_failed", refused
    saga_id = f"gw-{uuid.uuid4().hex[:8]}"
    status, created = _request(f"{base}/api/v1/saga/sagas", "POST", one_step_saga(saga_id))
    assert status == 201, created
    status, fetched = _request(f"{base}/api/v1/saga/sagas/{saga_id}")
    assert status == 200 and fetched["steps"][0]["id"] == "charge"
    # The console comes from the same stage: its page and its modules, as a browser gets them.
    page = http("GET", f"{base}/console")
    assert page.status == 200 and b'<script type="module"' in page.raw, page.raw[:300]
    module = http("GET", f"{base}/console/app.js")
    headers = {name.lower(): value for name, value in module.headers.items()}
    assert module.status == 200 and "javascript" in headers.get("content-type", "")


def test_deploying_again_keeps_the_stack_and_its_code(settings_e2e: Settings) -> None:
    lam = aws.client("lambda", settings_e2e.aws)
    before = lam.get_function(FunctionName="saga-orchestrator-test-step_order")
    result = deploy_local(settings_e2e, say=lambda line: None)
    after = lam.get_function(FunctionName="saga-orchestrator-test-step_order")
    assert result.status in ("CREATE_COMPLETE", "UPDATE_COMPLETE")
    assert after["Configuration"]["CodeSha256"] == before["Configuration"]["CodeSha256"]
    assert after["Configuration"]["State"] == "Active"


MACHINES_VALIDATED = 40  # the newest ones: describing every machine of a long session is slow


def test_the_machines_the_stage_generated_pass_asl_validator(settings_e2e: Settings) -> None:
    """State machines are not in the template (one per saga version, made at store time): the
    newest ones this stage made in Step Functions are checked as deployed."""
    from tests.support.asl_validator import AslValidator

    sfn = aws.client("stepfunctions", settings_e2e.aws)
    machines = [m for page in sfn.get_paginator("list_state_machines").paginate()
                for m in page["stateMachines"] if m["name"].startswith("test-")]
    assert machines, "the gateway test above made at least one saga's machines"
    newest = sorted(machines, key=lambda m: m["creationDate"], reverse=True)[:MACHINES_VALIDATED]
    definitions = [json.loads(sfn.describe_state_machine(
        stateMachineArn=m["stateMachineArn"])["definition"]) for m in newest]
    errors = AslValidator.installed().validate(definitions)
    assert errors == [""] * len(definitions), [e for e in errors if e][:3]
