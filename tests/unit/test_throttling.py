"""AWS's throttling in milliseconds: the token buckets, AWS's answers as botocore sees them
(retried by its retry mode, counted, then raised), the engine's translation of a throttled
start, and the execute path keeping a throttled execution for the same request to start."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from moto import mock_aws

from chalicelib.adapters.aws_errors import throttled
from chalicelib.adapters.stepfunctions.engine import StepFunctionsEngine
from chalicelib.domain.lifecycle import ExecutionStatus
from chalicelib.domain.models import SagaDefinition
from chalicelib.domain.requests import ExecuteRequest
from chalicelib.testing import (
    InMemoryDefinitionStore,
    InMemoryExecutionStore,
    InMemoryReadModel,
    ScriptedEngine,
)
from chalicelib.testing.throttling import (
    DEFAULT_QUOTAS,
    SMALLER_REGION_QUOTAS,
    Throttle,
    TokenBucket,
)
from chalicelib.usecases.executions import ExecutionPolicy, ExecutionService, OrchestratorBusy
from chalicelib.usecases.ports import Actor, EngineBusy, RunKind

SEED = json.loads((Path(__file__).parents[1] / "fixtures" / "payment-saga.json").read_text())


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_gives_its_burst_then_its_refill_per_second() -> None:
    clock = Clock()
    bucket = TokenBucket(3, 2, clock)
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    clock.now = 0.5  # one token back
    assert [bucket.take(), bucket.take()] == [True, False]
    clock.now = 100  # never more than the bucket
    assert sum(bucket.take() for _ in range(10)) == 3


def test_the_default_quotas_are_awss_and_the_smaller_regions_smaller() -> None:
    assert DEFAULT_QUOTAS[("sfn", "StartExecution")] == (1300, 300)
    assert DEFAULT_QUOTAS[("sfn", "DescribeExecution")] == (300, 15)
    assert SMALLER_REGION_QUOTAS[("sfn", "StartExecution")] == (800, 150)
    assert DEFAULT_QUOTAS[("sfn", "CreateStateMachine")] == (100, 1)


def _client(service: str, attempts: int) -> Any:
    return boto3.client(service, region_name="us-east-1", aws_access_key_id="test",
                        aws_secret_access_key="test",
                        config=Config(retries={"mode": "standard",
                                               "total_max_attempts": attempts}))


def test_a_call_over_its_bucket_is_answered_as_aws_does_and_retried_by_botocore() -> None:
    clock = Clock()
    throttle = Throttle({("sfn", "ListStateMachines"): (2, 0), ("sts", "GetCallerIdentity"):
                         (1, 0)}, clock=clock)
    with mock_aws():
        sfn = throttle.attach(_client("stepfunctions", 3))
        sfn.list_state_machines()
        sfn.list_state_machines()
        with pytest.raises(ClientError) as refused:
            sfn.list_state_machines()
        error = refused.value.response
        assert (error["Error"]["Code"], error["Error"]["Message"]) == (
            "ThrottlingException", "Rate exceeded")
        assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
        assert error["ResponseMetadata"]["RetryAttempts"] == 2  # botocore retried it
        assert throttled(refused.value)
        assert (throttle.allowed["sfn.ListStateMachines"],
                throttle.throttled["sfn.ListStateMachines"]) == (2, 3)
        sts = throttle.attach(_client("sts", 1))
        sts.get_caller_identity()
        with pytest.raises(ClientError) as sts_refused:
            sts.get_caller_identity()
        assert sts_refused.value.response["Error"]["Code"] == "Throttling"
        # The bucket refills: the next second's calls go through.
        clock.now = 10
        throttle.buckets[("sfn", "ListStateMachines")].refill = 1
        sfn.list_state_machines()


def test_lambda_concurrency_over_the_limit_is_too_many_requests() -> None:
    throttle = Throttle({}, lambda_concurrency=0)
    with mock_aws():
        lam = throttle.attach(_client("lambda", 1))
        with pytest.raises(ClientError) as refused:
            lam.invoke(FunctionName="f", Payload=b"{}")
    error = refused.value.response
    assert error["Error"]["Code"] == "TooManyRequestsException"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 429
    assert throttle.throttled["lambda.Invoke"] == 1


def _saga() -> Any:
    store = InMemoryDefinitionStore()
    saga = store.insert_version(SagaDefinition.model_validate(SEED), expected_revision=None,
                                actor=Actor("t"), action="create")
    return store, saga


def test_the_engine_says_busy_when_its_start_is_throttled_past_the_retries() -> None:
    _, saga = _saga()
    throttle = Throttle({("sfn", "StartExecution"): (0, 0)})
    with mock_aws():
        engine = StepFunctionsEngine(
            throttle.attach(_client("stepfunctions", 2)), stage="test",
            role_arn="arn:aws:iam::123456789012:role/r", region="us-east-1",
            account="123456789012", function_for=lambda step, phase: "arn:f",
            recorder_arn="arn:r")
        with pytest.raises(EngineBusy, match="throttled StartExecution"):
            engine.start(saga, "e1", RunKind.FORWARD)
    assert throttle.throttled["sfn.StartExecution"] == 2


def test_a_throttled_execute_is_kept_unstarted_and_started_once_by_the_same_request() -> None:
    store, saga = _saga()
    executions = InMemoryExecutionStore(store)
    engine = ScriptedEngine(busy_start=1)
    policy = ExecutionPolicy(faults_enabled=False, max_input_bytes=10_000)
    service = ExecutionService(store, executions, engine, policy, InMemoryReadModel())
    request = ExecuteRequest.model_validate({"execution_id": "order-1", "input": {}})
    with pytest.raises(OrchestratorBusy) as busy:
        service.execute(saga.id, request, Actor("caller"))
    assert busy.value.retry_after == 1
    kept = executions.get("order-1")
    assert kept is not None and kept.status is ExecutionStatus.RUNNING
    assert kept.sfn_execution_arn is None and kept.error is None
    started, created = service.execute(saga.id, request, Actor("caller"))
    assert created and started.sfn_execution_arn is not None
    again, created_again = service.execute(saga.id, request, Actor("caller"))
    assert (again.id, created_again) == ("order-1", False)
    assert [s.execution_id for s in engine.starts] == ["order-1"]
    # Without an execution_id the caller cannot ask again: the 503 says so, nothing ran.
    engine.busy_start = 1
    with pytest.raises(OrchestratorBusy, match="execution_id"):
        service.execute(saga.id, ExecuteRequest.model_validate({"input": {}}), Actor("c"))


def test_the_modelled_ceiling_meets_250_per_second_and_names_what_binds() -> None:
    from bench.ceiling import happy_path, limits, main

    path = happy_path()
    assert (path.transitions, path.invocations, path.steps) == (5, 4, 3)
    standard = limits(path, workflow="standard", lambda_ms=60, api_ms=40, txn_ms=5,
                      max_connections=1000, proxy=False)
    assert standard["StartExecution"] == 300 and standard["StateTransition"] == 300
    assert min(standard.values()) >= 250
    # Slower Lambdas make Lambda concurrency (and, without a proxy, the connections) bind.
    slow = limits(path, workflow="express", lambda_ms=600, api_ms=100, txn_ms=5,
                  max_connections=1000, proxy=True)
    assert min(slow, key=lambda name: slow[name]).startswith("Lambda concurrency")
    results = main([])
    assert {(r["workflow"], r["proxy"]): r["binding"] for r in results}[
        ("standard", False)] == "StartExecution"
    assert all(r["ceiling"] >= 250 for r in results)
