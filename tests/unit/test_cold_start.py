"""What importing a Lambda's handler module loads, checked by name in a fresh interpreter, not
timed (`python -m bench.cold_start` times it): the API loads its routing, its edge and the
settings, and the rest when a request first needs it; a step Lambda loads the step runtime and
nothing of the API. And the API's first requests still work, loading what they need then.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).parents[2]

# Packages and modules of ours the API must not import until a request needs them.
API_LOADS_ON_USE = (
    "kafka",  # events reach Kafka through the MySQL outbox, relayed by another function
    "pymongo", "bson",  # the read model, for the execution routes
    "pymysql",  # the write model (and every route's rate limit), on first request
    "boto3", "botocore",  # Step Functions, STS, the WebSocket management API
    "jwt", "cryptography",  # tokens, only when auth is on and one is verified
    "aws_lambda_powertools", "saga_participant",
    "chalicelib.roots.step_entry", "chalicelib.roots.step_handler",  # the step runtime
    "chalicelib.roots.health",
    "chalicelib.http.openapi", "chalicelib.http.tokens",
    "chalicelib.adapters.stepfunctions",  # the ASL compiler and the engine
    "chalicelib.adapters.kafka", "chalicelib.adapters.mongo", "chalicelib.adapters.push",
    "chalicelib.adapters.participants",
    "chalicelib.domain.models", "chalicelib.domain.executions", "chalicelib.domain.requests",
    "chalicelib.domain.validation", "chalicelib.domain.lifecycle",
    "chalicelib.usecases.ports", "chalicelib.usecases.definitions",
    "chalicelib.usecases.executions", "chalicelib.usecases.steps",
)
STEP_NEVER_LOADS = (
    "chalice", "kafka", "pymongo", "jwt",
    # Only a `lambda:` participant's call needs boto3 (it imports it then); the participant
    # SDK's helper (Powertools' idempotency) is a participant's, not the step runtime's.
    "boto3", "saga_participant.participant",
    "aws_lambda_powertools.utilities.idempotency",
    "chalicelib.http.api", "chalicelib.http.auth", "chalicelib.roots.container",
    "chalicelib.adapters.kafka", "chalicelib.adapters.mongo", "chalicelib.adapters.push",
)

# In the child: import the app, note what is loaded, then answer two first requests as the
# Lambda handler does (`app.app` called with an API Gateway proxy event).
FIRST_REQUESTS = """
import json, sys
import app
at_import = sorted(sys.modules)

def get(path):
    context = {"resourcePath": path, "httpMethod": "GET", "path": path, "requestId": "t",
               "identity": {"sourceIp": "127.0.0.1"},
               "authorizer": {"principalId": "t", "role": "reader"}}
    event = {"resource": path, "path": path, "httpMethod": "GET", "headers": {},
             "multiValueHeaders": {}, "queryStringParameters": None,
             "multiValueQueryStringParameters": None, "pathParameters": None,
             "stageVariables": None, "body": None, "isBase64Encoded": False,
             "requestContext": context}
    return app.app(event, None)

console = get("/console")
sagas = get("/api/v1/saga/sagas")
print(json.dumps({"at_import": at_import, "after": sorted(sys.modules),
                  "console": [console["statusCode"], "<html" in console["body"]],
                  "sagas": [sagas["statusCode"], json.loads(sagas["body"])["error"]["code"]]}))
"""


def _closed_port() -> int:
    """A local port nothing listens on: MySQL there refuses at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _run(code: str, **env: str) -> Any:
    # The settings' MySQL from the classic variables only: no SAGA__ override may point it at
    # a server that answers.
    base = {k: v for k, v in os.environ.items() if not k.startswith("SAGA__DATABASE__")}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, timeout=120, check=True,
                         env={**base, "SAGA_STAGE": "local", **env}).stdout
    return json.loads(out.splitlines()[-1])


def _among(loaded: list[str], names: tuple[str, ...]) -> list[str]:
    return sorted(name for name in names
                  if any(m == name or m.startswith(f"{name}.") for m in loaded))


def test_the_api_imports_no_client_and_no_use_case_until_a_request_needs_it() -> None:
    result = _run(FIRST_REQUESTS, DB_HOST="127.0.0.1", DB_PORT=str(_closed_port()))
    assert _among(result["at_import"], API_LOADS_ON_USE) == []
    # The first requests still answer: the console's page needs nothing more; a saga listing
    # loads the MySQL driver and the Container's pool, and MySQL refusing it is a 503.
    assert result["console"] == [200, True]
    assert result["sagas"] == [503, "database_unavailable"]
    assert "pymysql" in _among(result["after"], API_LOADS_ON_USE)
    assert _among(result["after"], ("kafka", "pymongo", "jwt")) == []


def test_a_step_lambda_imports_the_step_runtime_and_nothing_of_the_api() -> None:
    loaded = _run("import json, sys, chalicelib.roots.step_entry\n"
                  "print(json.dumps(sorted(sys.modules)))")
    assert _among(loaded, STEP_NEVER_LOADS) == []
    assert "chalicelib.roots.step_handler" in loaded
