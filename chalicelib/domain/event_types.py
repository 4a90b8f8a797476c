"""The events' names: the type of each change the service publishes, and its source. Pure,
and below everything else of the domain (the lifecycle says which move emits which)."""

from __future__ import annotations

SOURCE = "saga-orchestrator"

DEFINITION_CREATED = "saga.definition.created"
DEFINITION_UPDATED = "saga.definition.updated"
DEFINITION_DELETED = "saga.definition.deleted"
# Keyed by saga id and not an execution's: the read model and the push feed tell them apart.
DEFINITION_EVENTS: frozenset[str] = frozenset({DEFINITION_CREATED, DEFINITION_UPDATED,
                                               DEFINITION_DELETED})
EXECUTION_STARTED = "saga.execution.started"
RUN_STARTED = "saga.execution.run_started"
STEP_ABORTED = "saga.step.aborted"
STEP_STARTED = "saga.step.started"
STEP_SUCCEEDED = "saga.step.succeeded"
STEP_FAILED = "saga.step.failed"
STEP_RETRIED = "saga.step.retried"
# An action's last attempt ended with its outcome unknown: the step is compensated.
STEP_OUTCOME_UNKNOWN = "saga.step.outcome_unknown"
# Steps that wait (callbacks and timers): the wait began, a heartbeat kept it alive, a
# completion arrived through the API, the timer fired. Each carries the step's record.
STEP_WAITING = "saga.step.waiting"
STEP_HEARTBEAT = "saga.step.heartbeat"
STEP_CALLBACK_RECEIVED = "saga.step.callback_received"
STEP_TIMER_FIRED = "saga.step.timer_fired"
# A step's `when` condition was false: it is SKIPPED (never run, never undone); the event
# carries the condition, its value and the values it read.
STEP_SKIPPED = "saga.step.skipped"
# A fan-out step started its items: how many, at most how many at once, how many may fail.
# Each item then reports as a step of its own ("<step id>[<index>]"; its record's "item" says
# which), and the step's saga.step.succeeded carries {"items": [...]}.
STEP_FANNED_OUT = "saga.step.fanned_out"
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
