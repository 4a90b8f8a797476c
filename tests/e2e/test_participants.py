"""Steps run by participants' own services: an HTTP endpoint and a Lambda."""

from __future__ import annotations

import io
import uuid
import zipfile
from collections.abc import Iterator
from typing import Any

import pytest

from chalicelib.adapters import aws
from chalicelib.config import Settings
from tests.e2e.conftest import Api
from tests.support.participants import ParticipantServer, Received, serving


class Participant:
    """Answers from a script of statuses per path (then 200), with the path and phase."""

    def __init__(self) -> None:
        self.script: dict[str, list[int]] = {}

    def __call__(self, request: Received) -> tuple[int, Any]:
        statuses = self.script.get(request.path, [])
        status = statuses.pop(0) if statuses else 200
        return status, {"path": request.path, "phase": request.body["phase"]}


@pytest.fixture
def participant() -> Iterator[tuple[Participant, ParticipantServer]]:
    script = Participant()
    with serving(script) as server:
        yield script, server


def _step(step_id: str, order: int, action: str, compensation: str) -> dict[str, Any]:
    return {"id": step_id, "name": f"Step {step_id}", "description": "a participant's step",
            "order": order, "action": action, "compensation": compensation,
            "max_retries": 2, "timeout": "10s"}


def _saga(api: Api, steps: list[dict[str, Any]]) -> str:
    saga_id = f"part-{uuid.uuid4().hex[:10]}"
    api.create_saga({"id": saga_id, "name": "Participants", "version": "1.0.0",
                     "description": "steps run by participants", "steps": steps})
    return saga_id


def test_an_http_participant_gets_a_stable_idempotency_key_and_is_compensated(
    api: Api, participant: tuple[Participant, ParticipantServer]
) -> None:
    script, server = participant
    url = server.url
    script.script["/reserve"] = [503]  # one passing fault: retried with the same key
    script.script["/charge"] = [422]  # a refusal: permanent, compensate at once
    saga_id = _saga(api, [_step("reserve", 1, f"{url}/reserve", f"{url}/release"),
                          _step("charge", 2, f"{url}/charge", f"{url}/refund")])
    execution = api.wait(api.execute(saga_id, input={"sku": "sku-9"})["id"])
    assert execution["status"] == "COMPENSATED", execution
    paths = [r.path for r in server.received]
    assert paths == ["/reserve", "/reserve", "/charge", "/release"]
    reserve_keys = {r.headers["Idempotency-Key"] for r in server.received
                    if r.path == "/reserve"}
    assert reserve_keys == {f"{execution['id']}:reserve:action"}
    release = server.received[-1]
    assert release.headers["Idempotency-Key"] == f"{execution['id']}:reserve:compensation"
    assert release.body["input"] == {"sku": "sku-9"}
    steps = {s["step_id"]: s for s in execution["steps"]}
    assert steps["charge"]["action_attempts"] == 1  # a 4xx is not retried
    assert steps["reserve"]["result"] == {"path": "/reserve", "phase": "action"}


PARTICIPANT_CODE = '''
class PermanentError(Exception):
    pass

def handler(event, context):
    if event["input"].get("refuse") == event["step_id"]:
        raise PermanentError("refused by the participant")
    return {"handled": event["phase"], "key": event["idempotency_key"]}
'''


@pytest.fixture
def participant_lambda(settings_e2e: Settings) -> Iterator[str]:
    lam = aws.client("lambda", settings_e2e.aws)
    name = f"participant-{uuid.uuid4().hex[:8]}"
    package = io.BytesIO()
    with zipfile.ZipFile(package, "w") as archive:
        archive.writestr("participant.py", PARTICIPANT_CODE)
    lam.create_function(FunctionName=name, Runtime="python3.11",
                        Role="arn:aws:iam::000000000000:role/saga-orchestrator-lambda",
                        Handler="participant.handler", Code={"ZipFile": package.getvalue()},
                        Timeout=10)
    lam.get_waiter("function_active_v2").wait(FunctionName=name)
    yield name
    lam.delete_function(FunctionName=name)


def test_a_lambda_participant_runs_and_its_refusal_compensates(
    api: Api, participant_lambda: str
) -> None:
    target = f"lambda:{participant_lambda}"
    saga_id = _saga(api, [_step("book", 1, target, target), _step("pay", 2, target, target)])
    done = api.wait(api.execute(saga_id, input={})["id"])
    assert done["status"] == "COMPLETED", done
    results = {s["step_id"]: s["result"] for s in done["steps"]}
    assert results["pay"] == {"handled": "action", "key": f"{done['id']}:pay:action"}

    refused = api.wait(api.execute(saga_id, input={"refuse": "pay"})["id"])
    assert refused["status"] == "COMPENSATED", refused
    steps = {s["step_id"]: s for s in refused["steps"]}
    assert steps["pay"]["status"] == "FAILED" and steps["pay"]["action_attempts"] == 1
    assert steps["book"]["status"] == "COMPENSATED"
