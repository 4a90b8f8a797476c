"""The Step Functions engine against a stubbed client: the calls it makes (and only those), the
names of its machines and runs, and the machines themselves, byte for byte as before the
engine port existed (tests/fixtures/machines-sha256.json pins them: existing machines must not
change, and their runs must still be found)."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from chalicelib.adapters.stepfunctions.arns import FunctionNames
from chalicelib.adapters.stepfunctions.compiler import CompileOptions
from chalicelib.adapters.stepfunctions.engine import StepFunctionsEngine
from chalicelib.adapters.stepfunctions.machine_input import execution_input
from chalicelib.adapters.stepfunctions.names import MAX_NAME, RUN_SUFFIX_LENGTH
from chalicelib.demo import FAMILY_OF
from chalicelib.domain.lifecycle import RunStatus
from chalicelib.domain.models import StoredSaga
from chalicelib.domain.requests import MAX_EXECUTION_ID
from chalicelib.roots.step_names import family_of, function_name
from chalicelib.usecases.ports import RunKind, RunRef, RunState, WaitGone

ROOT = Path(__file__).parents[2]
SAGAS = {"payment-saga": ROOT / "tests/fixtures/payment-saga.json",
         "order-fulfilment": ROOT / "examples/order-fulfilment/saga.json",
         "trip-booking": ROOT / "examples/trip-booking/saga.json"}
OPTIONS = {"default": CompileOptions(),
           "no-retry": CompileOptions(retry_enabled=False),
           "no-compensation": CompileOptions(compensation_enabled=False),
           "tuned": CompileOptions(retriable_max_attempts=7, task_timeout_margin_s=9)}
PINNED = json.loads((ROOT / "tests/fixtures/machines-sha256.json").read_text())
NAMES = FunctionNames(app="saga-orchestrator", stage="test", region="us-east-1",
                      account="000000000000")
PREFIX = "arn:aws:states:us-east-1:000000000000"
AT = datetime(2026, 1, 1, tzinfo=UTC)


def _saga(path: Path, revision: int = 3) -> StoredSaga:
    d = json.loads(path.read_text())
    return StoredSaga(id=d["id"], name=d["name"], description=d["description"],
                      version=d["version"], revision=revision, steps=d["steps"], active=True,
                      created_at=AT, updated_at=AT, version_created_at=AT)


def _engine(client: Any, options: CompileOptions | None = None) -> StepFunctionsEngine:
    # Lambdas named as the Container's engine part names them.
    return StepFunctionsEngine(
        client, stage="test", role_arn="arn:aws:iam::000000000000:role/r", region="us-east-1",
        account="000000000000",
        function_for=lambda step, phase: NAMES.arn(
            function_name(family_of(step.target(phase), FAMILY_OF))),
        recorder_arn=NAMES.arn("saga_recorder"), options=options)


class _Recorder:
    """Records the machines made; every other call is a test failure."""

    def __init__(self) -> None:
        self.created: list[dict[str, Any]] = []

    def create_state_machine(self, **params: Any) -> dict[str, Any]:
        self.created.append(params)
        return {}


@pytest.mark.parametrize("saga_name", SAGAS)
@pytest.mark.parametrize("options_name", OPTIONS)
def test_the_machines_are_byte_identical_to_the_pinned_ones(saga_name: str,
                                                            options_name: str) -> None:
    client = _Recorder()
    _engine(client, OPTIONS[options_name]).prepare(_saga(SAGAS[saga_name]))
    pinned = PINNED[f"{saga_name}/{options_name}"]
    made = {c["name"]: hashlib.sha256(c["definition"].encode()).hexdigest()
            for c in client.created}
    assert made == pinned["machines"]
    assert [f"{PREFIX}:stateMachine:{c['name']}" for c in client.created] == pinned["arns"]
    assert {(c["roleArn"], c["type"]) for c in client.created} == {
        ("arn:aws:iam::000000000000:role/r", "STANDARD")}


# Every request's parameters, as sent (Stubber checks the names it expects, not patterns).
SENT: list[dict[str, Any]] = []


@pytest.fixture
def stubbed() -> Iterator[tuple[StepFunctionsEngine, Stubber]]:
    client = boto3.client("stepfunctions", region_name="us-east-1",
                          aws_access_key_id="test", aws_secret_access_key="test")
    SENT.clear()
    client.meta.events.register("provide-client-params.states.*",
                                lambda params, **_: SENT.append(dict(params)))
    with Stubber(client) as stub:
        yield _engine(client), stub
        stub.assert_no_pending_responses()


SAGA = _saga(SAGAS["order-fulfilment"])
FORWARD = PINNED["order-fulfilment/default"]["arns"][0]
UNDO = PINNED["order-fulfilment/default"]["arns"][1]


def _run_arn(machine_arn: str, name: str) -> str:
    return f"{PREFIX}:execution:{machine_arn.rsplit(':', 1)[-1]}:{name}"


def test_plan_is_the_forward_machine_without_a_call(
        stubbed: tuple[StepFunctionsEngine, Stubber]) -> None:
    engine, _ = stubbed
    assert engine.plan(SAGA, "e-1") == RunRef("e-1", FORWARD)


def test_a_forward_run_is_one_start_named_by_the_execution(
        stubbed: tuple[StepFunctionsEngine, Stubber]) -> None:
    engine, stub = stubbed
    stub.add_response("start_execution", {"executionArn": _run_arn(FORWARD, "e-1"),
                                           "startDate": AT},
                      {"stateMachineArn": FORWARD, "name": "e-1",
                       "input": json.dumps(execution_input("e-1"))})
    assert engine.start(SAGA, "e-1", RunKind.FORWARD) == RunRef(
        "e-1", FORWARD, _run_arn(FORWARD, "e-1"))


def test_a_repeated_forward_start_is_the_same_run(
        stubbed: tuple[StepFunctionsEngine, Stubber]) -> None:
    engine, stub = stubbed
    stub.add_client_error("start_execution", "ExecutionAlreadyExists")
    assert engine.start(SAGA, "e-1", RunKind.FORWARD).run == _run_arn(FORWARD, "e-1")


@pytest.mark.parametrize(("kind", "machine", "suffix", "resume_at"), [
    (RunKind.COMPENSATION, UNDO, "c", ""),
    (RunKind.RESUME, FORWARD, "f", "group:4"),  # ship runs in the group of order 4
])
def test_compensations_and_retries_forward_are_new_runs_with_their_suffix(
        stubbed: tuple[StepFunctionsEngine, Stubber], kind: RunKind, machine: str,
        suffix: str, resume_at: str) -> None:
    engine, stub = stubbed
    stub.add_response("start_execution", {"executionArn": _run_arn(machine, "x"),
                                           "startDate": AT})
    ref = engine.start(SAGA, "e-1", kind, at_step="ship" if kind is RunKind.RESUME else None)
    assert ref == RunRef("e-1", machine, _run_arn(machine, "x"))
    [sent] = SENT
    assert sent["stateMachineArn"] == machine
    assert re.fullmatch(rf"e-1-{suffix}[0-9a-f]{{8}}", sent["name"])
    assert json.loads(sent["input"]) == execution_input("e-1", resume_at)


def test_a_child_run_carries_its_parent_and_runs_the_same_machine(
        stubbed: tuple[StepFunctionsEngine, Stubber]) -> None:
    engine, stub = stubbed
    parent = RunRef("p-1", "parent-where", "parent-run")
    stub.add_response("start_execution", {"executionArn": _run_arn(FORWARD, "c-1"),
                                           "startDate": AT},
                      {"stateMachineArn": FORWARD, "name": "c-1", "input": json.dumps(
                          {**execution_input("c-1"),
                           "parent": {"execution_id": "p-1", "run": "parent-run"}})})
    engine.start(SAGA, "c-1", RunKind.FORWARD, parent=parent)


def test_a_missing_machine_is_made_once_and_the_start_tried_again(
        stubbed: tuple[StepFunctionsEngine, Stubber]) -> None:
    engine, stub = stubbed
    stub.add_client_error("start_execution", "StateMachineDoesNotExist")
    for _ in range(2):  # forward and compensation machines
        stub.add_response("create_state_machine", {"stateMachineArn": "x",
                                                    "creationDate": AT})
    stub.add_response("start_execution", {"executionArn": _run_arn(FORWARD, "e-1"),
                                           "startDate": AT})
    assert engine.start(SAGA, "e-1", RunKind.FORWARD).run == _run_arn(FORWARD, "e-1")


def test_describe_asks_for_the_run_or_finds_the_forward_run_by_name(
        stubbed: tuple[StepFunctionsEngine, Stubber]) -> None:
    engine, stub = stubbed
    stub.add_response("describe_execution", {
        "executionArn": "r", "stateMachineArn": FORWARD, "status": "FAILED", "startDate": AT,
        "error": "Saga.Compensated", "cause": "undone"}, {"executionArn": "recorded-run"})
    stub.add_response("describe_execution", {
        "executionArn": "r", "stateMachineArn": FORWARD, "status": "SUCCEEDED",
        "startDate": AT}, {"executionArn": _run_arn(FORWARD, "e-1")})
    stub.add_client_error("describe_execution", "ExecutionDoesNotExist")
    assert engine.describe(RunRef("e-1", FORWARD, "recorded-run")) == RunState(
        RunStatus.FAILED, "Saga.Compensated", "undone")
    # Started, the start not recorded: the forward run, by the execution's id.
    assert engine.describe(RunRef("e-1", FORWARD)) == RunState(RunStatus.SUCCEEDED)
    assert engine.describe(RunRef("e-2", FORWARD)) == RunState(RunStatus.MISSING)
    assert engine.keeps_history


def test_a_run_that_handed_its_deadline_to_the_compensation_machine_is_described_by_it(
        stubbed: tuple[StepFunctionsEngine, Stubber]) -> None:
    engine, stub = stubbed
    stub.add_response("describe_execution", {
        "executionArn": "r", "stateMachineArn": FORWARD, "status": "FAILED", "startDate": AT,
        "error": "Saga.HandedOff", "cause": "the deadline passed"},
        {"executionArn": "recorded-run"})
    stub.add_response("describe_execution", {
        "executionArn": "h", "stateMachineArn": FORWARD + "-undo", "status": "RUNNING",
        "startDate": AT}, {"executionArn": _run_arn(FORWARD + "-undo", "e-1-h")})
    assert engine.describe(RunRef("e-1", FORWARD, "recorded-run")) == RunState(
        RunStatus.RUNNING)


def test_a_saga_with_a_deadline_gets_it_in_its_forward_machine() -> None:
    client = _Recorder()
    saga = _saga(SAGAS["payment-saga"]).model_copy(update={"deadline": "24h"})
    _engine(client).prepare(saga)
    forward, undo = (json.loads(made["definition"]) for made in client.created)
    assert forward["StartAt"] == "Deadline"
    wait = forward["States"]["Deadline"]["Branches"][1]["States"]["deadline:wait"]
    assert wait["Seconds"] == 24 * 3600
    handoff = forward["States"]["deadline:hand-off"]["Parameters"]
    assert handoff["StateMachineArn"] == f"{PREFIX}:stateMachine:{client.created[1]['name']}"
    assert "Deadline" not in undo["States"]


def test_a_waiting_step_is_completed_failed_or_kept_alive_by_its_token(
        stubbed: tuple[StepFunctionsEngine, Stubber]) -> None:
    engine, stub = stubbed
    stub.add_response("send_task_success", {}, {"taskToken": "t1",
                                                "output": json.dumps({"ok": True})})
    stub.add_response("send_task_failure", {}, {"taskToken": "t2", "error": "Saga.Failed",
                                                "cause": "refused"})
    stub.add_response("send_task_heartbeat", {}, {"taskToken": "t3"})
    engine.complete_step("t1", {"ok": True})
    engine.fail_step("t2", "Saga.Failed", "refused")
    engine.heartbeat("t3")


@pytest.mark.parametrize("code", ["TaskTimedOut", "TaskDoesNotExist", "InvalidToken"])
def test_a_token_that_no_longer_waits_is_wait_gone(
        stubbed: tuple[StepFunctionsEngine, Stubber], code: str) -> None:
    engine, stub = stubbed
    stub.add_client_error("send_task_heartbeat", code)
    with pytest.raises(WaitGone):
        engine.heartbeat("late")


def test_other_errors_of_a_callback_are_not_hidden(
        stubbed: tuple[StepFunctionsEngine, Stubber]) -> None:
    engine, stub = stubbed
    stub.add_client_error("send_task_success", "ThrottlingException")
    with pytest.raises(ClientError):
        engine.complete_step("t", {})


def test_every_run_name_of_the_longest_execution_id_fits() -> None:
    assert MAX_EXECUTION_ID + RUN_SUFFIX_LENGTH <= MAX_NAME
