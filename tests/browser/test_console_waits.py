"""A step that waits, in the console in a real browser: its waiting bar appears when the push
says the wait began, grows with the clock between events, marks its last heartbeat, and ends
when the callback is completed, all without a reload. No engine runs: the test writes the
wait's events to the write model's outbox as the step runtime would (tests/support/waits.py),
and `saga serve`'s relay, projector and WebSocket gateway carry them to the page."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chalicelib.domain.lifecycle import StepStatus
from chalicelib.roots import runtime
from tests.browser.conftest import Console, run_scenario
from tests.support.participants import Received, serving
from tests.support.served import served
from tests.support.waits import WaitWriter

STEP = "payment-confirmed"


@pytest.fixture(scope="module")
def live_console(browser_ready: None, local_stack: Any) -> Iterator[Console]:
    """`saga serve` with its relay, projector and WebSocket gateway, auth off. Nothing here
    runs a state machine, so the stage's Lambdas are not deployed (the `console` fixture's
    deployed_stage)."""
    runtime.use(None)
    runtime.container().ensure_schema()
    with served({}, events=True) as app:
        yield Console(app)


def test_a_waiting_step_is_drawn_live_until_its_callback_completes(
        live_console: Console) -> None:
    writer = WaitWriter(runtime.container().connector, saga_id=f"waits-{uuid.uuid4().hex[:8]}")
    writer.create(datetime.now(UTC) - timedelta(seconds=2))

    def drive(request: Received) -> tuple[int, Any]:
        at = datetime.now(UTC)
        if request.path == "/wait":
            writer.wait(STEP, at, until=at + timedelta(minutes=5), callback_id="cb_browser",
                        called=at - timedelta(milliseconds=300), answer={"ticket": "T-9"})
        elif request.path == "/heartbeat":
            writer.heartbeat(STEP, at)
        elif request.path == "/complete":
            writer.complete(STEP, at, by="callback:partner", result={"paid": True})
        elif request.path == "/finish":
            writer.finish(at)
        return 200, {}

    with serving(drive) as driver:
        result = run_scenario("waiting_bar", base=live_console.served.base,
                              execution_id=writer.execution_id, step=STEP, driver=driver.url,
                              waiting=StepStatus.WAITING.value)
    print(f"BROWSER waiting bar: shown {result['opened']['ms']} ms after the wait began; "
          f"whole scenario {result['ms']} ms")
    opened, beat, closed = result["opened"], result["beat"], result["closed"]
    assert opened["status"] == StepStatus.WAITING.value
    assert opened["text"].startswith("callback cb_browser until ")
    assert "waiting for callback cb_browser" in opened["label"] and "so far" in opened["label"]
    assert opened["cell"].startswith("callback cb_browser until")
    assert result["grown"] > opened["width"]  # the clock alone made it grow
    assert "last heartbeat" in beat["label"] and "last heartbeat" in beat["cell"]
    assert closed["status"] == StepStatus.SUCCEEDED.value
    assert "completed by callback:partner" in closed["label"]
    assert closed["text"].endswith(" · by callback:partner")
    assert "completed by callback:partner" in closed["cell"]
    assert result["still"] == closed["width"]  # ended: it grows no more
    assert result["ended"]["label"] == closed["label"]  # kept once the execution completed
    assert result["same_document"] and result["live"] == "on"
    status, execution = live_console.call("GET", f"/executions/{writer.execution_id}")
    assert status == 200 and execution["consistency"]["source"] == "read_model"
    waiting = next(s for s in execution["steps"] if s["step_id"] == STEP)["waiting"]
    assert (waiting["callback_id"], waiting["completed_by"]) == ("cb_browser",
                                                                 "callback:partner")
