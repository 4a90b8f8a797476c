"""The step Lambdas' entry point: Powertools logging, metrics and idempotency around the runtime.

Idempotency is keyed on (execution id, step id, phase): a second delivery of a step that already
succeeded returns the first result without touching the step again.
"""

from __future__ import annotations

import functools
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function

from chalicelib import runtime
from chalicelib.steps.idempotency import MySQLPersistenceLayer

logger = Logger(service="saga-steps")
metrics = Metrics(namespace="SagaOrchestrator", service="saga-steps")

IDEMPOTENCY = IdempotencyConfig(
    event_key_jmespath="[execution_id, step_id, phase]",
    raise_on_no_idempotency_key=True,
    expires_after_seconds=7 * 24 * 3600,
)


@functools.cache
def _persistence() -> MySQLPersistenceLayer:
    return MySQLPersistenceLayer(runtime.connector())


def _run(event: dict[str, Any]) -> dict[str, Any]:
    return runtime.step_runtime().handle(event)


@functools.cache
def _idempotent_run() -> Any:
    return idempotent_function(data_keyword_argument="event", persistence_store=_persistence(),
                               config=IDEMPOTENCY)(_run)


def handle_step(event: dict[str, Any], context: Any, *, family: str) -> dict[str, Any]:
    logger.set_correlation_id(str(event.get("execution_id")))
    logger.append_keys(step_id=event.get("step_id"), phase=event.get("phase"), family=family)
    if context is not None:
        IDEMPOTENCY.register_lambda_context(context)
    try:
        result = _idempotent_run()(event=event)
    except Exception as error:
        logger.warning("step attempt failed", extra={"error_type": type(error).__name__,
                                                       "error": str(error)[:500]})
        metrics.add_metric(name="StepFailed", unit=MetricUnit.Count, value=1)
        _flush()
        raise
    logger.info("step attempt succeeded", extra={"duplicate": bool(result.get("duplicate"))})
    metrics.add_metric(name="StepSucceeded", unit=MetricUnit.Count, value=1)
    _flush()
    return result


def handle_outcome(event: dict[str, Any], context: Any) -> dict[str, Any]:
    logger.set_correlation_id(str(event.get("execution_id")))
    result = runtime.outcome_recorder().handle(event)
    logger.info("execution outcome recorded", extra={"outcome": event.get("outcome")})
    return result


def _flush() -> None:
    # One EMF record per invocation; Metrics raises on an empty flush, hence the guard.
    if metrics.metric_set:
        metrics.flush_metrics()
