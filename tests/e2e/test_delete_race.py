"""DELETE and execute at the same moment: one of them wins cleanly. Either the delete answers
409 because an execution got in first, or the executes that came after it answer 404; never an
execution of a version that is gone."""

from __future__ import annotations

import threading
import uuid
from typing import Any

from chalicelib.domain.errors import SagaError
from chalicelib.domain.requests import ExecuteRequest
from chalicelib.http.http_errors import http_status
from chalicelib.roots import runtime
from chalicelib.usecases.ports import Actor
from tests.e2e.conftest import Api
from tests.support.sagas import one_step_saga

ROUNDS = 4
EXECUTES = 8


def _outcome(call: Any) -> int:
    try:
        call()
    except SagaError as error:
        return http_status(error)
    return 200


def _orphans(saga_id: str) -> list[dict[str, Any]]:
    """Executions whose version no longer exists."""
    with runtime.container().connector.transaction() as cur:
        cur.execute("SELECT e.id, e.status, e.revision FROM executions e "
                    "LEFT JOIN saga_versions v ON v.saga_id = e.saga_id "
                    "AND v.revision = e.revision WHERE e.saga_id = %s AND v.revision IS NULL",
                    (saga_id,))
        return list(cur.fetchall())


def _race(saga_id: str, actor: Actor) -> dict[str, list[int]]:
    """EXECUTES executes and one DELETE released at the same instant; their statuses."""
    parts = runtime.container()
    executions, definitions = parts.execution_service, parts.definition_service
    gate = threading.Barrier(EXECUTES + 1)
    results: dict[str, list[int]] = {"execute": [], "delete": []}

    def execute() -> None:
        gate.wait(timeout=10)
        results["execute"].append(_outcome(lambda: executions.execute(
            saga_id, ExecuteRequest(input={"customer_id": "nobody", "amount": "1.00"}), actor)))

    def delete() -> None:
        gate.wait(timeout=10)
        results["delete"].append(_outcome(lambda: definitions.destroy(saga_id, actor)))

    threads = [threading.Thread(target=execute) for _ in range(EXECUTES)]
    threads.append(threading.Thread(target=delete))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def test_delete_and_executes_at_once_never_strand_an_execution(api: Api) -> None:
    actor = Actor(name="race")
    outcomes = []
    for _ in range(ROUNDS):
        saga_id = f"race-{uuid.uuid4().hex[:10]}"
        api.create_saga(one_step_saga(saga_id))
        results = _race(saga_id, actor)
        outcomes.append(results)
        assert len(results["execute"]) == EXECUTES and set(results["execute"]) <= {200, 404}, \
            results
        assert results["delete"] in ([200], [409]), results
        assert _orphans(saga_id) == []
        with runtime.container().connector.transaction() as cur:
            cur.execute("SELECT COUNT(*) AS n FROM executions WHERE saga_id = %s", (saga_id,))
            # Every execute that answered 200 has its row, and no refused one left any.
            assert cur.fetchone()["n"] == results["execute"].count(200), results
        if results["delete"] == [409]:
            assert 200 in results["execute"], results
    print("\ndelete race outcomes:", outcomes)
