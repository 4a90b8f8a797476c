"""End-to-end: the API in-process, the step Lambdas and state machines in the local LocalStack,
the real MariaDB. Deployed once per session (unchanged code is not redeployed)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from chalice.test import Client

from chalicelib.adapters import aws
from chalicelib.adapters.mysql.migrate import migrate
from chalicelib.adapters.stepfunctions.engine import run_history
from chalicelib.config import Settings, get_settings
from chalicelib.demo import demo_data
from chalicelib.domain import lifecycle
from chalicelib.roots import runtime
from infra.deploy.local import deploy_local, load_app
from infra.local_events import EventWorkers
from infra.stack.supervisor import Supervisor
from infra.ws_gateway import LocalWebsocketGateway

API = "/api/v1/saga"
JSON = {"Content-Type": "application/json"}
FINAL = {status.value for status in lifecycle.FINAL}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(autouse=True, scope="session")
def deployed(local_stack: Supervisor) -> None:
    runtime.use(None)
    deploy_local(get_settings(), say=lambda line: None)
    migrate(runtime.container().connector.connection())


@pytest.fixture(scope="session")
def event_workers(deployed: None) -> Iterator[EventWorkers]:
    """The outbox relay and the projector, as `saga serve` runs them."""
    workers = EventWorkers.start()
    yield workers
    workers.stop()


@pytest.fixture(scope="session")
def ws_gateway(deployed: None) -> Iterator[LocalWebsocketGateway]:
    settings = get_settings()
    gateway = LocalWebsocketGateway(
        load_app(), stage="test", ws_port=settings.websocket.port,
        management_port=int(settings.websocket.management_endpoint.rsplit(":", 1)[1])).start()
    yield gateway
    gateway.stop()


@pytest.fixture(scope="session")
def client(deployed: None, event_workers: EventWorkers,
           ws_gateway: LocalWebsocketGateway) -> Iterator[Client]:
    with Client(load_app(), stage_name="test") as test_client:
        yield test_client


class Api:
    """The REST API as a user calls it, plus polling for an execution to settle."""

    def __init__(self, client: Client) -> None:
        self.client = client

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        raw = b"" if body is None else json.dumps(body).encode()
        response = self.client.http.request(method, f"{API}{path}", body=raw, headers=JSON)
        return response.status_code, json.loads(response.body) if response.body else None

    def create_saga(self, definition: dict[str, Any]) -> dict[str, Any]:
        status, body = self.call("POST", "/sagas", definition)
        assert status == 201, body
        return body

    def execute(self, saga_id: str, **body: Any) -> dict[str, Any]:
        status, execution = self.call("POST", f"/sagas/{saga_id}/execute", body)
        assert status in (200, 202), execution
        return execution

    def wait(self, execution_id: str, timeout_s: float = 60,
             until: Callable[[dict[str, Any]], bool] | None = None,
             after: dict[str, Any] | None = None) -> dict[str, Any]:
        """Poll until the execution is final (or `until`), and no older than the view
        `after` (a response to one's own write), as a client reading its writes would."""
        floor = after["consistency"]["sequence"] if after else 0
        done = until or (lambda e: e["status"] in FINAL
                         and e["consistency"]["sequence"] >= floor)
        deadline = time.monotonic() + timeout_s
        while True:
            status, execution = self.call("GET", f"/executions/{execution_id}")
            assert status == 200, execution
            if done(execution):
                return execution
            if time.monotonic() > deadline:
                # Never what it has: a state that never comes is the test's failure.
                pytest.fail(f"execution {execution_id} did not reach the awaited state in "
                            f"{timeout_s:g} s; it is {execution['status']}: {execution}")
            time.sleep(0.2)


@pytest.fixture(scope="session")
def api(client: Client) -> Api:
    return Api(client)


@pytest.fixture(scope="session")
def settings_e2e(deployed: None) -> Settings:
    return get_settings()


@pytest.fixture
def demo(deployed: None) -> Callable[[], dict[str, Any]]:
    """Seeds a customer and the merchant; returns a snapshot function of the demo tables."""
    with runtime.container().connector.transaction() as cur:
        demo_data.seed_account(cur, "merchant", "0.00")

    def snapshot() -> dict[str, Any]:
        with runtime.container().connector.transaction() as cur:
            return demo_data.snapshot(cur)

    return snapshot


def seed_customer(account_id: str, balance: str = "100.00") -> None:
    with runtime.container().connector.transaction() as cur:
        demo_data.seed_account(cur, account_id, balance)


def new_customer(balance: str = "1000.00") -> str:
    """A fresh funded account, so a test's money never mixes with another's."""
    customer = f"cust-{uuid.uuid4().hex[:8]}"
    seed_customer(customer, balance)
    return customer


def sfn_history(settings: Settings, run_arn: str) -> list[dict[str, Any]]:
    return run_history(aws.client("stepfunctions", settings.aws), run_arn)
