"""DefinitionService against the in-memory ports."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from chalicelib.domain.errors import BadRequest, Conflict, LimitReached, NotFound
from chalicelib.domain.executions import Execution
from chalicelib.domain.lifecycle import ExecutionStatus
from chalicelib.domain.models import SagaDefinition
from chalicelib.domain.requests import ActiveRequest, parse_request
from chalicelib.domain.validation import (
    DefinitionInvalid,
    ValidationPolicy,
    parse_definition,
    parse_step,
)
from chalicelib.testing import (
    InMemoryDefinitionStore,
    InMemoryExecutionStore,
    ScriptedEngine,
)
from chalicelib.usecases.definitions import DefinitionService, Limits, page_size
from chalicelib.usecases.ports import Actor

SEED = json.loads((Path(__file__).parents[1] / "fixtures" / "payment-saga.json").read_text())
ACTOR = Actor("ops")


def _service(max_sagas: int = 5, max_steps: int = 20) -> tuple[
        DefinitionService, InMemoryExecutionStore, ScriptedEngine]:
    definitions = InMemoryDefinitionStore()
    executions = InMemoryExecutionStore(definitions)
    engine = ScriptedEngine()
    service = DefinitionService(definitions, ValidationPolicy(), Limits(max_sagas, max_steps),
                                executions=executions, engine=engine)
    return service, executions, engine


def _saga(**changes: Any) -> SagaDefinition:
    return parse_definition({**json.loads(json.dumps(SEED)), **changes})


def test_create_stores_a_version_and_makes_its_machines() -> None:
    service, _, engine = _service()
    stored = service.create(_saga(), ACTOR)
    assert (stored.id, stored.revision, stored.version) == ("payment-saga", 1, "1.0.0")
    assert engine.prepared == [("payment-saga", 1)]
    assert service.get("payment-saga").revision == 1
    assert service.get("payment-saga", "1.0.0").revision == 1


def test_a_higher_version_is_a_new_revision_and_an_older_one_a_conflict() -> None:
    service, _, _ = _service()
    service.create(_saga(), ACTOR)
    assert service.create(_saga(version="1.1.0"), ACTOR).revision == 2
    with pytest.raises(Conflict, match=r"already exists at version 1\.1\.0"):
        service.create(_saga(version="1.0.5"), ACTOR)
    assert [v["version"] for v in service.versions("payment-saga")] == ["1.0.0", "1.1.0"]


def test_a_version_is_stored_even_when_step_functions_is_down() -> None:
    service, _, engine = _service()
    engine.fail_prepare = True
    assert service.create(_saga(), ACTOR).revision == 1


def test_invalid_definitions_are_refused() -> None:
    service, _, _ = _service()
    with pytest.raises(DefinitionInvalid):
        service.create(_saga(steps=[]), ACTOR)


def test_steps_are_added_and_removed_as_new_patch_versions() -> None:
    service, _, _ = _service()
    service.create(_saga(), ACTOR)
    added = service.add_step("payment-saga", parse_step({
        "id": "audit", "name": "Audit", "description": "audit it", "action": "send_notification",
        "compensation": "cancel_notification", "max_retries": 0, "timeout": "5s"}), ACTOR)
    assert added.version == "1.0.1" and added.steps[-1].id == "audit"
    assert added.steps[-1].order == max(s.order or 0 for s in added.steps[:-1]) + 1
    removed = service.remove_step("payment-saga", "audit", ACTOR)
    assert removed.version == "1.0.2" and "audit" not in {s.id for s in removed.steps}
    with pytest.raises(NotFound, match="no step 'audit'"):
        service.remove_step("payment-saga", "audit", ACTOR)
    with pytest.raises(BadRequest, match="JSON object"):
        parse_step(["x"])


def test_activation_and_its_bad_bodies() -> None:
    service, _, _ = _service()
    service.create(_saga(), ACTOR)
    assert not service.set_active("payment-saga", ActiveRequest(active=False), ACTOR).active
    with pytest.raises(BadRequest):
        parse_request(ActiveRequest, {"active": "no"})
    with pytest.raises(NotFound):
        service.set_active("ghost", ActiveRequest(active=True), ACTOR)


def test_limits_on_sagas_and_steps() -> None:
    service, _, _ = _service(max_sagas=1, max_steps=3)
    service.create(_saga(), ACTOR)
    with pytest.raises(LimitReached, match="at most 1 sagas"):
        service.create(_saga(id="second"), ACTOR)
    with pytest.raises(LimitReached, match="at most 3 steps"):
        service.add_step("payment-saga", parse_step({
            "id": "more", "name": "More", "description": "d", "action": "send_notification",
            "compensation": "cancel_notification", "max_retries": 0, "timeout": "5s"}), ACTOR)


def test_destroy_refuses_while_executions_run_and_keeps_pinned_versions() -> None:
    service, executions, engine = _service()
    stored = service.create(_saga(), ACTOR)
    service.create(_saga(version="2.0.0"), ACTOR)
    running = Execution(id="e", saga_id=stored.id, revision=1, version="1.0.0",
                        status=ExecutionStatus.RUNNING, input={}, started_at=stored.created_at,
                        updated_at=stored.created_at)
    executions.put(running)
    with pytest.raises(Conflict, match="1 running execution"):
        service.destroy(stored.id, ACTOR)
    executions.put(running.model_copy(update={"status": ExecutionStatus.COMPLETED}))
    service.destroy(stored.id, ACTOR)
    assert engine.discarded == [(stored.id, [2])]  # revision 1 is pinned by "e"
    with pytest.raises(NotFound):
        service.get(stored.id)
    assert service.store.get_revision(stored.id, 1) is not None
    with pytest.raises(NotFound):
        service.destroy(stored.id, ACTOR)


def test_reads_lists_and_stats() -> None:
    service, _, _ = _service()
    for saga_id in ("a", "b", "c"):
        service.create(_saga(id=saga_id, type=None), ACTOR)
    first = service.list(limit="2")
    assert [s.id for s in first.items] == ["a", "b"] and first.next_cursor
    assert [s.id for s in service.list(cursor=first.next_cursor).items] == ["c"]
    assert service.list(active="false").items == []
    with pytest.raises(BadRequest, match="active must be true or false"):
        service.list(active="maybe")
    stats = service.saga_stats("a")
    assert (stats["versions"], stats["steps"]) == (1, len(SEED["steps"]))
    # A straight line of compensatable steps: one group per step, no pivot.
    assert (stats["groups"], stats["parallel_groups"], stats["kinds"], stats["pivot"]) == (
        len(SEED["steps"]), 0, {"compensatable": len(SEED["steps"])}, None)
    assert service.all_stats()["sagas"] == 3
    with pytest.raises(NotFound, match=r"at version 9\.9\.9"):
        service.get("a", "9.9.9")


def test_stats_count_the_steps_that_branch_and_fan_out() -> None:
    service, _, _ = _service()
    steps = json.loads(json.dumps(SEED["steps"]))
    steps[1]["when"] = '$.input.kind != "digital"'
    steps[2].update(for_each="$.input.lines", max_concurrency=2, tolerated_failures="10%",
                    input={"line": "$.item"})
    # An inactive step counts for neither: it never runs.
    steps.append({**json.loads(json.dumps(SEED["steps"][0])), "id": "audit", "order": 4,
                  "active": False, "when": "$.input.audit == true"})
    service.create(_saga(id="branched", steps=steps), ACTOR)
    stats = service.saga_stats("branched")
    assert (stats["conditional_steps"], stats["fanout_steps"]) == (1, 1)
    assert (stats["steps"], stats["active_steps"], stats["groups"]) == (4, 3, 3)
    service.create(_saga(id="straight"), ACTOR)
    plain = service.saga_stats("straight")
    assert (plain["conditional_steps"], plain["fanout_steps"]) == (0, 0)


@pytest.mark.parametrize("raw", ["0", "101", "x", "²", "-1"])
def test_page_sizes_are_whole_numbers_in_range(raw: str) -> None:
    with pytest.raises(BadRequest):
        page_size(raw)
    assert page_size(None) == page_size("") == 20
