"""The outbox as sagas run side by side leave it, without their state machines: each saga's
execution created and marked started, its steps run by the step runtime with the built-in
actions, and its end recorded, all over MySQL, `concurrency` sagas at a time (so their events
interleave as live ones do). Nothing is deployed: for the event pipeline's figures alone."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from chalicelib.adapters.mysql.definitions import MySQLDefinitionStore
from chalicelib.adapters.mysql.executions import MySQLExecutionStore
from chalicelib.config import Settings
from chalicelib.domain.decisions import StepRequest
from chalicelib.domain.executions import Execution, StepShape
from chalicelib.domain.lifecycle import ExecutionStatus, Phase
from chalicelib.domain.validation import parse_definition
from chalicelib.roots.step_wiring import StepContainer
from chalicelib.usecases.ports import Actor, RunRef
from chalicelib.usecases.steps.recorder import EndReport


def fill_outbox(settings: Settings, definition: dict[str, Any], saga_input: dict[str, Any],
                sagas: int, concurrency: int) -> int:
    """`sagas` completed runs of `definition` (stored here); the outbox's events."""
    steps = StepContainer(settings)
    saga = MySQLDefinitionStore(steps.connector).insert_version(
        parse_definition(definition), expected_revision=None, actor=Actor("bench"),
        action="create")
    executions = MySQLExecutionStore(steps.connector)
    shapes = [StepShape.of(step) for step in saga.active_steps()]

    def run(_: int) -> None:
        execution_id = f"bench-{uuid.uuid4().hex[:12]}"
        now = datetime.now(UTC)
        executions.create(Execution(
            id=execution_id, saga_id=saga.id, revision=saga.revision, version=saga.version,
            status=ExecutionStatus.RUNNING, input=saga_input, started_at=now, updated_at=now),
            shapes)
        executions.mark_started(execution_id, RunRef(execution_id, "arn:bench:machine",
                                                     f"arn:bench:run:{execution_id}"))
        for shape in shapes:
            steps.attempt_runner.run(StepRequest(execution_id=execution_id,
                                                 step_id=shape.step_id, phase=Phase.ACTION))
        steps.outcome_recorder.record(EndReport(execution_id=execution_id,
                                                outcome=ExecutionStatus.COMPLETED, error={}))

    try:
        with ThreadPoolExecutor(concurrency) as pool:
            list(pool.map(run, range(sagas)))
        with steps.connector.transaction() as cur:
            cur.execute("SELECT COUNT(*) AS n FROM outbox")
            return int(cur.fetchone()["n"])
    finally:
        steps.connector.close()
