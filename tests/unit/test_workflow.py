"""Express or Standard: the forward path's worst case, the choice `workflow` makes, what
validation refuses, the Express machine the compiler writes and the engine's calls for it, and
the reconciler's verdict on a run the engine keeps no record of."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from chalicelib.adapters.stepfunctions.compiler import (
    RUN_EXISTS,
    START_RUN,
    CompileOptions,
    MachineTargets,
    compile_forward,
)
from chalicelib.adapters.stepfunctions.engine import StepFunctionsEngine
from chalicelib.domain.executions import Execution, StepRun
from chalicelib.domain.lifecycle import ExecutionStatus, RunStatus, StepKind, StepStatus
from chalicelib.domain.models import SagaDefinition, Step, StepDefinition, StoredSaga
from chalicelib.domain.validation import ValidationPolicy, validate_definition
from chalicelib.domain.workflow import (
    Workflow,
    WorstCaseLimits,
    choose,
    forward_worst_case_s,
    stored_fields,
)
from chalicelib.testing import InMemoryExecutionStore, ScriptedEngine
from chalicelib.usecases.ports import RunKind, RunState
from chalicelib.usecases.reconciler import Reconciler

ROOT = Path(__file__).parents[2]
LIMITS = WorstCaseLimits(task_timeout_margin_s=5, retriable_max_attempts=5,
                         max_fanout_items=100, max_fanout_concurrency=40)
AT = datetime(2026, 1, 1, tzinfo=UTC)


def _step(step_id: str, order: int, **fields: Any) -> Step:
    return Step.of(StepDefinition(**{"id": step_id, "order": order, "action": "a",
                                     "compensation": "c", "max_retries": 0, "timeout": "10s",
                                     **fields}))


def test_the_worst_case_counts_every_attempt_its_backoff_and_a_fan_out_s_rounds() -> None:
    # 10 s + 5 s margin per attempt; 2 retries back off 1 s then 2 s.
    assert forward_worst_case_s([_step("a", 1, max_retries=2)], LIMITS) == 3 * 15 + 1 + 2
    # A group is as long as its longest step; groups add up.
    steps = [_step("a", 1), _step("b", 1, timeout="40s"), _step("c", 2)]
    assert forward_worst_case_s(steps, LIMITS) == 45 + 15
    # A retriable step: 5 attempts, backing off 2, 4, 8, 16 s.
    retriable = _step("r", 1, kind="retriable", compensation=None)
    assert forward_worst_case_s([retriable], LIMITS) == 5 * 15 + 2 + 4 + 8 + 16
    # 100 items, 10 at a time: 10 rounds of one attempt each.
    fanout = _step("f", 1, for_each="$.input.lines", max_concurrency=10)
    assert forward_worst_case_s([fanout], LIMITS) == 10 * 15
    timer = Step.of(StepDefinition(id="t", order=1, kind="wait", wait="2m"))
    assert forward_worst_case_s([timer], LIMITS) == 120 + 5
    until = Step.of(StepDefinition(id="t", order=1, kind="wait", until="$.input.at"))
    assert forward_worst_case_s([until], LIMITS) is None


def test_auto_picks_express_only_when_the_path_surely_fits_and_nothing_waits() -> None:
    short = [_step("a", 1), _step("b", 2)]
    chosen = choose(Workflow.AUTO, short, LIMITS)
    assert (chosen.chosen, chosen.worst_case_s, chosen.warnings) == (Workflow.EXPRESS, 30, [])
    long = [_step("a", 1, timeout="200s"), _step("b", 2, timeout="30s")]  # 205 + 35 = 240
    assert choose(Workflow.AUTO, long, LIMITS).chosen is Workflow.EXPRESS
    longer = [_step("a", 1, timeout="200s"), _step("b", 2, timeout="31s")]
    picked = choose(Workflow.AUTO, longer, LIMITS)
    assert picked.chosen is Workflow.STANDARD and "241 s" in picked.reason
    timer = Step.of(StepDefinition(id="t", order=2, kind="wait", wait="1s"))
    waits = choose(Workflow.AUTO, [_step("a", 1), timer], LIMITS)
    assert (waits.chosen, waits.reason) == (Workflow.STANDARD, "step t waits")
    assert choose(Workflow.STANDARD, short, LIMITS).chosen is Workflow.STANDARD


def test_express_over_five_minutes_is_kept_with_a_warning() -> None:
    slow = [_step("a", 1, timeout="300s")]
    chosen = choose(Workflow.EXPRESS, slow, LIMITS)
    assert chosen.chosen is Workflow.EXPRESS and chosen.worst_case_s == 305
    assert len(chosen.warnings) == 1 and "305 s" in chosen.warnings[0]
    assert choose(Workflow.EXPRESS, [_step("a", 1)], LIMITS).warnings == []
    assert stored_fields(chosen)["warnings"] == chosen.warnings
    assert stored_fields(None)["workflow_type"] == "standard"


def _definition(workflow: str, *steps: dict[str, Any]) -> SagaDefinition:
    return SagaDefinition(id="s", name="Saga", description="a saga of two steps",
                          version="1.0.0", workflow=workflow, steps=[
                              StepDefinition(**{"name": "Step", "description": "does a thing",
                                                "max_retries": 0, "timeout": "10s", **step})
                              for step in steps])


def test_validation_refuses_an_unknown_workflow_and_a_callback_on_express() -> None:
    call = {"id": "a", "order": 1, "action": "process_payment",
            "compensation": "refund_payment"}
    callback = {"id": "b", "order": 2, "kind": StepKind.CALLBACK.value,
                "action": "https://partner.example/ship", "compensation": "refund_payment"}
    policy = ValidationPolicy(enabled=False)
    wrong = validate_definition(_definition("fast", call), policy)
    assert [(v.field, v.rule) for v in wrong] == [("workflow", "enum")]
    express = validate_definition(_definition("express", call, callback), policy)
    assert [(v.field, v.rule) for v in express] == [("steps[1].kind", "workflow")]
    assert "Express" in express[0].message
    assert validate_definition(_definition("auto", call, callback), policy) == []


TARGETS = MachineTargets(function_for=lambda step, phase: f"arn:fn:{step.id}:{phase.value}",
                         recorder="arn:fn:recorder")
UNDO_ARN = "arn:aws:states:us-east-1:000000000000:stateMachine:m-r1-undo"


def _fulfilment() -> list[Step]:
    saga = json.loads((ROOT / "examples/order-fulfilment/saga.json").read_text())
    return sorted((Step.of(StepDefinition(**s)) for s in saga["steps"]), key=lambda s: s.order)


def test_the_express_machine_hands_every_failure_with_something_to_undo_to_standard() -> None:
    steps = _fulfilment()
    machine = compile_forward(steps, TARGETS, CompileOptions(), handoff_to=UNDO_ARN)
    states = machine["States"]
    assert not [name for name in states if name.startswith("undo")]
    handoff = states["HandOff"]
    assert handoff["Resource"] == START_RUN
    assert handoff["Parameters"]["StateMachineArn"] == UNDO_ARN
    assert handoff["Parameters"]["Name.$"] == "States.Format('{}-h', $.execution_id)"
    assert handoff["Parameters"]["Input"]["error.$"] == "$.error"
    assert handoff["Catch"][0]["ErrorEquals"] == [RUN_EXISTS]
    assert states["HandedOff"] == {"Type": "Fail", "Error": "Saga.HandedOff",
                                   "Cause": states["HandedOff"]["Cause"]}
    first = states[machine["StartAt"]] if machine["StartAt"] != "Resume" else None
    targets = {catch["Next"] for state in states.values() for catch in state.get("Catch", [])}
    # Nothing but the hand-off, the first group's own failure (nothing to undo) and the
    # retriable groups' parking.
    assert targets <= {"HandOff", "HandedOff", "RecordFailed", "RecordParked"} | {
        name for name in states if name.startswith("failed:")}
    assert first is None or first["Catch"][-1]["Next"] in {"RecordFailed", "HandOff"}
    # The Standard machine of the same steps is unchanged by the option.
    standard = compile_forward(steps, TARGETS, CompileOptions())
    assert "HandOff" not in standard["States"]
    assert any(name.startswith("undo") for name in standard["States"])


class _Client:
    """The Step Functions calls the engine makes, recorded."""

    def __init__(self) -> None:
        self.created: list[dict[str, Any]] = []
        self.described: list[str] = []
        self.started: list[dict[str, Any]] = []

    def create_state_machine(self, **params: Any) -> dict[str, Any]:
        self.created.append(params)
        return {}

    def start_execution(self, **params: Any) -> dict[str, Any]:
        self.started.append(params)
        return {"executionArn": f"{params['stateMachineArn']}:{params['name']}"}

    def describe_execution(self, executionArn: str) -> dict[str, Any]:
        from botocore.exceptions import ClientError
        self.described.append(executionArn)
        raise ClientError({"Error": {"Code": "ExecutionDoesNotExist", "Message": "none"}},
                          "DescribeExecution")


def _stored(workflow_type: str, *, pivot: bool = False) -> StoredSaga:
    steps = [StepDefinition(id="a", order=1, action="x", compensation="y", max_retries=0,
                            timeout="5s", kind="pivot" if pivot else None)]
    if pivot:
        steps.append(StepDefinition(id="b", order=2, action="x", kind="retriable",
                                    timeout="5s"))
    return StoredSaga(id="pay", name="Pay", description="pay for it", version="1.0.0",
                      revision=1, steps=steps, active=True, workflow=workflow_type,
                      workflow_type=workflow_type, created_at=AT, updated_at=AT,
                      version_created_at=AT)


def _engine(client: _Client) -> StepFunctionsEngine:
    return StepFunctionsEngine(client, stage="test", role_arn="arn:role", region="us-east-1",
                               account="000000000000", function_for=lambda s, p: "arn:fn",
                               recorder_arn="arn:fn:recorder")


@pytest.mark.parametrize("pivot", [False, True])
def test_an_express_version_runs_forward_on_express_and_everything_else_on_standard(
        pivot: bool) -> None:
    client = _Client()
    engine = _engine(client)
    saga = _stored("express", pivot=pivot)
    engine.prepare(saga)
    kinds = {made["name"].rsplit("-r1", 1)[-1]: made["type"] for made in client.created}
    # A retry forward (only a version with a pivot can park) runs on the Standard forward.
    assert kinds == ({"": "STANDARD"} if pivot else {}) | {"-undo": "STANDARD",
                                                          "-express": "EXPRESS"}
    assert engine.plan(saga, "e-1").where.endswith("-r1-express")
    assert engine.start(saga, "e-1", RunKind.FORWARD).where.endswith("-r1-express")
    assert engine.start(saga, "e-1", RunKind.COMPENSATION).where.endswith("-r1-undo")
    assert engine.start(saga, "e-1", RunKind.RESUME).where.endswith("-r1")
    # No history to ask of an Express run: only its hand-off, which never started here.
    state = engine.describe(engine.plan(saga, "e-1"))
    assert state.status is RunStatus.UNKNOWN
    assert client.described == [client.created[-2 if not pivot else 1]["name"].join(
        ["arn:aws:states:us-east-1:000000000000:execution:", ":e-1-h"])]
    standard = _stored("standard")
    assert engine.plan(standard, "e-2").where.endswith("-r1")


OLD = datetime.now(UTC) - timedelta(minutes=10)


def _lost(store: InMemoryExecutionStore, engine: ScriptedEngine, execution_id: str,
          *steps: StepStatus) -> None:
    run = engine.start(_stored("express"), execution_id, RunKind.FORWARD)
    engine.script[execution_id] = RunState(RunStatus.UNKNOWN)
    store.put(Execution(
        id=execution_id, saga_id="pay", revision=1, version="1.0.0",
        status=ExecutionStatus.RUNNING, input={}, state_machine_arn=run.where,
        sfn_execution_arn=run.run, started_at=OLD, updated_at=OLD, expected_by=OLD,
        steps=[StepRun(step_id=f"s{i}", position=i, status=s)
               for i, s in enumerate(steps, start=1)]))


class _Definitions:
    def get_revision(self, saga_id: str, revision: int) -> StoredSaga | None:
        return _stored("express") if saga_id == "pay" else None


def test_a_lost_express_run_fails_or_is_compensated_on_standard_from_the_write_model() -> None:
    store, engine = InMemoryExecutionStore(), ScriptedEngine()
    _lost(store, engine, "idle", StepStatus.PENDING, StepStatus.PENDING)
    _lost(store, engine, "acted", StepStatus.SUCCEEDED, StepStatus.RUNNING)
    _lost(store, engine, "unrecorded", StepStatus.SUCCEEDED, StepStatus.SKIPPED)
    reconciler = Reconciler(store, engine, grace_seconds=0,
                            definitions=_Definitions())  # type: ignore[arg-type]
    # Silent for less than a retry's longest backoff: not yet lost.
    reconciler.clock = lambda: OLD + timedelta(seconds=59)
    assert reconciler.run() == []
    reconciler.clock = lambda: OLD + timedelta(seconds=61)
    repairs = {r.execution_id: r.now for r in reconciler.run()}
    assert repairs == {"idle": ExecutionStatus.FAILED, "acted": ExecutionStatus.COMPENSATING,
                       "unrecorded": ExecutionStatus.COMPLETED}
    idle = store.get("idle")
    assert idle is not None and idle.error is not None and idle.error.type == "RunLost"
    started = [s for s in engine.starts if s.kind is RunKind.COMPENSATION]
    assert [s.execution_id for s in started] == ["acted"]
    acted = store.get("acted")
    assert acted is not None and acted.sfn_execution_arn == started[0].ref.run
