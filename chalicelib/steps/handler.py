"""The step Lambdas' entry point: Powertools logging and metrics around the step runtime.

Deliveries are idempotent by the runtime itself: an attempt reads its step's status under the
step's row lock, in the same transaction as its effect, so a repeated delivery of a step that
already succeeded does nothing and says so. (Powertools' idempotency utility would add a
second record of the same fact: two more writes per step, and its package imports boto3 for
its DynamoDB layer, which alone doubles a step's cold start; see BENCHMARKS.md.)
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from chalicelib.steps import wiring

logger = Logger(service="saga-steps")
metrics = Metrics(namespace="SagaOrchestrator", service="saga-steps")


def handle_step(event: dict[str, Any], context: Any, *, family: str) -> dict[str, Any]:
    logger.set_correlation_id(str(event.get("execution_id")))
    logger.append_keys(step_id=event.get("step_id"), phase=event.get("phase"), family=family)
    try:
        result = wiring.PROCESS.get().step_runtime.handle(event)
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
    result = wiring.PROCESS.get().outcome_recorder.handle(event)
    logger.info("execution outcome recorded", extra={"outcome": event.get("outcome")})
    return result


def _count(name: str) -> None:
    """One EMF record per invocation, when config saga.monitoring_enabled is on."""
    if not wiring.PROCESS.get().settings.saga.monitoring_enabled:
        return
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)
    metrics.flush_metrics()
