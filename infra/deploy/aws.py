"""Packaging for AWS: `chalice package` (SAM) merged with infra/aws/resources.json.

Chalice creates the REST and WebSocket APIs, every Lambda and the schedules; the merge
template adds what it cannot: the Step Functions role, the projector's Kafka event source, the
404 for unknown routes, and the configuration, taken from parameters and Secrets Manager (no
secret in the template or the repository). The functions run in a VPC when the stack's
SubnetIds and SecurityGroupIds parameters name one (template.with_optional_vpc).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

from chalicelib.domain.lifecycle import LAMBDA_MAX_TIMEOUT_S
from chalicelib.roots import step_entry as entry
from infra.deploy.cloudformation import StackRequest, StackResult, deploy_stack
from infra.deploy.template import (
    SECURITY_GROUP_IDS,
    SUBNET_IDS,
    with_function_names,
    with_handlers,
    with_optional_vpc,
)
from infra.stack.paths import PROJECT_ROOT

MERGE_TEMPLATE = PROJECT_ROOT / "infra" / "aws" / "resources.json"
_SOURCES = ("app.py", "chalicelib", ".chalice")
# The participant SDK (sdk/python/), which chalicelib builds its participant requests with. It is
# not on PyPI: every package carries it in Chalice's vendor/ (copied into the zip's root, beside
# chalicelib/), and requirements.txt leaves it out.
SDK_ROOT = PROJECT_ROOT / "sdk" / "python"
SDK_PACKAGE = "saga_participant"
SDK_DISTRIBUTION = "saga-participant"
CONFIG_FILE = PROJECT_ROOT / "configs" / "config.yaml"
CHALICE_CONFIG = PROJECT_ROOT / ".chalice" / "config.json"


def chalice_config() -> dict[str, Any]:
    return dict(json.loads(CHALICE_CONFIG.read_text()))


def packaged_chalice_config() -> dict[str, Any]:
    """.chalice/config.json as packaged: with a setting for each step Lambda, one per family
    of entry.FAMILIES (written here, not by hand, so a new family needs no edit there)."""
    config = chalice_config()
    functions = config.setdefault("lambda_functions", {})
    for name in entry.STEP_HANDLERS:
        # A step's Task may wait up to Lambda's limit (lifecycle.task_timeout_s), so its
        # Lambda may run that long.
        functions.setdefault(name, {})["lambda_timeout"] = LAMBDA_MAX_TIMEOUT_S
    return config


def stack_name(app: str, stage: str) -> str:
    """A stage's stack, named as Chalice names the stage's API handler."""
    return f"{app}-{stage}"


def _requirement_name(requirement: str) -> str:
    return re.split(r"[\s<>=!~;\[@]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def runtime_requirements() -> list[str]:
    """The service's own dependencies (not the dev ones), as pyproject.toml pins them, but the
    participant SDK, which is vendored (vendor_sdk)."""
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    return [requirement for requirement in project["dependencies"]
            if _requirement_name(requirement) != SDK_DISTRIBUTION]


def vendor_sdk(build: Path) -> Path:
    """Copy the SDK's package into the build's vendor/, which Chalice puts at the root of the
    deployment package (on sys.path in every function, as /var/task is); the copied package."""
    target = build / "vendor" / SDK_PACKAGE
    shutil.copytree(SDK_ROOT / SDK_PACKAGE, target,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return target


def package(stage: str, out_dir: Path, *, region: str = "us-east-1",
            with_dependencies: bool = True) -> Path:
    """Write the deployment package and SAM template of a stage to out_dir; the template."""
    build = out_dir / "build"
    shutil.rmtree(build, ignore_errors=True)
    build.mkdir(parents=True)
    for name in _SOURCES:
        source = PROJECT_ROOT / name
        if source.is_dir():
            shutil.copytree(source, build / name,
                            ignore=shutil.ignore_patterns("__pycache__", "deployments"))
        else:
            shutil.copy2(source, build / name)
    # Chalice packages only app.py and chalicelib/: the settings (and a JWKS file beside them)
    # travel inside the latter, the settings as JSON (a cold start then needs no YAML parser).
    vendor_sdk(build)
    bundled = build / "chalicelib" / "configs"
    shutil.copytree(CONFIG_FILE.parent, bundled, ignore=shutil.ignore_patterns("*.yaml"))
    (bundled / "config.json").write_text(json.dumps(yaml.safe_load(CONFIG_FILE.read_text())))
    if with_dependencies:
        # Chalice bundles what requirements.txt names, as Linux wheels for Lambda.
        (build / "requirements.txt").write_text("\n".join(runtime_requirements()) + "\n")
    chalice = str(Path(sys.executable).with_name("chalice"))
    config = packaged_chalice_config()
    (build / ".chalice" / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    # Chalice imports app.py to read its routes, and whether they carry the authorizer is a
    # stage setting: the import sees the stage's environment, as its Lambdas will.
    stage_env = config["stages"][stage]["environment_variables"]
    env = {**os.environ, **stage_env, "AWS_DEFAULT_REGION": region}
    result = subprocess.run([chalice, "package", "--stage", stage, "--merge-template",
                             str(MERGE_TEMPLATE), str(out_dir / "package")],
                            cwd=build, env=env, capture_output=True, text=True, check=False,
                            timeout=900)
    if result.returncode != 0:
        raise RuntimeError(f"chalice package failed:\n{result.stdout}{result.stderr}")
    template_path = out_dir / "package" / "sam.json"
    template = with_function_names(json.loads(template_path.read_text()),
                                   config["app_name"], stage)
    # Step Lambdas import the step runtime alone, not the whole API (see
    # chalicelib/roots/step_entry.py).
    template = with_handlers(template, {name: f"{entry.__name__}.{name}"
                                        for name in entry.HANDLERS})
    template = with_optional_vpc(template)
    template["Parameters"]["Stage"]["Default"] = stage
    template_path.write_text(json.dumps(template, indent=2) + "\n")
    return template_path


REQUIRED_PARAMETERS = ("MySQLSecret", "MongoSecret", "AuthSecret", "KafkaBrokers",
                       "MskClusterArn")


def read_parameters(path: Path) -> dict[str, str]:
    """A stage's stack parameters: a JSON object of strings, with every required one present."""
    try:
        parameters = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"cannot read the parameters file {path}: {error}") from None
    if not isinstance(parameters, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in parameters.items()):
        raise ValueError(f"{path}: expected a JSON object of string values")
    missing = [name for name in REQUIRED_PARAMETERS if not parameters.get(name)]
    if missing:
        raise ValueError(f"{path}: missing parameter(s) {', '.join(missing)}")
    return parameters


_ID_PATTERNS = {SUBNET_IDS: re.compile(r"subnet-[0-9a-f]{8,17}"),
                SECURITY_GROUP_IDS: re.compile(r"sg-[0-9a-f]{8,17}")}


def _ids(name: str, value: str) -> str:
    """A comma-separated list of subnet or security group ids, checked and tidied."""
    ids = [part.strip() for part in value.split(",") if part.strip()]
    bad = [one for one in ids if not _ID_PATTERNS[name].fullmatch(one)]
    if bad:
        kind = "subnet ids (subnet-...)" if name == SUBNET_IDS else \
            "security group ids (sg-...)"
        raise ValueError(f"{name} takes {kind}, not {', '.join(bad)}")
    return ",".join(ids)


def with_network(parameters: Mapping[str, str], *, subnet_ids: str | None = None,
                 security_group_ids: str | None = None) -> dict[str, str]:
    """The stack's parameters with the VPC's: SubnetIds and SecurityGroupIds from the flags,
    else from the parameters file, else empty (the functions outside any VPC). Both are given
    or neither; they are always passed, so a deploy without them takes the functions out of
    the VPC an earlier deploy put them in."""
    chosen = {SUBNET_IDS: subnet_ids, SECURITY_GROUP_IDS: security_group_ids}
    result = dict(parameters)
    for name, flag in chosen.items():
        result[name] = _ids(name, flag if flag is not None else parameters.get(name, ""))
    given = [name for name in chosen if result[name]]
    if len(given) == 1:
        missing = SECURITY_GROUP_IDS if given == [SUBNET_IDS] else SUBNET_IDS
        raise ValueError(f"{given[0]} without {missing}: a function in a VPC needs both "
                         "subnets and security groups (or neither, for no VPC)")
    return result


def deploy_region(flag: str | None, environ: Mapping[str, str],
                  session_region: str | None) -> str:
    """The region to deploy to: --region, else AWS_REGION, else AWS_DEFAULT_REGION or the
    profile's region (what boto3's session finds, session_region). None of them: a ValueError,
    as no region is assumed."""
    for region in (flag, environ.get("AWS_REGION"), environ.get("AWS_DEFAULT_REGION"),
                   session_region):
        if region and region.strip():
            return region.strip()
    raise ValueError("no AWS region: pass --region, or set AWS_REGION or AWS_DEFAULT_REGION, "
                     "or a region in the AWS profile")


def deploy_aws(stage: str, parameters: dict[str, str], *, region: str,
               say: Callable[[str], None] = print) -> StackResult:
    """Package the stage with its dependencies and create or update its stack on AWS."""
    import boto3

    session = boto3.session.Session(region_name=region)
    account = session.client("sts").get_caller_identity()["Account"]
    template_path = package(stage, PROJECT_ROOT / "build" / "deploy" / stage, region=region)
    name = stack_name(chalice_config()["app_name"], stage)
    request = StackRequest(name=name, template=json.loads(template_path.read_text()),
                           package=template_path.with_name("deployment.zip"),
                           parameters={"Stage": stage, **parameters},
                           bucket=f"{name}-artefacts-{account}-{region}")
    return deploy_stack(session.client("cloudformation"), session.client("s3"), request,
                        region=region, say=say)
