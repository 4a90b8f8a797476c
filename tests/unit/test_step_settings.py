"""saga.caching_enabled and saga.monitoring_enabled change what a step Lambda does."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from chalicelib.config import Settings, load_settings
from chalicelib.domain.decisions import StepRequest
from chalicelib.domain.models import StoredSaga
from chalicelib.domain.verdicts import AttemptOutcome, Done
from chalicelib.roots import step_handler as handler
from chalicelib.roots import step_wiring as wiring
from chalicelib.roots.step_wiring import StepContainer
from tests.support.sagas import one_step_saga


class CountingDefinitions:
    """A definition store that counts the reads a step makes (MySQL's stand-in)."""

    def __init__(self) -> None:
        self.reads = 0

    def get_revision(self, saga_id: str, revision: int) -> StoredSaga:
        self.reads += 1
        now = datetime.now(UTC)
        return StoredSaga.model_validate({**one_step_saga(saga_id), "revision": revision,
                                          "active": True, "created_at": now,
                                          "updated_at": now, "version_created_at": now})


def _settings(**saga: str) -> Settings:
    return load_settings(environ={f"SAGA__SAGA__{key.upper()}": value
                                  for key, value in saga.items()})


@pytest.mark.parametrize(("caching", "reads"), [("true", 1), ("false", 3)])
def test_caching_enabled_decides_whether_a_warm_step_rereads_its_definition(
        caching: str, reads: int) -> None:
    settings = _settings(caching_enabled=caching)
    definitions = CountingDefinitions()
    steps = StepContainer(settings).provide(definitions=definitions).attempt_runner.steps
    for _ in range(3):
        assert steps.step("s-1", 1, "charge").id == "charge"
    assert definitions.reads == reads


class FakeRunner:
    def run(self, request: StepRequest) -> AttemptOutcome:
        if request.step_id == "declined":
            raise RuntimeError("declined")
        return Done({"ok": True})


def _emf_records(text: str) -> list[dict[str, Any]]:
    records = []
    for line in text.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            records.append(json.loads(line))
    return records


@pytest.mark.parametrize("monitoring", ["true", "false"])
def test_monitoring_enabled_decides_whether_steps_emit_metrics(
        monitoring: str, capsys: pytest.CaptureFixture[str]) -> None:
    steps = StepContainer(_settings(monitoring_enabled=monitoring))
    wiring.PROCESS.use(steps.provide(attempt_runner=FakeRunner()))
    try:
        handler.handle_step({"execution_id": "e", "step_id": "charge", "phase": "action"},
                            None, family="payment")
        with pytest.raises(RuntimeError):
            handler.handle_step({"execution_id": "e", "step_id": "declined",
                                 "phase": "action"}, None, family="payment")
    finally:
        wiring.PROCESS.use(None)
    records = _emf_records(capsys.readouterr().out)
    if monitoring == "true":
        assert [name for record in records for name in ("StepSucceeded", "StepFailed")
                if name in record] == ["StepSucceeded", "StepFailed"]
    else:
        assert records == []
