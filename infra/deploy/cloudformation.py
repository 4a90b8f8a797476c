"""Create or update a stack from a packaged template, showing each resource as it changes.

The same code deploys to AWS and to LocalStack; only the boto3 clients differ. The deployment
package and the template (too big for TemplateBody's 51,200 bytes) go to an S3 bucket first,
keyed by content hash, so an unchanged package is neither uploaded nor redeployed.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from infra.deploy.template import Template, with_code_location

CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"]
_NO_CHANGES = ("didn't contain changes", "No updates are to be performed")


class DeployError(RuntimeError):
    """The stack could not be created or updated; the message says which resources and why."""


@dataclass(frozen=True)
class StackRequest:
    name: str
    template: Template
    package: Path
    parameters: Mapping[str, str]
    bucket: str


@dataclass(frozen=True)
class StackResult:
    status: str
    outputs: dict[str, str]
    changed: bool


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def ensure_bucket(s3: Any, bucket: str, region: str) -> None:
    try:
        s3.head_bucket(Bucket=bucket)
        return
    except ClientError as error:
        if error.response["Error"]["Code"] not in ("404", "NoSuchBucket", "NotFound"):
            raise
    extra = {} if region == "us-east-1" else {
        "CreateBucketConfiguration": {"LocationConstraint": region}}
    s3.create_bucket(Bucket=bucket, **extra)


def upload_once(s3: Any, bucket: str, key: str, body: bytes) -> None:
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except ClientError:
        s3.put_object(Bucket=bucket, Key=key, Body=body)


def _stack_status(cfn: Any, name: str) -> str | None:
    try:
        return str(cfn.describe_stacks(StackName=name)["Stacks"][0]["StackStatus"])
    except ClientError as error:
        if "does not exist" in str(error):
            return None
        raise


def _outputs(cfn: Any, name: str) -> dict[str, str]:
    stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def _wait_for_change_set(cfn: Any, stack: str, change_set: str, timeout_s: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        described: dict[str, Any] = cfn.describe_change_set(StackName=stack,
                                                            ChangeSetName=change_set)
        if described["Status"] in ("CREATE_COMPLETE", "FAILED"):
            return described
        if time.monotonic() > deadline:
            raise DeployError(f"change set {change_set} still {described['Status']} "
                              f"after {timeout_s:.0f}s")
        time.sleep(1)


def _follow_stack(cfn: Any, stack: str, since: float, say: Callable[[str], None],
                  timeout_s: float) -> str:
    """Print resource events until the stack settles; its final status."""
    seen: set[str] = set()
    deadline = time.monotonic() + timeout_s
    failures: list[str] = []
    while True:
        events = cfn.describe_stack_events(StackName=stack)["StackEvents"]
        for event in reversed(events):
            if event["EventId"] in seen or event["Timestamp"].timestamp() < since - 1:
                continue
            seen.add(event["EventId"])
            reason = event.get("ResourceStatusReason") or ""
            say(f"{event['ResourceStatus']:<22} {event['LogicalResourceId']:<34} {reason}".rstrip())
            if event["ResourceStatus"].endswith("FAILED") and reason:
                failures.append(f"{event['LogicalResourceId']}: {reason}")
        status = _stack_status(cfn, stack) or "DELETE_COMPLETE"
        if not status.endswith("IN_PROGRESS"):
            if "ROLLBACK" in status or "FAILED" in status:
                raise DeployError(f"stack {stack} ended {status}: " + "; ".join(failures))
            return status
        if time.monotonic() > deadline:
            raise DeployError(f"stack {stack} still {status} after {timeout_s:.0f}s")
        time.sleep(1)


def delete_stack(cfn: Any, name: str) -> None:
    cfn.delete_stack(StackName=name)
    cfn.get_waiter("stack_delete_complete").wait(
        StackName=name, WaiterConfig={"Delay": 2, "MaxAttempts": 300})


def stack_status(cfn: Any, name: str) -> str | None:
    return _stack_status(cfn, name)


def deploy_stack(cfn: Any, s3: Any, request: StackRequest, *, region: str,
                 say: Callable[[str], None] = print, timeout_s: float = 1800) -> StackResult:
    package = request.package.read_bytes()
    code_key = f"{request.name}/code-{_digest(package)}.zip"
    ensure_bucket(s3, request.bucket, region)
    upload_once(s3, request.bucket, code_key, package)
    body = json.dumps(with_code_location(request.template, request.bucket, code_key)).encode()
    template_key = f"{request.name}/template-{_digest(body)}.json"
    upload_once(s3, request.bucket, template_key, body)
    template_url = f"{s3.meta.endpoint_url}/{request.bucket}/{template_key}"

    status = _stack_status(cfn, request.name)
    if status == "ROLLBACK_COMPLETE":  # a failed first create can only be deleted
        delete_stack(cfn, request.name)
        status = None
    if status is not None and status.endswith("IN_PROGRESS"):
        raise DeployError(f"stack {request.name} is busy ({status}); try again when it settles")
    kind = "CREATE" if status in (None, "REVIEW_IN_PROGRESS") else "UPDATE"
    change_set = f"saga-deploy-{int(time.time() * 1000)}"
    started = time.time()
    cfn.create_change_set(
        StackName=request.name, ChangeSetName=change_set, ChangeSetType=kind,
        TemplateURL=template_url, Capabilities=CAPABILITIES,
        Parameters=[{"ParameterKey": k, "ParameterValue": v}
                    for k, v in request.parameters.items()])
    described = _wait_for_change_set(cfn, request.name, change_set, timeout_s)
    if described["Status"] == "FAILED":
        reason = described.get("StatusReason", "")
        if any(marker in reason for marker in _NO_CHANGES):
            cfn.delete_change_set(StackName=request.name, ChangeSetName=change_set)
            say(f"stack {request.name} is current")
            return StackResult(status or "", _outputs(cfn, request.name), changed=False)
        raise DeployError(f"change set for {request.name} failed: {reason}")
    say(f"{kind.lower()} stack {request.name}: {len(described.get('Changes', []))} change(s)")
    cfn.execute_change_set(StackName=request.name, ChangeSetName=change_set)
    final = _follow_stack(cfn, request.name, started, say, timeout_s)
    return StackResult(final, _outputs(cfn, request.name), changed=True)
