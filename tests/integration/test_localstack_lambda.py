"""Lambdas on LocalStack run by the local-process executor (infra/lambda_executor), no Docker.

Needs a running LocalStack started with LAMBDA_RUNTIME_EXECUTOR=local-process
(SAGA_LOCALSTACK_URL, default http://127.0.0.1:4566).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import time
import uuid
import zipfile
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config

pytestmark = pytest.mark.integration

ENDPOINT = os.environ.get("SAGA_LOCALSTACK_URL", "http://127.0.0.1:4566")
ROLE_NAME = "lambda-role"
ROLE_ARN = f"arn:aws:iam::000000000000:role/{ROLE_NAME}"
WAIT_SECONDS = 30

HANDLER_SOURCE = """
import time


class PaymentDeclined(Exception):
    pass


def handler(event, context):
    print(f"saga-log-marker {event.get('marker')}")
    if event.get("fail"):
        raise PaymentDeclined(f"declined: {event['fail']}")
    if event.get("sleep"):
        time.sleep(event["sleep"])
    return {
        "doubled": event.get("n", 0) * 2,
        "function": context.function_name,
        "remaining_ms": context.get_remaining_time_in_millis(),
    }
"""


def client(service: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=ENDPOINT,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        # Timeout tests hold the connection for seconds; never retry an invoke behind our back.
        config=Config(retries={"max_attempts": 1}, read_timeout=60),
    )


def wait_until(condition: Callable[[], Any], what: str, seconds: float = WAIT_SECONDS) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if result := condition():
            return result
        time.sleep(0.2)
    raise AssertionError(f"timed out after {seconds}s waiting for {what}")


def zipped(source: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", source)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def role_arn() -> Iterator[str]:
    iam = client("iam")
    created = False
    try:
        iam.get_role(RoleName=ROLE_NAME)
    except iam.exceptions.NoSuchEntityException:
        trust = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": ["lambda.amazonaws.com", "states.amazonaws.com"]},
                    "Action": "sts:AssumeRole",
                }
            ],
        }
        iam.create_role(RoleName=ROLE_NAME, AssumeRolePolicyDocument=json.dumps(trust))
        created = True
    yield ROLE_ARN
    if created:
        iam.delete_role(RoleName=ROLE_NAME)


@pytest.fixture
def make_function(role_arn: str) -> Iterator[Callable[..., str]]:
    """Creates uniquely named functions, waiting until Active; deletes them and their logs after."""
    lambda_client, logs = client("lambda"), client("logs")
    names: list[str] = []

    def make(source: str = HANDLER_SOURCE, handler: str = "app.handler", timeout: int = 5) -> str:
        name = f"saga-executor-test-{uuid.uuid4().hex[:10]}"
        lambda_client.create_function(
            FunctionName=name,
            Runtime="python3.11",
            Role=role_arn,
            Handler=handler,
            Code={"ZipFile": zipped(source)},
            Timeout=timeout,
        )
        names.append(name)

        def active() -> bool:
            state = lambda_client.get_function_configuration(FunctionName=name)["State"]
            assert state != "Failed", f"function {name} failed to deploy"
            return state == "Active"

        wait_until(active, f"{name} to become Active")
        return name

    yield make
    for name in names:
        lambda_client.delete_function(FunctionName=name)
        with contextlib.suppress(logs.exceptions.ResourceNotFoundException):
            logs.delete_log_group(logGroupName=f"/aws/lambda/{name}")


def invoke(name: str, event: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    response = client("lambda").invoke(FunctionName=name, Payload=json.dumps(event).encode())
    return response, json.loads(response["Payload"].read())


def test_invoke_returns_handler_result(make_function: Callable[..., str]) -> None:
    name = make_function()

    response, result = invoke(name, {"n": 21})

    assert response["StatusCode"] == 200
    assert "FunctionError" not in response
    assert result["doubled"] == 42
    assert result["function"] == name
    assert 0 < result["remaining_ms"] <= 5000


def test_raised_error_is_unhandled_function_error(make_function: Callable[..., str]) -> None:
    name = make_function()

    response, error = invoke(name, {"fail": 7})

    assert response["FunctionError"] == "Unhandled"
    assert error["errorType"] == "PaymentDeclined"
    assert error["errorMessage"] == "declined: 7"
    assert any("app.py" in frame for frame in error["stackTrace"])


def test_import_error_is_reported_like_lambda(make_function: Callable[..., str]) -> None:
    name = make_function(handler="missing_module.handler")

    response, error = invoke(name, {})

    assert response["FunctionError"] == "Unhandled"
    assert error["errorType"] == "Runtime.ImportModuleError"


def test_timeout_kills_the_invocation_and_next_one_works(
    make_function: Callable[..., str],
) -> None:
    name = make_function(timeout=1)
    invoke(name, {"n": 1})  # warm: a cold start is not what is timed

    started = time.monotonic()
    response, error = invoke(name, {"sleep": 3})
    elapsed = time.monotonic() - started

    assert response["FunctionError"] == "Unhandled"
    assert "Task timed out after 1.00 seconds" in error["errorMessage"]
    # Killed at its timeout, before its own 3 s sleep could end.
    assert elapsed < 3, "the handler should have been killed at its 1 s timeout"

    response, result = invoke(name, {"n": 2})
    assert "FunctionError" not in response
    assert result["doubled"] == 4


def test_print_goes_to_cloudwatch_logs(make_function: Callable[..., str]) -> None:
    name = make_function()
    marker = uuid.uuid4().hex
    logs = client("logs")

    invoke(name, {"marker": marker})

    def logged_messages() -> list[str]:
        try:
            events = logs.filter_log_events(logGroupName=f"/aws/lambda/{name}")["events"]
        except logs.exceptions.ResourceNotFoundException:
            return []
        messages = [event["message"] for event in events]
        return messages if any(marker in message for message in messages) else []

    messages = wait_until(logged_messages, f"the marker in /aws/lambda/{name}")
    assert any(message.startswith("START RequestId:") for message in messages)
    assert any(message.startswith("REPORT RequestId:") for message in messages)


# -- Step Functions ----------------------------------------------------------------------------


def task_state(style: str, function_arn: str) -> dict[str, Any]:
    """A Task calling the function, in the optimized-integration or the plain-ARN style."""
    if style == "lambda:invoke":
        return {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": function_arn, "Payload.$": "$"},
            "ResultSelector": {"doubled.$": "$.Payload.doubled"},
        }
    return {"Type": "Task", "Resource": function_arn}


@pytest.fixture
def run_state_machine(role_arn: str) -> Iterator[Callable[..., dict[str, Any]]]:
    """Creates a state machine, runs it to completion and returns its description and history."""
    sfn = client("stepfunctions")
    arns: list[str] = []

    def run(definition: dict[str, Any], execution_input: dict[str, Any]) -> dict[str, Any]:
        machine_arn = sfn.create_state_machine(
            name=f"saga-executor-test-{uuid.uuid4().hex[:10]}",
            definition=json.dumps(definition),
            roleArn=role_arn,
        )["stateMachineArn"]
        arns.append(machine_arn)
        execution_arn = sfn.start_execution(
            stateMachineArn=machine_arn, input=json.dumps(execution_input)
        )["executionArn"]

        def finished() -> dict[str, Any] | None:
            description = sfn.describe_execution(executionArn=execution_arn)
            return None if description["status"] == "RUNNING" else description

        description = wait_until(finished, f"execution {execution_arn}")
        history = sfn.get_execution_history(executionArn=execution_arn, maxResults=1000)
        return {"execution": description, "events": history["events"]}

    yield run
    for arn in arns:
        sfn.delete_state_machine(stateMachineArn=arn)


STYLES = [("lambda:invoke", "TaskFailed"), ("function-arn", "LambdaFunctionFailed")]


@pytest.mark.parametrize(("style", "failed_event"), STYLES)
def test_step_functions_catch_routes_a_raised_error(
    make_function: Callable[..., str],
    run_state_machine: Callable[..., dict[str, Any]],
    style: str,
    failed_event: str,
) -> None:
    function_arn = client("lambda").get_function(FunctionName=make_function())["Configuration"][
        "FunctionArn"
    ]
    charge = task_state(style, function_arn)
    charge["Catch"] = [
        {"ErrorEquals": ["PaymentDeclined"], "ResultPath": "$.error", "Next": "Compensate"}
    ]
    charge["Next"] = "Done"
    definition = {
        "StartAt": "Charge",
        "States": {
            "Charge": charge,
            "Compensate": {
                "Type": "Pass",
                "Result": "compensated",
                "ResultPath": "$.outcome",
                "End": True,
            },
            "Done": {"Type": "Succeed"},
        },
    }

    run = run_state_machine(definition, {"fail": 3})

    assert run["execution"]["status"] == "SUCCEEDED"
    output = json.loads(run["execution"]["output"])
    assert output["outcome"] == "compensated"
    assert output["error"]["Error"] == "PaymentDeclined"
    event_types = [event["type"] for event in run["events"]]
    assert failed_event in event_types
    entered = [
        event["stateEnteredEventDetails"]["name"]
        for event in run["events"]
        if "stateEnteredEventDetails" in event
    ]
    assert "Compensate" in entered
    assert "Done" not in entered


@pytest.mark.parametrize("style", [style for style, _ in STYLES])
def test_step_functions_task_succeeds(
    make_function: Callable[..., str],
    run_state_machine: Callable[..., dict[str, Any]],
    style: str,
) -> None:
    function_arn = client("lambda").get_function(FunctionName=make_function())["Configuration"][
        "FunctionArn"
    ]
    task = task_state(style, function_arn)
    task["End"] = True
    definition = {"StartAt": "Double", "States": {"Double": task}}

    run = run_state_machine(definition, {"n": 5})

    assert run["execution"]["status"] == "SUCCEEDED"
    assert json.loads(run["execution"]["output"])["doubled"] == 10
