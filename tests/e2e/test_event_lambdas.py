"""The relay and projector as the Lambdas they are on AWS (a schedule, a Kafka event source),
invoked with the events those sources send."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

from chalice.test import Client

from chalicelib.adapters.mongo.projector import EXECUTIONS
from chalicelib.config import Settings
from chalicelib.roots import runtime
from infra.deploy.local import load_app
from tests.e2e.conftest import Api


def _msk_event(envelopes: list[dict[str, Any]], topic: str) -> dict[str, Any]:
    """What an MSK (or self-managed Kafka) event source hands the function."""
    return {"eventSource": "aws:kafka", "records": {f"{topic}-0": [
        {"topic": topic, "partition": 0, "offset": n, "timestamp": 0,
         "key": base64.b64encode(e["key"].encode()).decode(),
         "value": base64.b64encode(json.dumps(e).encode()).decode()}
        for n, e in enumerate(envelopes)]}}


def test_the_projector_lambda_applies_a_kafka_batch(api: Api, settings_e2e: Settings) -> None:
    execution_id = f"lambda-{uuid.uuid4().hex[:8]}"
    envelopes = [
        {"id": f"{execution_id}-1", "type": "saga.execution.started", "key": execution_id,
         "sequence": 1, "time": "2026-01-01T00:00:00+00:00", "source": "test",
         "subject": f"execution/{execution_id}",
         "data": {"saga_id": "s-lambda", "version": "1.0.0", "revision": 1, "steps": ["a"],
                  "input": {}}},
        {"id": f"{execution_id}-2", "type": "saga.completed", "key": execution_id,
         "sequence": 2, "time": "2026-01-01T00:00:01+00:00", "source": "test",
         "subject": f"execution/{execution_id}",
         "data": {"saga_id": "s-lambda", "status": "COMPLETED"}}]
    with Client(load_app(), stage_name="test") as client:
        first = client.lambda_.invoke("projector", _msk_event(envelopes, "saga-events-test"))
        again = client.lambda_.invoke("projector", _msk_event(envelopes, "saga-events-test"))
    assert first.payload == {"applied": 2}
    assert again.payload == {"applied": 0}  # redelivered batch: nothing applied twice
    doc = runtime.container().mongo[settings_e2e.database.mongodb.database][EXECUTIONS].find_one(
        {"_id": execution_id})
    assert doc is not None and doc["status"] == "COMPLETED" and doc["sequence"] == 2


def test_the_scheduled_relay_lambda_publishes_the_outbox(api: Api) -> None:
    with Client(load_app(), stage_name="test") as client:
        result = client.lambda_.invoke("outbox_relay", client.events.generate_cw_event(
            source="aws.events", detail_type="Scheduled Event", detail={"run_seconds": 1},
            resources=[]))
    assert result.payload["failures"] == 0
    with runtime.container().connector.transaction() as cur:
        cur.execute("SELECT COUNT(*) AS n FROM outbox WHERE published_at IS NULL")
        assert cur.fetchone()["n"] == 0
