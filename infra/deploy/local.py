"""Deploy a local stage (local, test, bench) into the local LocalStack.

The same artefacts as on AWS: `chalice package`'s template and deployment package, created by
CloudFormation. The differences are configuration only: the secrets CloudFormation resolves are
made here from the settings, the package omits the dependencies (the LocalStack executor runs
functions with the project's environment), and LocalStack's free edition lacks the WebSocket
API and MSK, whose stand-ins (the local gateway, the event workers) `saga serve` runs.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.adapters import aws
from chalicelib.config import Settings
from infra.deploy.aws import package, stack_name
from infra.deploy.cloudformation import (
    DeployError,
    StackRequest,
    StackResult,
    delete_stack,
    deploy_stack,
    stack_status,
)
from infra.deploy.template import for_localstack, functions
from infra.stack.paths import PROJECT_ROOT

BUILD_ROOT = PROJECT_ROOT / "build" / "deploy"


def load_app() -> Any:
    """The Chalice app object of app.py (a top-level module, not part of the package)."""
    if str(PROJECT_ROOT) not in sys.path:
        sys.path.insert(0, str(PROJECT_ROOT))
    return importlib.import_module("app").app


def local_stack_name(settings: Settings) -> str:
    return stack_name(settings.aws.app_name, settings.stage)


def local_environment(settings: Settings) -> dict[str, str]:
    # The deployer's own SAGA__* overrides travel with the functions, so they reach the same
    # databases, topic and gateway as the API that started the execution.
    passed = {k: v for k, v in os.environ.items() if k.startswith("SAGA__")}
    return {**passed,
            "SAGA__WEBSOCKET__MANAGEMENT_ENDPOINT": settings.websocket.management_endpoint,
            "SAGA__AUTH__HS256_SECRET": settings.auth.hs256_secret}


def put_secret(secrets: Any, name: str, value: dict[str, Any]) -> None:
    try:
        secrets.create_secret(Name=name, SecretString=json.dumps(value))
    except ClientError as error:
        if error.response["Error"]["Code"] != "ResourceExistsException":
            raise
        secrets.put_secret_value(SecretId=name, SecretString=json.dumps(value))


def local_parameters(settings: Settings) -> dict[str, str]:
    """The stack's parameters; the two secrets are written to LocalStack from the settings."""
    secrets = aws.client("secretsmanager", settings.aws)
    prefix = local_stack_name(settings)
    mysql, mongo = settings.database.mysql, settings.database.mongodb
    put_secret(secrets, f"{prefix}/mysql", {
        "host": mysql.host, "port": str(mysql.port), "username": mysql.username,
        "password": mysql.password, "dbname": mysql.database})
    put_secret(secrets, f"{prefix}/mongodb", {"uri": mongo.uri, "database": mongo.database})
    return {"Stage": settings.stage, "MySQLSecret": f"{prefix}/mysql",
            "MongoSecret": f"{prefix}/mongodb",
            "KafkaBrokers": ",".join(settings.kafka.brokers),
            "KafkaApiVersion": settings.kafka.api_version, "KafkaTopic": settings.kafka.topic}


def gateway_url(settings: Settings, outputs: dict[str, str]) -> str:
    """The REST API as LocalStack's API Gateway serves it (its EndpointURL output is not
    resolvable offline)."""
    return (f"{settings.aws.endpoint_url}/_aws/execute-api/{outputs['RestAPIId']}/api"
            if "RestAPIId" in outputs else "-")


def deploy_local(settings: Settings, say: Callable[[str], None] = print) -> StackResult:
    out_dir: Path = BUILD_ROOT / settings.stage
    template_path = package(settings.stage, out_dir, region=settings.aws.region,
                            with_dependencies=False)
    template = for_localstack(json.loads(template_path.read_text()),
                              local_environment(settings))
    name = local_stack_name(settings)
    request = StackRequest(name=name, template=template,
                           package=template_path.with_name("deployment.zip"),
                           parameters=local_parameters(settings),
                           bucket=f"{name}-artefacts")
    cfn = aws.client("cloudformation", settings.aws)
    try:
        result = deploy_stack(cfn, aws.client("s3", settings.aws), request,
                              region=settings.aws.region, say=say, timeout_s=600)
    except (DeployError, ClientError) as failed:
        # LocalStack cannot always update a stack whose API changed (routes added or removed:
        # "Stage already exists", resources it lost track of); the local stack holds no data,
        # so it is made again from scratch, once.
        if stack_status(cfn, name) is None:
            raise  # nothing to make again: the failure is not an update LocalStack refused
        say(f"recreating stack {name}: LocalStack could not update it ({str(failed)[:200]})")
        delete_stack(cfn, name)
        result = deploy_stack(cfn, aws.client("s3", settings.aws), request,
                              region=settings.aws.region, say=say, timeout_s=600)
    # A function's update finishes after CloudFormation says so; invoke only settled ones.
    lam = aws.client("lambda", settings.aws)
    for _, resource in functions(template):
        name = resource["Properties"]["FunctionName"]
        for waiter in ("function_active_v2", "function_updated_v2"):
            lam.get_waiter(waiter).wait(FunctionName=name,
                                        WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    return result


def refresh_machines(definitions: Any, engine: Any, say: Callable[[str], None]) -> int:
    """Recompile the machines of every saga's latest version (the compiler may have changed)."""
    count, cursor = 0, None
    for _ in range(10_000):  # bounded: one page of 100 sagas per round
        page = definitions.list(limit="100", cursor=cursor)
        for saga in page.items:
            engine.prepare(saga)
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
