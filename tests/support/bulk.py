"""Many finished executions at once, in both models, for the console's long lists (its browser
test and its benchmark): rows in MySQL, and their started and completed events applied by the
projector, as the pipeline leaves them, without running a state machine for each."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pymongo import MongoClient

from chalicelib.adapters.mongo.client import read_model
from chalicelib.adapters.mongo.projector import Projector
from chalicelib.adapters.mysql.connector import MySQLConnector
from chalicelib.adapters.mysql.executions import insert_execution
from chalicelib.config import MongoSettings
from chalicelib.domain import event_types, events
from chalicelib.domain.executions import Execution, ExecutionStatus, StepShape
from chalicelib.domain.lifecycle import StepKind


def seed_completed(connector: MySQLConnector, mongo: MongoClient, mongo_settings: MongoSettings,
                   saga: dict[str, Any], count: int, first: datetime) -> list[str]:
    """`count` COMPLETED executions of the stored `saga` (revision 1), one a minute from
    `first`, ids `<saga id>-0000` onwards; returns the ids, oldest first."""
    shape = [StepShape(step_id=step["id"], group=step["order"],
                       kind=StepKind(step.get("kind") or StepKind.COMPENSATABLE))
             for step in saga["steps"]]
    executions = [Execution(
        id=f"{saga['id']}-{n:04d}", saga_id=saga["id"], revision=1, version=saga["version"],
        status=ExecutionStatus.COMPLETED, input={}, started_at=first + timedelta(minutes=n),
        updated_at=first + timedelta(minutes=n, seconds=1)) for n in range(count)]
    with connector.transaction() as cur:
        for execution in executions:
            insert_execution(cur, execution, shape)
        cur.execute("UPDATE executions SET last_sequence = 2, ended_at = updated_at "
                    "WHERE saga_id = %s", (saga["id"],))
    batch = []
    for execution in executions:
        key, subject = execution.id, f"execution/{execution.id}"
        batch.append(events.envelope(
            event_types.EXECUTION_STARTED, key=key, subject=subject, sequence=1,
            time=execution.started_at, data={
                "saga_id": saga["id"], "version": execution.version, "revision": 1,
                "steps": [s.step_id for s in shape], "input": {},
                "shape": [s.model_dump(mode="json") for s in shape]}))
        batch.append(events.envelope(
            event_types.SAGA_COMPLETED, key=key, subject=subject, sequence=2,
            time=execution.updated_at,
            data={"saga_id": saga["id"], "status": ExecutionStatus.COMPLETED.value,
                  "execution_error": None, "output": None}))
    Projector(mongo, read_model(mongo, mongo_settings)).apply_batch(batch)
    return [execution.id for execution in executions]
