"""What callers send is checked at the edge: the real routes over the in-memory ports (no
server). Compensate's one body rule (row 3), an input MySQL could not store (row 8),
listings without input (row 12), sealed cursors and storable definitions (row 17)."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from chalice.test import Client

from app import app
from chalicelib.config import Settings, load_settings
from chalicelib.domain.executions import Execution, ExecutionStatus
from chalicelib.domain.models import SagaDefinition
from chalicelib.domain.storable import MAX_REQUEST_DEPTH
from chalicelib.domain.validation import MAX_ORDER
from chalicelib.roots import runtime
from chalicelib.roots.container import Container
from chalicelib.roots.parts import part
from chalicelib.testing import (
    InMemoryDefinitionStore,
    InMemoryExecutionStore,
    InMemoryReadModel,
    ScriptedEngine,
)
from chalicelib.usecases.definitions import DefinitionService, Limits
from chalicelib.usecases.executions import ExecutionPolicy, ExecutionService
from chalicelib.usecases.ports import Actor

API = "/api/v1/saga"
SEED = json.loads((Path(__file__).parents[1] / "fixtures" / "payment-saga.json").read_text())
JSON = {"Content-Type": "application/json"}


class _NoLimit:
    def check(self, caller: str) -> None:
        return None


class InMemoryContainer(Container):
    """The process's parts with the services over the in-memory ports."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.definitions = InMemoryDefinitionStore()
        self.executions = InMemoryExecutionStore(self.definitions)
        self.reads = InMemoryReadModel()
        self.machines = ScriptedEngine()

    @part
    def rate_limiter(self) -> _NoLimit:
        return _NoLimit()

    @part
    def definition_service(self) -> DefinitionService:
        return DefinitionService(self.definitions, self.validation_policy,
                                 Limits(100, 1000), executions=self.executions,
                                 engine=self.machines)

    @part
    def execution_service(self) -> ExecutionService:
        return ExecutionService(self.definitions, self.executions, self.machines,
                                ExecutionPolicy(faults_enabled=False), self.reads)


@pytest.fixture(scope="module")
def api_settings() -> Settings:
    # Read once: parsing the settings file costs more than most tests here, and they are frozen.
    return load_settings(environ={"SAGA__LIMITS__CURSOR_SECRET": "unit"})


@pytest.fixture
def parts(api_settings: Settings) -> Iterator[InMemoryContainer]:
    fake = InMemoryContainer(api_settings)
    runtime.use(fake)
    try:
        yield fake
    finally:
        runtime.use(None)


@pytest.fixture
def client(parts: InMemoryContainer) -> Iterator[Client]:
    with Client(app) as test_client:
        yield test_client


def _call(client: Client, method: str, path: str, raw: str = "") -> tuple[int, Any]:
    response = client.http.request(method, f"{API}{path}", body=raw.encode(), headers=JSON)
    return response.status_code, json.loads(response.body) if response.body else None


def _saga(parts: InMemoryContainer, saga_id: str = "pay") -> None:
    parts.definitions.insert_version(SagaDefinition.model_validate({**SEED, "id": saga_id}),
                                     expected_revision=None, actor=Actor("t"), action="create")


def _completed(parts: InMemoryContainer, execution_id: str, minutes: int = 0,
               saga_id: str = "pay") -> None:
    saga = parts.definitions.get(saga_id)
    assert saga is not None
    at = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=minutes)
    execution = Execution(id=execution_id, saga_id=saga_id, revision=saga.revision,
                          version=saga.version, status=ExecutionStatus.COMPLETED,
                          input={"customer_id": execution_id}, started_at=at, updated_at=at)
    parts.executions.put(execution)
    parts.reads.project(execution)


# -- row 3: compensate's body --------------------------------------------------------------------

@pytest.mark.parametrize(("raw", "says"), [
    ("[]", "must be a JSON object"), ("null", "must be a JSON object"),
    ("0", "must be a JSON object"), ("false", "must be a JSON object"),
    ('""', "must be a JSON object"), ("{}", "field 'execution_id' is required"),
    ('{"executionId": "old"}', "unknown field 'executionId'"), (" ", "not valid JSON"),
])
def test_every_compensate_body_but_one_naming_the_execution_is_refused(
        client: Client, parts: InMemoryContainer, raw: str, says: str) -> None:
    _saga(parts)
    _completed(parts, "old")
    _completed(parts, "latest", minutes=1)
    status, body = _call(client, "POST", "/sagas/pay/compensate", raw)
    assert status == 400, body
    assert says in body["error"]["message"]
    assert parts.machines.starts == []  # nothing was compensated, least of all "the latest"


def test_no_body_undoes_the_latest_completed_and_a_body_the_one_it_names(
        client: Client, parts: InMemoryContainer) -> None:
    _saga(parts)
    _completed(parts, "old")
    _completed(parts, "latest", minutes=1)
    status, body = _call(client, "POST", "/sagas/pay/compensate")
    assert (status, body["id"], body["status"]) == (202, "latest", "COMPENSATING")
    status, body = _call(client, "POST", "/sagas/pay/compensate", '{"execution_id": "old"}')
    assert (status, body["id"]) == (202, "old")


def test_a_refused_body_is_refused_before_the_saga_is_looked_up(client: Client) -> None:
    assert _call(client, "POST", "/sagas/ghost/compensate", "{}")[0] == 400
    assert _call(client, "POST", "/sagas/ghost/compensate")[0] == 404


# -- row 8: an input MySQL could not store inside its event ------------------------------------

def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


def test_an_input_one_level_deeper_than_its_event_can_hold_is_400_naming_the_limit(
        client: Client, parts: InMemoryContainer) -> None:
    _saga(parts)
    status, body = _call(client, "POST", "/sagas/pay/execute",
                         json.dumps({"input": _nested(MAX_REQUEST_DEPTH)}))
    assert status == 202, body
    for depth in (MAX_REQUEST_DEPTH + 1, 31):  # under the body's own limit (32)
        status, body = _call(client, "POST", "/sagas/pay/execute",
                             json.dumps({"input": _nested(depth)}))
        assert status == 400 and body["error"]["code"] == "not_storable", body
        assert f"deeper than {MAX_REQUEST_DEPTH} levels, the limit" in body["error"]["message"]
    assert len(parts.machines.starts) == 1


# -- row 12: listings leave the input out --------------------------------------------------------

def test_listed_executions_have_no_input_the_execution_itself_has_it(
        client: Client, parts: InMemoryContainer) -> None:
    _saga(parts)
    _completed(parts, "e1")
    status, page = _call(client, "GET", "/executions")
    assert status == 200 and [item["id"] for item in page["items"]] == ["e1"]
    assert "input" not in page["items"][0] and "steps" not in page["items"][0]
    parts.reads.available = False  # the write model's fallback lists the same way
    assert "input" not in _call(client, "GET", "/executions")[1]["items"][0]
    assert _call(client, "GET", "/executions/e1")[1]["input"] == {"customer_id": "e1"}


# -- row 17: cursors and definitions ------------------------------------------------------------

def test_a_cursor_pages_only_the_listing_that_handed_it_out(
        client: Client, parts: InMemoryContainer) -> None:
    for saga_id in ("a-saga", "b-saga"):
        _saga(parts, saga_id)
    _completed(parts, "e1", saga_id="a-saga")
    _completed(parts, "e2", minutes=1, saga_id="a-saga")
    sagas = _call(client, "GET", "/sagas?limit=1")[1]
    executions = _call(client, "GET", "/executions?limit=1")[1]
    status, second = _call(client, "GET", f"/sagas?limit=1&cursor={sagas['next_cursor']}")
    assert status == 200 and [s["id"] for s in second["items"]] == ["b-saga"]
    status, second = _call(client, "GET",
                           f"/executions?limit=1&cursor={executions['next_cursor']}")
    assert status == 200 and [e["id"] for e in second["items"]] == ["e1"]
    for path in (f"/sagas?cursor={executions['next_cursor']}",
                 f"/executions?cursor={sagas['next_cursor']}",
                 "/sagas?cursor=eyJhZnRlciI6ICJ6enotbm90LWhhbmRlZC1vdXQifQ==",
                 f"/sagas?cursor={sagas['next_cursor'][:-2]}"):
        status, body = _call(client, "GET", path)
        assert status == 400 and body["error"]["message"].startswith("invalid cursor"), path


@pytest.mark.parametrize(("change", "field", "says"), [
    ({"input": {"$a": "$.input.amount"}}, "steps[0].input.$a", "must not start with '$'"),
    ({"order": 2**63}, "steps[0].order", f"at most {MAX_ORDER}"),
    ({"order": MAX_ORDER + 1}, "steps[0].order", f"at most {MAX_ORDER}"),
])
def test_a_step_no_store_could_hold_is_refused_when_the_saga_is_stored(
        client: Client, change: dict[str, Any], field: str, says: str) -> None:
    definition = copy.deepcopy(SEED)
    definition["steps"] = [{**definition["steps"][0], **change}]
    status, body = _call(client, "POST", "/sagas", json.dumps(definition))
    assert status == 400 and body["error"]["code"] == "validation_failed", body
    assert [(v["field"], says in v["message"]) for v in body["error"]["violations"]] == [
        (field, True)]


# -- bodies become the use cases' requests at the edge -------------------------------------------

STEP = {"id": "audit", "name": "Audit", "description": "audit the payment",
        "action": "send_notification", "compensation": "cancel_notification", "max_retries": 0,
        "timeout": "5s"}


def test_a_step_to_add_is_read_strictly_and_appended_after_the_last_group(
        client: Client, parts: InMemoryContainer) -> None:
    _saga(parts)
    status, body = _call(client, "POST", "/sagas/pay/steps", "[]")
    assert (status, body["error"]["code"]) == (400, "bad_request"), body
    assert "JSON object describing one step" in body["error"]["message"]
    status, body = _call(client, "POST", "/sagas/pay/steps",
                         json.dumps({**STEP, "order": "9", "colour": "red"}))
    assert (status, body["error"]["code"]) == (400, "validation_failed"), body
    assert sorted((v["field"], v["rule"]) for v in body["error"]["violations"]) == [
        ("colour", "unknown_field"), ("order", "type")]
    status, body = _call(client, "POST", "/sagas/pay/steps", json.dumps({**STEP, "order": None}))
    assert (status, body["error"]["code"]) == (400, "validation_failed"), body
    status, body = _call(client, "POST", "/sagas/pay/steps", json.dumps(STEP))
    assert status == 201, body
    orders = [step["order"] for step in body["steps"]]
    assert orders[-1] == max(orders[:-1]) + 1


@pytest.mark.parametrize(("method", "path", "raw", "code", "says"), [
    ("PUT", "/sagas/pay/active", '{"active": "no"}', "bad_request", "field 'active'"),
    ("PUT", "/sagas/pay/active", "", "malformed_body", "needs a JSON body"),
    ("POST", "/executions/ghost/resolve", '{"reason": 5}', "bad_request", "field 'reason'"),
    ("POST", "/executions/ghost/resolve", '{"reason": "no"}', "bad_request", "3 to 500"),
    ("POST", "/executions/ghost/resolve", "[]", "bad_request", '{"reason": "..."}'),
    ("POST", "/sagas/pay/execute", '{"faults": [{"step_id": "x"}]}', "bad_request",
     "fault injection is disabled"),
    ("POST", "/sagas/pay/execute", '{"input": {}, "inputs": {}}', "bad_request",
     "unknown field 'inputs'"),
])
def test_refused_bodies_answer_their_code_and_say_what_is_wrong(
        client: Client, parts: InMemoryContainer, method: str, path: str, raw: str, code: str,
        says: str) -> None:
    _saga(parts)
    status, body = _call(client, method, path, raw)
    assert (status, body["error"]["code"]) == (400, code), body
    assert says in body["error"]["message"]
    assert parts.machines.starts == []


@pytest.mark.parametrize("raw", ["", "null", "{}"])
def test_an_execute_without_a_body_starts_with_an_empty_input(
        client: Client, parts: InMemoryContainer, raw: str) -> None:
    _saga(parts)
    status, body = _call(client, "POST", "/sagas/pay/execute", raw)
    assert (status, body["input"]) == (202, {}), body


# -- workflow: what POST /sagas answers about Express ----------------------------------------------

def test_an_express_saga_over_five_minutes_is_stored_with_a_warning_in_the_response(
        client: Client) -> None:
    status, saga = _call(client, "POST", "/sagas", json.dumps({**SEED, "workflow": "express"}))
    assert status == 201, saga
    assert (saga["workflow"], saga["workflow_type"]) == ("express", "express")
    assert saga["forward_worst_case_s"] > 300
    [warning] = saga["warnings"]
    assert f"{saga['forward_worst_case_s']} s" in warning
    status, shown = _call(client, "GET", f"/sagas/{SEED['id']}")
    assert (status, shown["workflow_type"], shown["warnings"]) == (200, "express", [warning])


def test_auto_runs_a_short_saga_on_express_and_one_that_waits_on_standard(
        client: Client) -> None:
    short = copy.deepcopy(SEED)
    for step in short["steps"]:
        step.update(timeout="5s", max_retries=0)
    status, saga = _call(client, "POST", "/sagas",
                         json.dumps({**short, "id": "short", "workflow": "auto"}))
    assert (status, saga["workflow"], saga["workflow_type"], saga["warnings"]) == \
        (201, "auto", "express", [])
    timer = {"id": "cool-off", "name": "Cool off", "description": "a pause before paying",
             "order": 99, "kind": "wait", "wait": "10s"}
    status, saga = _call(client, "POST", "/sagas", json.dumps(
        {**short, "id": "waits", "workflow": "auto", "steps": [*short["steps"], timer]}))
    assert (status, saga["workflow_type"]) == (201, "standard"), saga
    assert saga["workflow_reason"] == "step cool-off waits"


# -- every violation of a definition in one 400 ---------------------------------------------

def test_a_body_with_thirteen_faults_type_errors_included_gets_all_thirteen_at_once(
        client: Client, parts: InMemoryContainer) -> None:
    step = copy.deepcopy(SEED["steps"][0])
    body = {**copy.deepcopy(SEED), "id": "bad id!", "name": "X", "version": "one",
            "active": "yes", "metadata": "none"}
    del body["description"]
    body["steps"] = [{**step, "timeout": 30, "max_retries": "3", "description": "short"},
                     {**copy.deepcopy(SEED["steps"][1]), "order": "2", "colour": "red"},
                     {**copy.deepcopy(SEED["steps"][2]), "action": None}]
    del body["steps"][0]["compensation"]
    status, answer = _call(client, "POST", "/sagas", json.dumps(body))
    assert status == 400, answer
    found = sorted((v["field"], v["rule"]) for v in answer["error"]["violations"])
    assert found == sorted([
        ("id", "charset"), ("name", "min_length"), ("description", "required"),
        ("version", "format"), ("active", "type"), ("metadata", "type"),
        ("steps[0].timeout", "type"), ("steps[0].max_retries", "type"),
        ("steps[0].description", "min_length"), ("steps[0].compensation", "required"),
        ("steps[1].order", "type"), ("steps[1].colour", "unknown_field"),
        ("steps[2].action", "required")])
    assert len(found) == 13
    assert answer["error"]["message"] == "the saga definition has 13 error(s)"
    assert parts.definitions.get("bad id!") is None


def test_a_long_https_action_and_a_teams_own_type_are_accepted_with_the_defaults(
        client: Client, parts: InMemoryContainer) -> None:
    url = "https://abcdefghij.execute-api.eu-west-1.amazonaws.com/prod/checkout/v2/" \
          "reservations/hold"
    url += "-" * (105 - len(url))
    assert len(url) == 105
    body = copy.deepcopy(SEED)
    body.update(id="checkout", type="CheckoutSaga")
    body["steps"][0].update(action=url, compensation=url + "/undo", type="CheckoutStep")
    status, answer = _call(client, "POST", "/sagas", json.dumps(body))
    assert status == 201, answer
    assert answer["type"] == "CheckoutSaga"
    assert answer["steps"][0]["action"] == url
