"""The `dev` stage as `chalice package` writes it: function names the runtime can find, the
light entry handlers, LocalStack's variant of the stack, and what the package carries."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import app as app_module
from chalicelib.adapters.stepfunctions.arns import FunctionNames
from infra.deploy.template import (
    chalice_function_name,
    for_localstack,
    functions,
    references,
    with_code_location,
)


@pytest.fixture(scope="module")
def template_path(packaged_stage: Callable[[str], Path]) -> Path:
    return packaged_stage("dev")


@pytest.fixture(scope="module")
def packaged(template_path: Path) -> dict[str, Any]:
    return dict(json.loads(template_path.read_text()))


def test_step_lambdas_get_the_names_generated_machines_call(packaged: dict[str, Any]) -> None:
    names = FunctionNames(app="saga-orchestrator", stage="dev", region="r", account="1")
    deployed = {resource["Properties"]["FunctionName"] for _, resource in functions(packaged)}
    for fn in app_module.app.pure_lambda_functions:
        assert names.arn(fn.name).rsplit(":", 1)[1] in deployed
    assert "saga-orchestrator-dev" in deployed  # the API handler, as Chalice names it


def test_step_lambdas_are_deployed_with_the_light_entry_handlers(
        packaged: dict[str, Any]) -> None:
    from chalicelib.roots import step_entry as entry

    handlers = {chalice_function_name(logical): resource["Properties"]["Handler"]
                for logical, resource in functions(packaged)}
    for name in entry.HANDLERS:
        module, attribute = handlers[name].rsplit(".", 1)
        assert module == "chalicelib.roots.step_entry"
        assert getattr(entry, attribute).__name__ == name
    assert packaged["Resources"]["APIHandler"]["Properties"]["Handler"] == "app.app"
    assert handlers["projector"] == "app.projector"  # the rest stay Chalice's


def test_the_localstack_variant_drops_what_the_free_edition_lacks(
        packaged: dict[str, Any]) -> None:
    local = for_localstack(packaged, {"SAGA__KAFKA__TOPIC": "t"})
    kinds = {resource["Type"] for resource in local["Resources"].values()}
    assert not any(kind.startswith("AWS::ApiGatewayV2") for kind in kinds)
    assert "ProjectorKafkaSource" not in local["Resources"]
    assert "MskClusterArn" not in local["Parameters"]  # nothing refers to it any more
    remaining = set(local["Resources"]) | set(local["Parameters"])
    dangling = {name for name in references(local) - remaining if not name.startswith("AWS::")}
    assert not dangling
    assert not any("Websocket" in name and "Url" in name for name in local["Outputs"])
    # The WebSocket handlers themselves stay: the local gateway invokes them.
    assert {"WebsocketConnect", "RestAPI", "APIHandler", "StepPayment"} <= remaining
    variables = local["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["SAGA__KAFKA__TOPIC"] == "t"
    event = local["Resources"]["OutboxRelay"]["Properties"]["Events"]["OutboxRelayEvent"]
    assert event["Properties"]["Enabled"] is False
    # The original is untouched: AWS stages deploy it as it is.
    assert "WebsocketAPI" in packaged["Resources"]


def test_code_location_points_every_function_at_the_uploaded_package(
        packaged: dict[str, Any]) -> None:
    located = with_code_location(packaged, "bucket", "key.zip")
    assert {json.dumps(r["Properties"]["CodeUri"]) for _, r in functions(located)} == {
        json.dumps({"Bucket": "bucket", "Key": "key.zip"})}


def test_the_package_carries_the_settings_file(template_path: Path) -> None:
    names = zipfile.ZipFile(template_path.with_name("deployment.zip")).namelist()
    assert "chalicelib/configs/config.json" in names and "app.py" in names
    assert "chalicelib/configs/config.yaml" not in names
