"""Deploy the app's Lambdas into the local LocalStack (stage `local`).

The same functions Chalice deploys on AWS, named {app}-{stage}-{function}, from a zip of app.py,
chalicelib/ and configs/. Their dependencies come from the project's virtual environment, which
the LocalStack executor plugin runs them with (on AWS, `chalice package` bundles them).
"""

from __future__ import annotations

import base64
import hashlib
import importlib
import io
import json
import os
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.adapters import aws
from chalicelib.config import Settings
from infra.stack.paths import PROJECT_ROOT

LAMBDA_ROLE = "saga-orchestrator-lambda"
STEP_TIMEOUT_S = 900  # steps are bounded by their Task's TimeoutSeconds, not by this
OTHER_TIMEOUT_S = 60
_TRUST = {"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Action": "sts:AssumeRole",
    "Principal": {"Service": ["lambda.amazonaws.com", "states.amazonaws.com"]}}]}


def load_app() -> Any:
    """The Chalice app object of app.py (a top-level module, not part of the package)."""
    if str(PROJECT_ROOT) not in sys.path:
        sys.path.insert(0, str(PROJECT_ROOT))
    return importlib.import_module("app").app


def build_zip(root: Path = PROJECT_ROOT) -> bytes:
    """The deployment package: deterministic (fixed times, sorted), so unchanged code keeps
    its hash and is not redeployed."""
    files = [root / "app.py"]
    for folder in ("chalicelib", "configs"):
        files += [p for p in sorted((root / folder).rglob("*"))
                  if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in files:
            info = zipfile.ZipInfo(str(path.relative_to(root)), date_time=(2020, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            archive.writestr(info, path.read_bytes())
    return buffer.getvalue()


def code_sha256(package: bytes) -> str:
    return base64.b64encode(hashlib.sha256(package).digest()).decode()


@dataclass(frozen=True)
class FunctionSpec:
    name: str
    handler: str
    timeout: int


def function_specs(app: Any, settings: Settings) -> list[FunctionSpec]:
    return [FunctionSpec(name=f"{settings.aws.app_name}-{settings.stage}-{fn.name}",
                         handler=fn.handler_string,
                         timeout=STEP_TIMEOUT_S if fn.name.startswith("step_") else OTHER_TIMEOUT_S)
            for fn in app.pure_lambda_functions]


def lambda_environment(settings: Settings) -> dict[str, str]:
    # The deployer's own overrides (SAGA__*, classic DB_* ...) travel with the functions, so
    # they reach the same databases as the API that started the execution.
    passed = {k: v for k, v in os.environ.items()
              if k.startswith("SAGA__") or k in ("DB_HOST", "DB_PORT", "DB_USER", "DB_PASSWORD",
                                                 "DB_NAME", "MONGODB_URI", "MONGODB_DB",
                                                 "KAFKA_BROKERS")}
    return {**passed, "SAGA_STAGE": settings.stage, "POWERTOOLS_SERVICE_NAME": "saga-steps",
            "POWERTOOLS_METRICS_NAMESPACE": "SagaOrchestrator"}


def ensure_role(iam: Any, name: str) -> str:
    try:
        return iam.get_role(RoleName=name)["Role"]["Arn"]
    except ClientError as error:
        if error.response["Error"]["Code"] != "NoSuchEntity":
            raise
    return iam.create_role(RoleName=name,
                           AssumeRolePolicyDocument=json.dumps(_TRUST))["Role"]["Arn"]


def deploy_functions(settings: Settings, app: Any, say: Callable[[str], None] = print) -> None:
    lam = aws.client("lambda", settings.aws)
    iam = aws.client("iam", settings.aws)
    role = ensure_role(iam, LAMBDA_ROLE)
    ensure_role(iam, settings.aws.state_machine_role_arn.rsplit("/", 1)[-1])
    package = build_zip()
    digest = code_sha256(package)
    env = {"Variables": lambda_environment(settings)}
    for spec in function_specs(app, settings):
        try:
            current = lam.get_function(FunctionName=spec.name)["Configuration"]
        except ClientError as error:
            if error.response["Error"]["Code"] != "ResourceNotFoundException":
                raise
            lam.create_function(FunctionName=spec.name, Runtime="python3.11", Role=role,
                                Handler=spec.handler, Code={"ZipFile": package},
                                Timeout=spec.timeout, MemorySize=512, Environment=env)
            say(f"created  {spec.name}")
            continue
        changed = False
        if current.get("CodeSha256") != digest:
            lam.get_waiter("function_updated_v2").wait(FunctionName=spec.name)
            lam.update_function_code(FunctionName=spec.name, ZipFile=package)
            changed = True
        if (current.get("Environment", {}).get("Variables") != env["Variables"]
                or current.get("Handler") != spec.handler
                or current.get("Timeout") != spec.timeout):
            lam.get_waiter("function_updated_v2").wait(FunctionName=spec.name)
            lam.update_function_configuration(FunctionName=spec.name, Handler=spec.handler,
                                              Timeout=spec.timeout, Environment=env)
            changed = True
        say(f"{'updated ' if changed else 'current '} {spec.name}")
    for spec in function_specs(app, settings):
        lam.get_waiter("function_active_v2").wait(FunctionName=spec.name,
                                                  WaiterConfig={"Delay": 1, "MaxAttempts": 60})
        lam.get_waiter("function_updated_v2").wait(FunctionName=spec.name,
                                                   WaiterConfig={"Delay": 1, "MaxAttempts": 60})


def refresh_machines(definitions: Any, orchestrator: Any, say: Callable[[str], None]) -> int:
    """Recompile the machines of every saga's latest version (the compiler may have changed)."""
    count, cursor = 0, None
    for _ in range(10_000):  # bounded: one page of 100 sagas per round
        page = definitions.list(limit="100", cursor=cursor)
        for saga in page.items:
            orchestrator.ensure_machines(saga)
            count += 1
        cursor = page.next_cursor
        if not cursor:
            break
    say(f"state machines current for {count} saga(s)")
    return count


DEMO_ACCOUNTS = {"demo-customer": "1000.00", "merchant": "0.00"}
DEMO_STOCK = {"sku-1": 100}


def seed_demo_data(connector: Any, say: Callable[[str], None] = print) -> None:
    """Accounts and stock the documented examples use; existing balances are left alone."""
    with connector.transaction() as cur:
        for account, balance in DEMO_ACCOUNTS.items():
            cur.execute("INSERT IGNORE INTO demo_accounts (account_id, balance, currency) "
                        "VALUES (%s, %s, 'EUR')", (account, balance))
        for sku, available in DEMO_STOCK.items():
            cur.execute("INSERT IGNORE INTO demo_stock (sku, available) VALUES (%s, %s)",
                        (sku, available))
    say(f"demo data present: accounts {', '.join(DEMO_ACCOUNTS)}; stock {', '.join(DEMO_STOCK)}")
