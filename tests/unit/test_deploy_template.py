"""Deployment inputs and template edits that need no packaging: function names, references,
the optional VPC, the stack's parameters and region, the packaged requirements (the packaged
templates: tests/tools)."""

from __future__ import annotations

import copy
import json
import tomllib
from pathlib import Path
from typing import Any

import pytest

import app as app_module
from infra import cli
from infra.deploy.aws import (
    MERGE_TEMPLATE,
    deploy_region,
    read_parameters,
    runtime_requirements,
    vendor_sdk,
    with_network,
)
from infra.deploy.template import (
    IN_VPC,
    VPC_ACCESS_ACTIONS,
    VPC_POLICY_NAME,
    chalice_function_name,
    functions,
    references,
    with_optional_vpc,
)
from infra.exit_codes import Exit
from infra.stack.paths import PROJECT_ROOT


def test_logical_ids_map_back_to_chalice_function_names() -> None:
    for fn in app_module.app.pure_lambda_functions:
        logical = "".join(part.capitalize() for part in fn.name.split("_"))
        assert chalice_function_name(logical) == fn.name


def test_references_finds_ref_getatt_and_sub() -> None:
    fragment = {"a": {"Ref": "One"}, "b": [{"Fn::GetAtt": ["Two", "Arn"]}],
                "c": {"Fn::Sub": "x-${Three}-${AWS::Region}-${Four.Arn}"}, "d": "Five",
                "e": {"Fn::Sub": ["${Local}-${Six}", {"Local": {"Ref": "Seven"}}]}}
    assert references(fragment) == {"One", "Two", "Three", "Four", "Six", "Seven"}


def test_stack_parameters_are_checked_before_anything_is_deployed(tmp_path: Path) -> None:
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"MySQLSecret": "s1", "MongoSecret": "s2", "AuthSecret": "s3",
                                "KafkaBrokers": "b:9092", "MskClusterArn": "arn:msk"}))
    assert read_parameters(good)["KafkaBrokers"] == "b:9092"
    partial = tmp_path / "partial.json"
    partial.write_text(json.dumps({"MySQLSecret": "s1"}))
    with pytest.raises(ValueError, match=r"missing parameter.*MongoSecret"):
        read_parameters(partial)
    typed = tmp_path / "typed.json"
    typed.write_text(json.dumps({"MySQLSecret": 1}))
    with pytest.raises(ValueError, match="JSON object of string values"):
        read_parameters(typed)
    with pytest.raises(ValueError, match="cannot read"):
        read_parameters(tmp_path / "absent.json")


def _role(name: str) -> dict[str, Any]:
    return {"Type": "AWS::IAM::Role", "Properties": {"Policies": [{"PolicyName": name}]}}


def _function(role: Any) -> dict[str, Any]:
    return {"Type": "AWS::Serverless::Function",
            "Properties": {"Handler": "app.app", "Role": role}}


# Chalice's shape: a role per function (GetAtt), here also one function on a role made elsewhere.
SMALL = {"Parameters": {"Stage": {"Type": "String"}}, "Resources": {
    "StepPaymentRole": _role("StepPaymentRolePolicy"),
    "StepPayment": _function({"Fn::GetAtt": ["StepPaymentRole", "Arn"]}),
    "ProjectorRole": _role("ProjectorRolePolicy"),
    "Projector": _function({"Fn::GetAtt": "ProjectorRole.Arn"}),
    "Elsewhere": _function("arn:aws:iam::123456789012:role/theirs"),
    "RestAPI": {"Type": "AWS::Serverless::Api", "Properties": {}}}}


NO_VALUE = object()  # what AWS::NoValue resolves to: the key or item is left out


def _resolved(node: Any, values: dict[str, str], conditions: dict[str, Any]) -> Any:
    """The template fragment as CloudFormation resolves it, for the intrinsics the VPC edit
    uses (Ref of a parameter, Fn::Split, Fn::Equals, Fn::Not, Fn::And, Fn::If, NoValue)."""
    def value(item: Any) -> Any:
        return _resolved(item, values, conditions)

    def holds(name: str) -> bool:
        return bool(value(conditions[name]))

    if isinstance(node, list):
        return [item for item in map(value, node) if item is not NO_VALUE]
    if not isinstance(node, dict):
        return node
    if node == {"Ref": "AWS::NoValue"}:
        return NO_VALUE
    if list(node) == ["Ref"] and node["Ref"] in values:
        return values[node["Ref"]]
    if "Fn::Split" in node:
        separator, text = node["Fn::Split"]
        return value(text).split(separator)
    if "Fn::Equals" in node:
        left, right = map(value, node["Fn::Equals"])
        return left == right
    if "Fn::Not" in node:
        return not value(node["Fn::Not"][0])
    if "Fn::And" in node:
        return all(map(value, node["Fn::And"]))
    if "Fn::If" in node:
        condition, then, otherwise = node["Fn::If"]
        return value(then if holds(condition) else otherwise)
    return {key: item for key, item in ((k, value(v)) for k, v in node.items())
            if item is not NO_VALUE}


def _deployed(template: dict[str, Any], subnets: str, groups: str) -> dict[str, Any]:
    """The resources as a stack given these SubnetIds and SecurityGroupIds would have them."""
    values = {"SubnetIds": subnets, "SecurityGroupIds": groups}
    resolved: dict[str, Any] = _resolved(template["Resources"], values, template["Conditions"])
    return resolved


def test_every_function_runs_in_the_vpc_the_stack_is_given() -> None:
    before = copy.deepcopy(SMALL)
    template = with_optional_vpc(SMALL)
    assert before == SMALL  # a pure edit: the input is untouched
    for name in ("SubnetIds", "SecurityGroupIds"):
        assert template["Parameters"][name]["Type"] == "String"
        assert template["Parameters"][name]["Default"] == ""
    assert template["Parameters"]["Stage"] == {"Type": "String"}
    assert IN_VPC in template["Conditions"]

    inside = _deployed(template, "subnet-0a1b2c3d,subnet-0b2c3d4e", "sg-0c3d4e5f")
    for name in ("StepPayment", "Projector", "Elsewhere"):
        assert inside[name]["Properties"]["VpcConfig"] == {
            "SubnetIds": ["subnet-0a1b2c3d", "subnet-0b2c3d4e"],
            "SecurityGroupIds": ["sg-0c3d4e5f"]}, name
    for role in ("StepPaymentRole", "ProjectorRole"):
        policies = inside[role]["Properties"]["Policies"]
        assert [p["PolicyName"] for p in policies] == [role + "Policy", VPC_POLICY_NAME]
        [statement] = policies[1]["PolicyDocument"]["Statement"]
        assert statement["Effect"] == "Allow" and statement["Resource"] == "*"
        # What AWS's AWSLambdaVPCAccessExecutionRole grants for network interfaces.
        assert set(statement["Action"]) == {
            "ec2:CreateNetworkInterface", "ec2:DescribeNetworkInterfaces",
            "ec2:DescribeSubnets", "ec2:DeleteNetworkInterface",
            "ec2:AssignPrivateIpAddresses", "ec2:UnassignPrivateIpAddresses"}
    assert inside["RestAPI"] == SMALL["Resources"]["RestAPI"]
    assert inside["Elsewhere"]["Properties"]["Role"] == "arn:aws:iam::123456789012:role/theirs"


@pytest.mark.parametrize(("subnets", "groups"), [("", ""), ("subnet-0a1b2c3d", ""),
                                                 ("", "sg-0c3d4e5f")])
def test_without_subnets_and_security_groups_the_functions_stay_outside_any_vpc(
        subnets: str, groups: str) -> None:
    outside = _deployed(with_optional_vpc(SMALL), subnets, groups)
    assert outside == SMALL["Resources"]  # no VpcConfig, no extra policy


def test_a_role_shared_by_functions_gets_the_vpc_policy_once() -> None:
    shared = copy.deepcopy(SMALL)
    shared["Resources"]["Projector"]["Properties"]["Role"] = {
        "Fn::GetAtt": ["StepPaymentRole", "Arn"]}
    inside = _deployed(with_optional_vpc(shared), "subnet-0a1b2c3d", "sg-0c3d4e5f")
    policies = inside["StepPaymentRole"]["Properties"]["Policies"]
    assert [p["PolicyName"] for p in policies] == ["StepPaymentRolePolicy", VPC_POLICY_NAME]
    assert policies[1]["PolicyDocument"]["Statement"][0]["Action"] == list(VPC_ACCESS_ACTIONS)
    assert all("VpcConfig" in resource["Properties"]
               for _, resource in functions({"Resources": inside}))


def test_the_vpc_comes_from_the_flags_else_the_parameters_file() -> None:
    required = {"MySQLSecret": "s1", "KafkaBrokers": "b:9092"}
    assert with_network(required) == {**required, "SubnetIds": "", "SecurityGroupIds": ""}
    from_file = {**required, "SubnetIds": " subnet-0a1b2c3d , subnet-0b2c3d4e5f6071829",
                 "SecurityGroupIds": "sg-0c3d4e5f"}
    assert with_network(from_file) == {**required,
                                       "SubnetIds": "subnet-0a1b2c3d,subnet-0b2c3d4e5f6071829",
                                       "SecurityGroupIds": "sg-0c3d4e5f"}
    flagged = with_network(from_file, subnet_ids="subnet-0e0e0e0e",
                           security_group_ids="sg-0f0f0f0f,sg-01010101")
    assert (flagged["SubnetIds"], flagged["SecurityGroupIds"]) == (
        "subnet-0e0e0e0e", "sg-0f0f0f0f,sg-01010101")
    assert from_file["SubnetIds"].startswith(" subnet-")  # the input is untouched
    # Empty flags take the functions out of the VPC the file names.
    assert with_network(from_file, subnet_ids="", security_group_ids="")["SubnetIds"] == ""


def test_a_vpc_needs_both_subnets_and_security_groups_with_real_ids() -> None:
    with pytest.raises(ValueError, match="SubnetIds without SecurityGroupIds"):
        with_network({}, subnet_ids="subnet-0a1b2c3d")
    with pytest.raises(ValueError, match="SecurityGroupIds without SubnetIds"):
        with_network({"SecurityGroupIds": "sg-0c3d4e5f"})
    with pytest.raises(ValueError, match=r"SubnetIds takes subnet ids.*sg-0c3d4e5f"):
        with_network({}, subnet_ids="sg-0c3d4e5f", security_group_ids="subnet-0a1b2c3d")
    with pytest.raises(ValueError, match=r"SecurityGroupIds takes security group ids.*vpc-1"):
        with_network({}, subnet_ids="subnet-0a1b2c3d", security_group_ids="vpc-1")


def test_the_region_is_the_flags_else_the_environments_else_the_profiles() -> None:
    env = {"AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "eu-central-1"}
    assert deploy_region("ap-south-1", env, "us-west-2") == "ap-south-1"
    assert deploy_region(None, env, "us-west-2") == "eu-west-1"
    assert deploy_region(None, {"AWS_DEFAULT_REGION": "eu-central-1"}, None) == "eu-central-1"
    assert deploy_region(None, {}, "us-west-2") == "us-west-2"  # the profile's
    with pytest.raises(ValueError, match="no AWS region"):
        deploy_region(None, {}, None)  # never a region assumed


def test_the_functions_are_told_the_stacks_region() -> None:
    # aws.region (Step Functions and Lambda clients, the ARNs the API builds) is the region the
    # stack is deployed in, whatever configs/config.yaml ships.
    merged = json.loads(MERGE_TEMPLATE.read_text())
    variables = merged["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["SAGA__AWS__REGION"] == {"Ref": "AWS::Region"}


def test_deploy_refuses_half_a_vpc_or_no_region_before_calling_aws(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    parameters = tmp_path / "prod.json"
    parameters.write_text(json.dumps({"MySQLSecret": "s1", "MongoSecret": "s2",
                                      "AuthSecret": "s3", "KafkaBrokers": "b:9092",
                                      "MskClusterArn": "arn:msk"}))
    for name in ("AWS_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "example")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))

    def never(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("AWS was called")

    monkeypatch.setattr("infra.deploy.aws.deploy_aws", never)
    deploy = ["deploy", "--stage", "prod", "--parameters", str(parameters)]
    assert cli.main([*deploy, "--region", "eu-west-1",
                     "--subnet-ids", "subnet-0a1b2c3d"]) == Exit.REFUSED
    assert "SubnetIds without SecurityGroupIds" in capsys.readouterr().err
    assert cli.main(deploy) == Exit.REFUSED
    assert "no AWS region: pass --region" in capsys.readouterr().err


def test_the_packaged_requirements_are_the_runtime_ones() -> None:
    names = {r.split(">")[0].split("<")[0].split("=")[0] for r in runtime_requirements()}
    assert {"chalice", "boto3", "pymysql", "pymongo", "kafka-python"} <= names
    assert not names & {"pytest", "moto", "ruff", "cfn-lint"}
    # The participant SDK is a dependency, but not on PyPI: it is vendored instead.
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    assert any(r.startswith("saga-participant") for r in project["dependencies"])
    assert "saga-participant" not in names


def test_the_participant_sdk_is_vendored_into_the_package(tmp_path: Path) -> None:
    copied = vendor_sdk(tmp_path)
    assert copied == tmp_path / "vendor" / "saga_participant"
    assert {"__init__.py", "contract.py", "errors.py", "participant.py", "py.typed"} <= {
        path.name for path in copied.iterdir()}
    assert not list(copied.rglob("__pycache__"))
