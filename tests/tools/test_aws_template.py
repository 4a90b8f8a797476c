"""The AWS template: packaged offline by `chalice package`, it holds what the service needs
(cfn-lint: test_cfn_lint.py)."""

from __future__ import annotations

import json
import re
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(scope="module")
def template(packaged_stage: Callable[[str], Path]) -> dict[str, Any]:
    return dict(json.loads(packaged_stage("prod").read_text()))


def test_it_creates_every_function_the_app_declares(template: dict[str, Any]) -> None:
    resources = template["Resources"]
    for name in ("APIHandler", "StepPayment", "StepNotification", "StepLambda", "StepHttp",
                 "SagaRecorder", "OutboxRelay", "Projector", "Reconciler", "WebsocketConnect",
                 "WebsocketMessage", "WebsocketDisconnect"):
        assert resources[name]["Type"] == "AWS::Serverless::Function", name
    assert resources["StepPayment"]["Properties"]["Timeout"] == 900
    assert resources["RestAPI"] and resources["WebsocketAPI"]
    assert resources["OutboxRelay"]["Properties"]["Events"]["OutboxRelayEvent"]["Type"] == \
        "Schedule"


def test_it_adds_what_chalice_cannot(template: dict[str, Any]) -> None:
    resources = template["Resources"]
    role = resources["StateMachineRole"]["Properties"]
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {
        "Service": "states.amazonaws.com"}
    assert resources["ProjectorKafkaSource"]["Properties"]["FunctionName"] == {
        "Ref": "Projector"}
    assert resources["UnknownRouteIsNotFound"]["Properties"]["StatusCode"] == "404"
    assert template["Parameters"]["Stage"]["Default"] == "prod"
    responses = {r["Properties"]["ResponseType"]: r["Properties"]["StatusCode"]
                 for r in resources.values() if r["Type"] == "AWS::ApiGateway::GatewayResponse"}
    assert responses == {"MISSING_AUTHENTICATION_TOKEN": "404", "UNAUTHORIZED": "401",
                         "THROTTLED": "429"}


def test_prod_routes_carry_the_token_authorizer_and_health_does_not(
        template: dict[str, Any]) -> None:
    paths = template["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]["paths"]
    for path, methods in paths.items():
        for method, operation in methods.items():
            if method == "options":
                continue
            secured = [name for entry in operation.get("security", []) for name in entry]
            # The console's files load without a token (the page asks for one), and so do the
            # API's docs (its document holds no data); a callback is completed by a partner
            # holding its secret, not a token, so its routes check the secret or the token
            # themselves (no authorizer in front). Listing them needs a token.
            public = path == "/health" or path.startswith(("/console", "/docs")) \
                or re.fullmatch(r"/api/v1/saga/callbacks/\{callback_id\}/(succeed|fail|heartbeat)",
                                path) is not None
            assert secured == ([] if public else ["jwt_auth"]), (path, method)
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    assert "resolve:secretsmanager" in json.dumps(variables["SAGA__AUTH__HS256_SECRET"])


def test_no_secret_is_in_the_template(template: dict[str, Any]) -> None:
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    assert "resolve:secretsmanager" in json.dumps(variables["DB_PASSWORD"])
    text = json.dumps(template)
    assert "saga-local" not in text  # the local password
    prod = template["Resources"]["StepPayment"]["Properties"]["Environment"]["Variables"]
    assert prod["SAGA_STAGE"] == "prod"
    assert prod["SAGA__SAGA__FAULT_INJECTION_ENABLED"] == "false"


def test_cleanup_runs_on_a_schedule_at_the_configured_interval(
        template: dict[str, Any]) -> None:
    from chalicelib.config import get_settings
    from chalicelib.usecases.cleanup import cleanup_schedule_minutes

    events = template["Resources"]["Cleanup"]["Properties"]["Events"]
    [schedule] = [event["Properties"]["Schedule"] for event in events.values()
                  if event["Type"] == "Schedule"]
    assert schedule == f"rate({cleanup_schedule_minutes(get_settings())} minutes)"
    assert get_settings().saga.cleanup_interval == "1h" and schedule == "rate(60 minutes)"


def test_api_gateway_compresses_responses_from_the_configured_size(
        template: dict[str, Any]) -> None:
    assert template["Resources"]["RestAPI"]["Properties"]["MinimumCompressionSize"] == 1024


def test_the_console_is_told_the_websocket_apis_url(template: dict[str, Any]) -> None:
    """On AWS the console's live feed connects to the WebSocket API Chalice creates: its URL
    reaches every function's settings (websocket.url), and the management endpoint the pusher
    posts to names the same API and stage."""
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    url = variables["SAGA__WEBSOCKET__URL"]["Fn::Sub"]
    management = variables["SAGA__WEBSOCKET__MANAGEMENT_ENDPOINT"]["Fn::Sub"]
    assert template["Resources"]["WebsocketAPI"]["Type"] == "AWS::ApiGatewayV2::Api"
    assert url.startswith("wss://${WebsocketAPI}.execute-api.${AWS::Region}.")
    assert url.removeprefix("wss://") == management.removeprefix("https://")


def test_localstack_drops_the_websocket_url_with_the_websocket_api(
        template: dict[str, Any]) -> None:
    from infra.deploy.template import for_localstack

    local = for_localstack(template, {"SAGA__WEBSOCKET__URL": "ws://127.0.0.1:8001/ws"})
    variables = local["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["SAGA__WEBSOCKET__URL"] == "ws://127.0.0.1:8001/ws"
    assert "WebsocketAPI" not in local["Resources"]


def test_every_function_may_run_in_a_vpc_chosen_by_the_stacks_parameters(
        template: dict[str, Any]) -> None:
    from infra.deploy.template import IN_VPC, VPC_POLICY_NAME, functions

    assert {"SubnetIds", "SecurityGroupIds"} <= set(template["Parameters"])
    assert IN_VPC in template["Conditions"]
    found = list(functions(template))
    assert len(found) >= 18
    for name, function in found:
        properties = function["Properties"]
        assert properties["VpcConfig"]["Fn::If"][0] == IN_VPC, name
        role = template["Resources"][properties["Role"]["Fn::GetAtt"][0]]
        assert [policy["Fn::If"][1]["PolicyName"] for policy in role["Properties"]["Policies"]
                if "Fn::If" in policy] == [VPC_POLICY_NAME], name
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["SAGA__AWS__REGION"] == {"Ref": "AWS::Region"}


def test_every_function_carries_the_participant_sdk(packaged_stage: Callable[[str], Path]) -> None:
    # chalicelib builds participant requests with saga_participant (sdk/python, not on PyPI):
    # vendored, it sits at the root of the one deployment package every function runs.
    package = packaged_stage("prod").with_name("deployment.zip")
    with zipfile.ZipFile(package) as archive:
        names = set(archive.namelist())
    assert {"saga_participant/__init__.py", "saga_participant/contract.py",
            "saga_participant/participant.py", "chalicelib/participant.py", "app.py"} <= names
