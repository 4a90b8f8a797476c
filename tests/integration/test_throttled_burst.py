"""A burst of 1,000 executes through the API (served over HTTP on 127.0.0.1, the write model in
MariaDB) against a StartExecution bucket smaller than the burst: AWS's throttling answered by
the simulator (chalicelib.testing.throttling) in front of the engine's client, whose allowed
calls a stub Step Functions answers (1,000 runs through LocalStack take minutes here).

Throttles happen; every caller gets 202 or a 503 with Retry-After, never a 500; a caller told
503 sends the same request again; in the end every execution started exactly once: one row,
one run, one run-started event each."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse

from chalicelib.adapters import aws
from chalicelib.adapters.mysql.connector import MySQLConnector
from chalicelib.adapters.mysql.definitions import MySQLDefinitionStore
from chalicelib.adapters.mysql.migrate import migrate
from chalicelib.adapters.stepfunctions.engine import StepFunctionsEngine
from chalicelib.config import Settings, load_settings
from chalicelib.domain import event_types
from chalicelib.domain.models import SagaDefinition
from chalicelib.roots import runtime
from chalicelib.roots.container import Container
from chalicelib.roots.parts import part
from chalicelib.testing.throttling import ResponseBody, Throttle
from chalicelib.usecases.ports import Actor
from infra.local_api import running
from tests.support.databases import own_database

EXECUTES = 1000
CALLERS = 16
# A burst bucket far smaller than the burst, refilled slower than the API serves.
BUCKET, REFILL = 40, 60.0
MAX_TRIES = 60  # a caller's same request, at most (each after its Retry-After)


class StubStates:
    """Step Functions' StartExecution as the engine sees it: a run per name; the same name
    and input again is the same run, another input ExecutionAlreadyExists."""

    def __init__(self) -> None:
        self.runs: dict[str, str] = {}  # run name -> its input
        self.calls: Counter[str] = Counter()
        self._lock = threading.Lock()

    def __call__(self, request: Any, event_name: str = "", **_: Any) -> AWSResponse | None:
        if not event_name.endswith(".StartExecution"):
            return None
        body = json.loads(request.body)
        name, arn = body["name"], body["stateMachineArn"]
        with self._lock:
            self.calls[name] += 1
            known = self.runs.setdefault(name, body["input"])
        if known != body["input"]:
            return AWSResponse(request.url, 400, {"Content-Type": "application/x-amz-json-1.0"},
                               ResponseBody(json.dumps({"__type": "ExecutionAlreadyExists",
                                                 "message": name}).encode()))
        run = arn.replace(":stateMachine:", ":execution:") + f":{name}"
        return AWSResponse(request.url, 200, {"Content-Type": "application/x-amz-json-1.0"},
                           ResponseBody(json.dumps({"executionArn": run, "startDate": 0}).encode()))


class BurstContainer(Container):
    """The API's parts, its engine's client behind the throttle and the stub."""

    def __init__(self, settings: Settings, throttle: Throttle, stub: StubStates) -> None:
        super().__init__(settings)
        self._throttle, self._stub = throttle, stub

    @part
    def engine(self) -> StepFunctionsEngine:  # type: ignore[override]
        client = aws.client("stepfunctions", self.settings.aws)
        self._throttle.attach(client)
        client.meta.events.register("before-send.sfn", self._stub)
        return StepFunctionsEngine(
            client, stage=self.settings.stage, role_arn="arn:aws:iam::000000000000:role/r",
            region=self.settings.aws.region, account="000000000000",
            function_for=lambda step, phase: "arn:aws:lambda:us-east-1:000000000000:function:f",
            recorder_arn="arn:aws:lambda:us-east-1:000000000000:function:r")


@pytest.fixture(scope="module")
def burst(settings: Settings) -> Iterator[tuple[str, Throttle, StubStates, MySQLConnector]]:
    with own_database(settings, "burst") as name, pytest.MonkeyPatch.context() as env:
        # The caller is one address: its rate limit is not what this test measures. Two
        # attempts per call (the client's own retries), so a throttle reaches the caller.
        env.setenv("SAGA__LIMITS__RATE_LIMIT_REQUESTS", "0")
        env.setenv("SAGA__AWS__MAX_ATTEMPTS", "2")
        local = load_settings()
        connector = MySQLConnector(local.database.mysql, database=name)
        migrate(connector.connection())
        MySQLDefinitionStore(connector).insert_version(SagaDefinition.model_validate({
            "id": "burst", "name": "Burst", "version": "1.0.0",
            "description": "a saga executed a thousand times at once", "steps": [
                {"id": "pay", "name": "Pay", "description": "take the money", "order": 1,
                 "action": "process_payment", "compensation": "refund_payment",
                 "max_retries": 0, "timeout": "10s"}]}),
            expected_revision=None, actor=Actor("test"), action="create")
        throttle = Throttle({("sfn", "StartExecution"): (BUCKET, REFILL)})
        stub = StubStates()
        runtime.use(BurstContainer(local, throttle, stub))
        try:
            with running("test") as url:
                yield url, throttle, stub, connector
        finally:
            runtime.use(None)
            connector.close()


def _execute(url: str, execution_id: str) -> tuple[int, str | None, Any]:
    body = json.dumps({"execution_id": execution_id, "input": {"amount": "1.00"}}).encode()
    request = urllib.request.Request(f"{url}/api/v1/saga/sagas/burst/execute", data=body,
                                     method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, answer.headers.get("Retry-After"), json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("Retry-After"), json.loads(error.read() or b"{}")


def test_a_burst_over_the_start_bucket_starts_every_execution_exactly_once(
        burst: tuple[str, Throttle, StubStates, MySQLConnector]) -> None:
    url, throttle, stub, connector = burst
    seen: Counter[int] = Counter()
    busy: list[tuple[str | None, str]] = []  # (Retry-After, code) of each 503
    lock = threading.Lock()

    def caller(index: int) -> int:
        execution_id = f"burst-{index:04d}"
        for _ in range(MAX_TRIES):
            status, retry_after, answer = _execute(url, execution_id)
            with lock:
                seen[status] += 1
            if status != 503:
                return status
            with lock:
                busy.append((retry_after, answer["error"]["code"]))
            time.sleep(float(retry_after or 1))
        return 503

    started = time.monotonic()
    with ThreadPoolExecutor(CALLERS) as pool:
        final = list(pool.map(caller, range(EXECUTES)))
    took = time.monotonic() - started
    print(f"BURST {EXECUTES} executes in {took:.1f}s: answers {dict(seen)}, StartExecution "
          f"allowed {throttle.allowed['sfn.StartExecution']}, throttled "
          f"{throttle.throttled['sfn.StartExecution']}")
    assert throttle.throttled["sfn.StartExecution"] > 0  # the bucket was smaller
    assert set(seen) <= {202, 503}, seen  # never a 500
    assert seen[503] > 0 and all(after == "1" and code == "orchestrator_unavailable"
                                 for after, code in busy)
    assert final == [202] * EXECUTES
    # Every execution started exactly once: one run each in the engine, one row each.
    assert len(stub.runs) == EXECUTES
    assert set(stub.runs) == {f"burst-{index:04d}" for index in range(EXECUTES)}
    with connector.transaction() as cur:
        cur.execute("SELECT COUNT(*) AS n, COUNT(sfn_execution_arn) AS started, "
                    "COUNT(DISTINCT sfn_execution_arn) AS runs FROM executions "
                    "WHERE saga_id = 'burst'")
        assert cur.fetchone() == {"n": EXECUTES, "started": EXECUTES, "runs": EXECUTES}
        cur.execute("SELECT partition_key, COUNT(*) AS n FROM outbox WHERE type = %s "
                    "GROUP BY partition_key HAVING n <> 1", (event_types.RUN_STARTED,))
        assert cur.fetchall() == ()
        cur.execute("SELECT COUNT(*) AS n FROM outbox WHERE type = %s",
                    (event_types.RUN_STARTED,))
        assert cur.fetchone()["n"] == EXECUTES
