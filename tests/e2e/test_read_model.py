"""The MongoDB read model, fed through Kafka, matches the MySQL write model, applies a
redelivered event once, and can be rebuilt from the outbox. (Outages of Kafka and MongoDB under
load, and reads answered from the write model while MongoDB is down, are the fault suite's:
tests/e2e/test_faults.py; the relay alone across a Kafka outage is
tests/integration/test_outbox_relay.py.)"""

from __future__ import annotations

import copy
import json
import time
import uuid
from pathlib import Path
from typing import Any

from chalicelib.adapters.mongo.projector import EXECUTIONS, SUMMARIES
from chalicelib.config import Settings
from chalicelib.roots import runtime
from infra.local_events import EventWorkers
from tests.e2e.conftest import Api, new_customer

SEED = json.loads((Path(__file__).parents[1] / "fixtures" / "payment-saga.json").read_text())
IDS = [step["id"] for step in SEED["steps"]]


def _run_mix(api: Api, saga_id: str, customer: str, count: int) -> list[str]:
    """Executions ending every way: completed, compensated, failed, retried steps."""
    mixes: list[list[dict[str, Any]]] = [
        [], [{"step_id": "send-notification", "error": "Flaky", "times": 1}],
        [{"step_id": "process-payment", "permanent": True}],
        [{"step_id": "validate-payment", "permanent": True}],
        [{"step_id": "send-notification", "permanent": True}]]
    return [api.execute(saga_id, input={"customer_id": customer, "amount": "1.00",
                                        "currency": "EUR"}, faults=mixes[n % len(mixes)])["id"]
            for n in range(count)]


def _write_model(execution_id: str) -> dict[str, Any]:
    with runtime.container().connector.transaction() as cur:
        from chalicelib.adapters.mysql.executions import load_execution

        execution = load_execution(cur, execution_id)
        cur.execute("SELECT last_sequence FROM executions WHERE id = %s", (execution_id,))
        sequence = cur.fetchone()["last_sequence"]
    assert execution is not None
    return {"status": execution.status.value, "sequence": sequence, "steps": [
        (s.step_id, s.status.value, s.action_attempts, s.compensation_attempts,
         [(a.phase, a.outcome) for a in s.attempts]) for s in execution.steps]}


def _read_model(settings: Settings, execution_id: str) -> dict[str, Any] | None:
    doc = runtime.container().mongo[settings.database.mongodb.database][EXECUTIONS].find_one(
        {"_id": execution_id})
    if doc is None:
        return None
    return {"status": doc["status"], "sequence": doc["sequence"], "steps": [
        (s["step_id"], s["status"], s["action_attempts"], s["compensation_attempts"],
         [(a["phase"], a["outcome"]) for a in s["attempts"]]) for s in doc["steps"]]}


def _settle(api: Api, settings: Settings, ids: list[str], timeout_s: float = 90) -> None:
    for execution_id in ids:
        api.wait(execution_id)
    deadline = time.monotonic() + timeout_s
    pending = list(ids)
    while pending and time.monotonic() < deadline:
        pending = [i for i in pending if _read_model(settings, i) != _write_model(i)]
        time.sleep(0.2)
    assert not pending, {i: (_read_model(settings, i), _write_model(i)) for i in pending[:3]}


def _saga(api: Api) -> str:
    definition = copy.deepcopy(SEED) | {"id": f"rm-{uuid.uuid4().hex[:10]}"}
    api.create_saga(definition)
    return definition["id"]


def _summary(settings: Settings, saga_id: str) -> dict[str, int]:
    doc = runtime.container().mongo[settings.database.mongodb.database][SUMMARIES].find_one(
        {"_id": saga_id}) or {}
    return {status: n for status, n in doc.get("by_status", {}).items() if n}


def _settled_mix(api: Api, settings: Settings, count: int) -> tuple[str, list[str]]:
    """A fresh saga run `count` times, every way it can end, all in the read model."""
    saga_id = _saga(api)
    ids = _run_mix(api, saga_id, new_customer(), count)
    _settle(api, settings, ids)
    return saga_id, ids


def test_the_read_model_matches_the_write_model(
    api: Api, settings_e2e: Settings, event_workers: EventWorkers
) -> None:
    saga_id, ids = _settled_mix(api, settings_e2e, 10)
    statuses = [_write_model(i)["status"] for i in ids]
    assert _summary(settings_e2e, saga_id) == {s: statuses.count(s) for s in set(statuses)}
    # Redelivery changes nothing: the same events applied again are refused.
    with runtime.container().connector.transaction() as cur:
        cur.execute("SELECT envelope FROM outbox WHERE partition_key = %s", (ids[0],))
        replay = [json.loads(row["envelope"]) for row in cur.fetchall()]
    projector = runtime.container().new_projector()
    assert [projector.apply(event) for event in replay] == [False] * len(replay)
    assert _read_model(settings_e2e, ids[0]) == _write_model(ids[0])


def test_the_read_model_can_be_rebuilt_from_the_outbox(
    api: Api, settings_e2e: Settings, event_workers: EventWorkers
) -> None:
    from infra.local_events import rebuild_read_model

    saga_id, ids = _settled_mix(api, settings_e2e, 5)
    before = {i: _read_model(settings_e2e, i) for i in ids}
    summary = _summary(settings_e2e, saga_id)
    assert rebuild_read_model() > 0
    assert {i: _read_model(settings_e2e, i) for i in ids} == before
    assert _summary(settings_e2e, saga_id) == summary
