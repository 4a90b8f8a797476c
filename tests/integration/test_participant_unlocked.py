"""A participant is called with no row lock held: against the real MariaDB, an HTTP
participant (a server on 127.0.0.1) holds its answer for seconds while another writer updates
the same execution, which must not wait; the outcome is then recorded, and a delivery the
execution moved on from meanwhile is refused."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from chalicelib.adapters.mysql import connector as mysql
from chalicelib.adapters.mysql.connector import MySQLConnector
from chalicelib.adapters.mysql.definitions import MySQLDefinitionStore
from chalicelib.adapters.mysql.executions import MySQLExecutionStore
from chalicelib.adapters.mysql.migrate import migrate
from chalicelib.adapters.mysql.step_ledger import MySQLStepLedger
from chalicelib.config import Settings
from chalicelib.demo import BUILTIN_ACTIONS
from chalicelib.domain import event_types
from chalicelib.domain.executions import Execution, StepShape
from chalicelib.domain.lifecycle import ExecutionStatus, StepKind, StepStatus
from chalicelib.domain.models import SagaDefinition
from chalicelib.roots.step_handler import run_step
from chalicelib.roots.step_registry import ActionRegistry
from chalicelib.usecases.ports import Actor
from chalicelib.usecases.steps.attempt import AttemptRunner
from chalicelib.usecases.steps.failures import StepAborted
from tests.support.participants import Received, serving

HOLD_S = 3.0


class SlowParticipant:
    """Answers every POST 200 after holding it `hold` seconds; `arrived` is set on arrival."""

    def __init__(self) -> None:
        self.arrived = threading.Event()
        self.hold = HOLD_S
        self.url = ""

    def __call__(self, request: Received) -> tuple[int, Any]:
        self.arrived.set()
        time.sleep(self.hold)
        return 200, {"charged": request.body["phase"]}


@pytest.fixture
def participant() -> Iterator[SlowParticipant]:
    slow = SlowParticipant()
    with serving(slow) as server:
        slow.url = f"{server.url}/pay"
        yield slow


@pytest.fixture(scope="module")
def database(settings: Settings) -> Iterator[str]:
    name = f"{settings.database.mysql.database}_test_unlocked"
    mysql.recreate_database(settings.database.mysql, name)
    conn = mysql.connect(settings.database.mysql, database=name)
    try:
        migrate(conn)
    finally:
        conn.close()
    yield name
    mysql.drop_database(settings.database.mysql, name)


@pytest.fixture
def connector(settings: Settings, database: str) -> Iterator[MySQLConnector]:
    connector = MySQLConnector(settings.database.mysql, database=database)
    yield connector
    connector.close()


def _execution(connector: MySQLConnector, url: str, name: str) -> tuple[AttemptRunner, str]:
    definitions = MySQLDefinitionStore(connector)
    saga = definitions.insert_version(SagaDefinition.model_validate({
        "id": name, "name": "Unlocked", "description": "a participant's step",
        "version": "1.0.0", "steps": [{
            "id": "pay", "name": "Pay", "description": "charge", "order": 1, "action": url,
            "compensation": url, "max_retries": 0, "timeout": "30s"}]}),
        expected_revision=None, actor=Actor("test"), action="create")
    now = datetime.now(UTC)
    MySQLExecutionStore(connector).create(Execution(
        id=f"{name}-e", saga_id=saga.id, revision=saga.revision, version=saga.version,
        status=ExecutionStatus.RUNNING, input={}, started_at=now, updated_at=now),
        [StepShape(step_id="pay", group=1, kind=StepKind.COMPENSATABLE)])
    registry = ActionRegistry(BUILTIN_ACTIONS, lambda_client=lambda: None)
    return AttemptRunner(MySQLStepLedger(connector), definitions, registry.resolve), \
        f"{name}-e"


def _deliver(runtime: AttemptRunner, execution_id: str, outcome: dict[str, Any]) -> None:
    try:
        outcome["result"] = run_step(runtime, {"execution_id": execution_id, "step_id": "pay",
                                               "phase": "action", "attempt": 0})
    except Exception as error:
        outcome["error"] = error


def test_another_writer_does_not_wait_on_a_participants_call(
        connector: MySQLConnector, participant: SlowParticipant, settings: Settings,
        database: str) -> None:
    runtime, execution_id = _execution(connector, participant.url, "unlocked-a")
    outcome: dict[str, Any] = {}
    call = threading.Thread(target=_deliver, args=(runtime, execution_id, outcome))
    started = time.monotonic()
    call.start()
    assert participant.arrived.wait(10), "the participant was never called"
    # While the participant holds its answer, another writer locks and updates the execution.
    writer = MySQLConnector(settings.database.mysql, database=database)
    try:
        before = time.monotonic()
        with writer.transaction() as cur:
            cur.execute("SET SESSION innodb_lock_wait_timeout = 1")
            cur.execute("SELECT id FROM executions WHERE id = %s FOR UPDATE", (execution_id,))
            cur.execute("UPDATE executions SET resolution = %s WHERE id = %s",
                        ("looked at meanwhile", execution_id))
            cur.execute("SELECT * FROM step_runs WHERE execution_id = %s FOR UPDATE",
                        (execution_id,))
        waited = time.monotonic() - before
    finally:
        writer.close()
    assert waited < 0.5, f"the writer waited {waited:.2f}s on the participant's call"
    call.join(HOLD_S + 10)
    assert time.monotonic() - started >= HOLD_S
    assert outcome.get("result", {}).get("result") == {"charged": "action"}, outcome
    recorded = MySQLExecutionStore(connector).get(execution_id)
    assert recorded is not None and recorded.resolution == "looked at meanwhile"
    assert recorded.steps[0].status is StepStatus.SUCCEEDED
    assert recorded.steps[0].result == {"charged": "action"}


def test_a_call_the_execution_moved_on_from_is_not_recorded(
        connector: MySQLConnector, participant: SlowParticipant) -> None:
    runtime, execution_id = _execution(connector, participant.url, "unlocked-b")
    store = MySQLExecutionStore(connector)
    outcome: dict[str, Any] = {}
    call = threading.Thread(target=_deliver, args=(runtime, execution_id, outcome))
    call.start()
    assert participant.arrived.wait(10)
    # Meanwhile the execution ends (the reconciler, say): the late answer must not count.
    moved = store.transition(execution_id, {ExecutionStatus.RUNNING}, ExecutionStatus.FAILED,
                             event_types.SAGA_FAILED, {"reason": "test"})
    assert moved is not None
    call.join(HOLD_S + 10)
    assert isinstance(outcome.get("error"), StepAborted), outcome
    recorded = store.get(execution_id)
    assert recorded is not None and recorded.status is ExecutionStatus.FAILED
    assert recorded.steps[0].status is StepStatus.PENDING
    assert recorded.steps[0].result is None
