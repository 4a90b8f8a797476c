"""Pure edits of the packaged SAM template: no I/O, so each is unit-tested on its own.

`chalice package` leaves function names to CloudFormation, but state machines are generated at
run time and name their step Lambdas the way Chalice does ({app}-{stage}-{function}), so the
names are pinned here. Every function may run in a VPC, chosen at deploy time by two stack
parameters (with_optional_vpc). LocalStack's free edition has no WebSocket API and no MSK, so
the LocalStack variant drops those resources (the local gateway and event workers stand in).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator, Mapping
from typing import Any

Template = dict[str, Any]

SERVERLESS_FUNCTION = "AWS::Serverless::Function"
API_HANDLER = "APIHandler"  # Chalice's logical id for the REST API's Lambda
_SUB_NAME = re.compile(r"\$\{([A-Za-z0-9]+)(?:\.[A-Za-z0-9.]+)?\}")


def chalice_function_name(logical_id: str) -> str:
    """StepPayment -> step_payment: Chalice's logical ids are its function names in CamelCase."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", logical_id).lower()


def deployed_name(app: str, stage: str, logical_id: str) -> str:
    if logical_id == API_HANDLER:
        return f"{app}-{stage}"
    return f"{app}-{stage}-{chalice_function_name(logical_id)}"


def functions(template: Template) -> Iterator[tuple[str, dict[str, Any]]]:
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] == SERVERLESS_FUNCTION:
            yield logical_id, resource


def with_function_names(template: Template, app: str, stage: str) -> Template:
    result = copy.deepcopy(template)
    for logical_id, resource in functions(result):
        resource["Properties"]["FunctionName"] = deployed_name(app, stage, logical_id)
    return result


def with_handlers(template: Template, handlers: Mapping[str, str]) -> Template:
    """Point functions (by Chalice name) at other handlers than Chalice's `app.<name>`."""
    result = copy.deepcopy(template)
    for logical_id, resource in functions(result):
        handler = handlers.get(chalice_function_name(logical_id))
        if handler is not None:
            resource["Properties"]["Handler"] = handler
    return result


def with_code_location(template: Template, bucket: str, key: str) -> Template:
    result = copy.deepcopy(template)
    for _, resource in functions(result):
        resource["Properties"]["CodeUri"] = {"Bucket": bucket, "Key": key}
    return result


# The VPC the functions run in: two stack parameters, both given or neither (then no VPC).
SUBNET_IDS = "SubnetIds"
SECURITY_GROUP_IDS = "SecurityGroupIds"
IN_VPC = "InVpc"  # the condition: both parameters given
NO_VALUE = {"Ref": "AWS::NoValue"}
VPC_POLICY_NAME = "vpc-network-interfaces"
# What a function in a VPC needs to create, use and delete its network interfaces: the EC2
# actions of AWS's managed policy AWSLambdaVPCAccessExecutionRole (its logs actions are in
# every function's own policy already).
VPC_ACCESS_ACTIONS = (
    "ec2:CreateNetworkInterface", "ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets",
    "ec2:DeleteNetworkInterface", "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses")


def _given(parameter: str) -> dict[str, Any]:
    """A condition: the parameter is not empty."""
    return {"Fn::Not": [{"Fn::Equals": [{"Ref": parameter}, ""]}]}


def _split(parameter: str) -> dict[str, Any]:
    """The ids of a comma-separated parameter, as a list."""
    return {"Fn::Split": [",", {"Ref": parameter}]}


def _own_role(template: Template, function: Mapping[str, Any]) -> dict[str, Any] | None:
    """The IAM role the template creates for a function (Role: GetAtt of it); None when the
    function names a role made elsewhere."""
    role = function["Properties"].get("Role")
    if not (isinstance(role, dict) and "Fn::GetAtt" in role):
        return None
    target = role["Fn::GetAtt"]
    logical_id = target[0] if isinstance(target, list) else target.split(".")[0]
    resource = template["Resources"].get(logical_id)
    return resource if resource and resource["Type"] == "AWS::IAM::Role" else None


def with_optional_vpc(template: Template) -> Template:
    """Every function in a VPC when the stack is given subnets and security groups.

    Adds the parameters SubnetIds and SecurityGroupIds (comma-separated ids, empty by
    default; strings split here rather than CommaDelimitedList, which LocalStack's engine
    mishandles in conditions) and the condition InVpc (both not empty). Under it every
    function gets a VpcConfig with those ids, and every role the template creates for a
    function an inline policy with the EC2 actions Lambda needs for the function's network
    interfaces; without it neither exists (AWS::NoValue) and the functions run outside any
    VPC."""
    result = copy.deepcopy(template)
    parameters = result.setdefault("Parameters", {})
    parameters[SUBNET_IDS] = {
        "Type": "String", "Default": "",
        "Description": "Comma-separated subnet ids the Lambdas run in (with SecurityGroupIds); "
                       "empty: no VPC"}
    parameters[SECURITY_GROUP_IDS] = {
        "Type": "String", "Default": "",
        "Description": "Comma-separated security group ids of the Lambdas (with SubnetIds); "
                       "empty: no VPC"}
    result.setdefault("Conditions", {})[IN_VPC] = {
        "Fn::And": [_given(SUBNET_IDS), _given(SECURITY_GROUP_IDS)]}
    vpc_policy = {"PolicyName": VPC_POLICY_NAME, "PolicyDocument": {
        "Version": "2012-10-17",
        "Statement": [{"Sid": "NetworkInterfaces", "Effect": "Allow",
                       "Action": list(VPC_ACCESS_ACTIONS), "Resource": "*"}]}}
    roles_done: set[int] = set()
    for _, resource in functions(result):
        resource["Properties"]["VpcConfig"] = {"Fn::If": [IN_VPC, {
            "SubnetIds": _split(SUBNET_IDS),
            "SecurityGroupIds": _split(SECURITY_GROUP_IDS)}, NO_VALUE]}
        role = _own_role(result, resource)
        if role is not None and id(role) not in roles_done:
            roles_done.add(id(role))
            role["Properties"].setdefault("Policies", []).append(
                {"Fn::If": [IN_VPC, copy.deepcopy(vpc_policy), NO_VALUE]})
    return result


def references(node: Any) -> set[str]:
    """Logical ids a template fragment refers to (Ref, Fn::GetAtt, ${...} in Fn::Sub)."""
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" and isinstance(value, str):
                found.add(value)
            elif key == "Fn::GetAtt":
                found.add(value[0] if isinstance(value, list) else value.split(".")[0])
            elif key == "Fn::Sub":
                # [text, {Name: value}] defines Name locally; only its value refers onwards.
                text, local = (value[0], value[1]) if isinstance(value, list) else (value, {})
                found.update(set(_SUB_NAME.findall(text)) - set(local))
                found |= references(local)
                continue
            found |= references(value)
    elif isinstance(node, list):
        for item in node:
            found |= references(item)
    return found


def _unsupported_locally(logical_id: str, resource: Mapping[str, Any]) -> bool:
    kind = resource["Type"]
    if kind.startswith("AWS::ApiGatewayV2::"):
        return True  # WebSocket API: the local gateway stands in
    if kind == "AWS::Lambda::EventSourceMapping":
        return True  # MSK: the local projector worker stands in
    return kind == "AWS::Lambda::Permission" and logical_id.startswith("Websocket")


def for_localstack(template: Template, environment: Mapping[str, str]) -> Template:
    """The template as LocalStack's free edition can create it.

    Drops the WebSocket API and the MSK event source (and whatever refers to them), disables
    the schedules (`saga serve` runs the relay; a test must not race a timer), and adds the
    deployer's environment to every function."""
    result = copy.deepcopy(template)
    resources = result["Resources"]
    dropped = {name for name, resource in resources.items()
               if _unsupported_locally(name, resource)}
    for _ in range(len(resources)):  # and what depends on them, to a fixed point
        dependants = {name for name, resource in resources.items()
                      if name not in dropped and references(resource) & dropped}
        if not dependants:
            break
        dropped |= dependants
    for name in dropped:
        del resources[name]
    result["Outputs"] = {name: output for name, output in result.get("Outputs", {}).items()
                         if not references(output) & dropped}
    variables = result["Globals"]["Function"]["Environment"]["Variables"]
    for name in [name for name, value in variables.items() if references(value) & dropped]:
        del variables[name]
    variables.update(environment)
    for _, resource in functions(result):
        for event in resource["Properties"].get("Events", {}).values():
            if event["Type"] == "Schedule":
                event["Properties"]["Enabled"] = False
    used = references({key: value for key, value in result.items() if key != "Parameters"})
    result["Parameters"] = {name: parameter for name, parameter in result["Parameters"].items()
                            if name in used}
    return result
