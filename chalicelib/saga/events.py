"""Event envelopes: what every state change publishes. Pure."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

SOURCE = "saga-orchestrator"

DEFINITION_CREATED = "saga.definition.created"
DEFINITION_UPDATED = "saga.definition.updated"
DEFINITION_DELETED = "saga.definition.deleted"
EXECUTION_STARTED = "saga.execution.started"
RUN_STARTED = "saga.execution.run_started"
STEP_ABORTED = "saga.step.aborted"
STEP_STARTED = "saga.step.started"
STEP_SUCCEEDED = "saga.step.succeeded"
STEP_FAILED = "saga.step.failed"
STEP_RETRIED = "saga.step.retried"
# An action's last attempt ended with its outcome unknown: the step is compensated.
STEP_OUTCOME_UNKNOWN = "saga.step.outcome_unknown"
COMPENSATION_STARTED = "saga.compensation.started"
STEP_COMPENSATED = "saga.step.compensated"
STEP_COMPENSATION_FAILED = "saga.step.compensation_failed"
COMPENSATION_FAILED = "saga.compensation.failed"
SAGA_COMPLETED = "saga.completed"
SAGA_COMPENSATED = "saga.compensated"
SAGA_FAILED = "saga.failed"
SAGA_RESOLVED = "saga.resolved"
# After its pivot a saga only goes forward: a retriable step out of attempts parks it, and an
# operator's retry forward resumes it.
SAGA_PARKED = "saga.parked"
SAGA_RESUMED = "saga.resumed"


def envelope(event_type: str, *, key: str, subject: str, sequence: int,
             data: dict[str, Any], event_id: str | None = None,
             time: datetime | None = None) -> dict[str, Any]:
    """key orders events (execution id, or saga id for definitions); sequence counts per key."""
    return {
        "id": event_id or str(uuid.uuid4()),
        "type": event_type,
        "source": SOURCE,
        "time": (time or datetime.now(UTC)).isoformat(),
        "subject": subject,
        "key": key,
        "sequence": sequence,
        "data": data,
    }
