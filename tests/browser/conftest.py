"""The browser suite: playwright-core (npm, pinned by package-lock.json) driving Debian's
chromium against `saga serve` on free ports, with the test stage deployed to the local stack."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from chalicelib.adapters.mysql.migrate import migrate
from chalicelib.config import get_settings
from chalicelib.demo import demo_data
from chalicelib.domain import lifecycle
from chalicelib.roots import runtime
from infra.deploy.local import deploy_local
from tests.support.participants import Received
from tests.support.served import Served, http, served

HERE = Path(__file__).parent
SCREENSHOTS = HERE / "screenshots"
CHROMIUM = os.environ.get("SAGA_CHROMIUM", "/usr/bin/chromium")
FINAL = {status.value for status in lifecycle.FINAL}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/browser/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)
            item.add_marker(pytest.mark.browser)


def ensure_browser() -> None:
    """playwright-core installed from the lock file (once), and the system chromium; a
    RuntimeError saying what is missing."""
    if not Path(CHROMIUM).is_file():
        raise RuntimeError(f"{CHROMIUM} is missing: `apt-get install chromium` (make test does)")
    if not (HERE / "node_modules" / "playwright-core" / "package.json").is_file():
        if shutil.which("npm") is None:
            raise RuntimeError("npm is needed to install playwright-core for the browser tests")
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--prefix", str(HERE)],
                       check=True, timeout=300)
    SCREENSHOTS.mkdir(exist_ok=True)


@pytest.fixture(scope="session")
def browser_ready() -> None:
    try:
        ensure_browser()
    except RuntimeError as missing:
        pytest.fail(str(missing))


@pytest.fixture(scope="session")
def deployed_stage(local_stack: Any) -> None:
    runtime.use(None)
    deploy_local(get_settings(), say=lambda line: None)
    migrate(runtime.container().connector.connection())
    with runtime.container().connector.transaction() as cur:
        demo_data.seed_account(cur, "merchant", "0.00")


def new_customer(balance: str = "1000.00") -> str:
    customer = f"browser-{uuid.uuid4().hex[:8]}"
    with runtime.container().connector.transaction() as cur:
        demo_data.seed_account(cur, customer, balance)
    return customer


@dataclass
class Console:
    """A served app and the calls the tests make to it besides the browser's."""

    served: Served

    def call(self, method: str, path: str, body: Any = None,
             bearer: str | None = None) -> tuple[int, Any]:
        answer = http(method, f"{self.served.base}/api/v1/saga{path}",
                      None if body is None else json.dumps(body).encode(),
                      {"Authorization": f"Bearer {bearer}"} if bearer else None, timeout_s=30)
        return answer.status, answer.json()

    def wait(self, execution_id: str, timeout_s: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while True:
            status, execution = self.call("GET", f"/executions/{execution_id}")
            assert status == 200, execution
            if execution["status"] in FINAL or time.monotonic() > deadline:
                return execution
            time.sleep(0.2)


def run_scenario(name: str, **args: Any) -> dict[str, Any]:
    """One scenario of scenarios.mjs in a fresh chromium; its JSON result."""
    payload = {"chromium": CHROMIUM, "screenshots": str(SCREENSHOTS), **args}
    started = time.monotonic()
    result = subprocess.run(["node", str(HERE / "scenarios.mjs"), name, json.dumps(payload)],
                            cwd=HERE, capture_output=True, text=True, timeout=150)
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    assert lines, f"{name} printed no result: {result.stdout[-2000:]} {result.stderr[-2000:]}"
    outcome = json.loads(lines[-1])
    page = outcome.get("text", "")[:1500]
    assert outcome["ok"], f"{name} failed: {outcome['error']}\npage: {page}"
    assert outcome["page_errors"] == [], outcome["page_errors"]
    print(f"BROWSER {name}: {time.monotonic() - started:.1f}s")
    return outcome


@pytest.fixture(scope="module")
def console(browser_ready: None, deployed_stage: None) -> Iterator[Console]:
    """`saga serve` with its relay, projector and WebSocket gateway, auth off."""
    with served({}, events=True) as app:
        yield Console(app)


class HeldParticipant:
    """A participant whose actions hold their answer until /release is called (the scenario
    calls it once the page has shown what it waits for): no timing decides what is seen.
    Compensations answer at once."""

    def __init__(self, answer: dict[str, Any]) -> None:
        self.answer = answer
        self.released = threading.Event()

    def respond(self, request: Received) -> tuple[int, Any]:
        if request.path == "/release":
            self.released.set()
        elif request.body["phase"] == "action":
            self.released.wait(timeout=60)
        return 200, self.answer
