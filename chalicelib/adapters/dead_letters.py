"""What the pipeline does with an event it gives up on: a dead letter, a log line, a metric.

The pipeline then goes on with the next event. Later events of the same execution are still
delivered (each event carries its own sequence and the projector applies anything above what
it has seen), so the read model shows a later state while the dead letter waits for replay;
replaying an event the read model has already passed changes nothing there.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit, single_metric

logger = logging.getLogger(__name__)
MAX_ATTEMPTS = 3
NAMESPACE = "SagaOrchestrator"


def report(stage: str, letter_id: int, event: Mapping[str, Any] | None, reason: str,
           attempts: int) -> None:
    event = event or {}
    logger.error("dead letter %s: the %s gave up on event %s (%s, key %s, sequence %s) after "
                 "%d attempt(s): %s", letter_id, stage, event.get("id"), event.get("type"),
                 event.get("key"), event.get("sequence"), attempts, reason)
    try:
        with single_metric(name="DeadLetters", unit=MetricUnit.Count, value=1,
                           namespace=NAMESPACE) as metric:
            metric.add_dimension(name="stage", value=stage)
    except Exception:  # a metric must never stop the pipeline
        logger.debug("dead letter metric not emitted", exc_info=True)
