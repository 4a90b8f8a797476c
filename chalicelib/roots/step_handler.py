"""The step Lambdas' entry point: Powertools logging and metrics around a step attempt and the
recorder, and the one place where their events are read and their responses are made.

Deliveries are idempotent by the attempt itself: it reads its step's status under the step's
row lock, in the same transaction as its effect, so a repeated delivery of a step that already
succeeded does nothing and says so. (Powertools' idempotency utility would add a second record
of the same fact: two more writes per step, and its package imports boto3 for its DynamoDB
layer, which alone doubles a step's cold start; see BENCHMARKS.md.)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from chalicelib.domain.decisions import StepRequest
from chalicelib.domain.executions import ExecutionStatus
from chalicelib.domain.verdicts import AlreadyDone, AttemptOutcome, Done, Skipped
from chalicelib.roots import step_wiring as wiring
from chalicelib.usecases.steps.attempt import AttemptRunner
from chalicelib.usecases.steps.recorder import (
    AlreadyRecorded,
    EndRefused,
    EndReport,
    OutcomeRecorder,
    Recorded,
    RecordedEnd,
)

logger = Logger(service="saga-steps")
metrics = Metrics(namespace="SagaOrchestrator", service="saga-steps")


def handle_step(event: dict[str, Any], context: Any, *, family: str) -> dict[str, Any]:
    logger.set_correlation_id(str(event.get("execution_id")))
    logger.append_keys(step_id=event.get("step_id"), phase=event.get("phase"), family=family)
    try:
        result = run_step(wiring.PROCESS.get().attempt_runner, event)
    except Exception as error:
        logger.warning("step attempt failed", extra={"error_type": type(error).__name__,
                                                       "error": str(error)[:500]})
        _count("StepFailed")
        raise
    logger.info("step attempt succeeded", extra={"duplicate": bool(result.get("duplicate"))})
    _count("StepSucceeded")
    return result


def handle_outcome(event: dict[str, Any], context: Any) -> dict[str, Any]:
    logger.set_correlation_id(str(event.get("execution_id")))
    result = record_end(wiring.PROCESS.get().outcome_recorder, event)
    logger.info("execution outcome recorded", extra={"outcome": event.get("outcome")})
    return result


def _recorder_task(event: dict[str, Any], kind: str,
                   run: Callable[[StepRequest], dict[str, Any]]) -> dict[str, Any]:
    """One of the recorder's Tasks for a step that calls nobody itself (kind: the event's
    key naming the task: timer, fanout or child)."""
    logger.set_correlation_id(str(event.get("execution_id")))
    logger.append_keys(step_id=event.get("step_id"), **{kind: event.get(kind)})
    result = run(StepRequest.model_validate(event))
    logger.info(f"{kind} task recorded", extra={kind: event.get(kind)})
    return result


def handle_timer(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return _recorder_task(event, "timer", wiring.PROCESS.get().timer_runner.run)


def handle_fanout(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return _recorder_task(event, "fanout", wiring.PROCESS.get().fanout_runner.run)


def handle_child(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return _recorder_task(event, "child", wiring.PROCESS.get().child_runner.run)


def handle_deadline(event: dict[str, Any], context: Any) -> dict[str, Any]:
    logger.set_correlation_id(str(event.get("execution_id")))
    decided = wiring.PROCESS.get().deadline_keeper.passed(str(event["execution_id"]))
    logger.info("saga deadline passed", extra={"verdict": decided.value})
    return {"verdict": decided.value}


def run_step(runner: AttemptRunner, event: Mapping[str, Any]) -> dict[str, Any]:
    """One delivery of a step's Task: its Parameters read, its outcome as the Task's result."""
    return step_response(runner.run(StepRequest.model_validate(event)))


def record_end(recorder: OutcomeRecorder, event: Mapping[str, Any]) -> dict[str, Any]:
    """One report of an execution's end, as the recorder's Task result."""
    report = EndReport(execution_id=str(event["execution_id"]),
                       outcome=ExecutionStatus(str(event["outcome"])),
                       error=event.get("error") or {})
    return end_response(recorder.record(report))


def step_response(outcome: AttemptOutcome) -> dict[str, Any]:
    match outcome:
        case Done(result):
            return {"status": "ok", "result": result}
        case AlreadyDone(status):
            return {"status": status.value, "duplicate": True}
        case Skipped(status):
            return {"status": status.value, "skipped": True}
    raise AssertionError(outcome)


def end_response(end: RecordedEnd) -> dict[str, Any]:
    match end:
        case Recorded(status):
            return {"status": status.value}
        case AlreadyRecorded(status):
            return {"status": status.value, "duplicate": True}
        case EndRefused(status, reported):
            return {"status": status.value, "refused": reported.value}
    raise AssertionError(end)


def _count(name: str) -> None:
    """One EMF record per invocation, when config saga.monitoring_enabled is on."""
    if not wiring.PROCESS.get().settings.saga.monitoring_enabled:
        return
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)
    metrics.flush_metrics()
