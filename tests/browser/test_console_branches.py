"""A saga that branches and fans out, in the console in a real browser: a digital order skips
shipping (the timeline marks the skip with its condition and the value it read) and reserves
each of its three lines (a fan-out, two at once, one refusal tolerated). The items are a
group under their step, collapsed, counted by status as their events arrive over the
WebSocket; it opens with a click, stays open while the page redraws live, and closes from the
keyboard. The saga's graph says the condition and the fan-out."""

from __future__ import annotations

import threading
import uuid
from typing import Any

from tests.browser.conftest import Console, run_scenario
from tests.support.participants import Received, serving

LINES = ["sku-1", "sku-2", "sku-3"]
REFUSED, HELD = "sku-2", "sku-3"
WHEN = '$.input.kind != "digital"'


def _step(step_id: str, order: int, url: str, **extra: Any) -> dict[str, Any]:
    return {"id": step_id, "name": step_id.title(), "description": f"{step_id} the order",
            "order": order, "action": f"{url}/{step_id}", "compensation": f"{url}/undo",
            "max_retries": 0, "timeout": "30s", **extra}


def test_a_skip_and_a_fan_out_s_items_are_shown_live(console: Console) -> None:
    released = threading.Event()

    def respond(request: Received) -> tuple[int, Any]:
        if request.path == "/release":
            released.set()
            return 200, {}
        sku = ((request.body.get("item") or {}).get("value") or {}).get("sku")
        if request.path == "/reserve" and sku == REFUSED:
            return 422, {"error": {"type": "OutOfStock", "message": f"no {sku} left"}}
        if request.path == "/reserve" and sku == HELD:
            released.wait(timeout=60)  # until the page has shown the others' counts
        return 200, {"path": request.path, "sku": sku}

    with serving(respond) as participant:
        url = participant.url
        saga_id = f"branches-{uuid.uuid4().hex[:8]}"
        status, stored = console.call("POST", "/sagas", {
            "id": saga_id, "name": "Order", "version": "1.0.0",
            "description": "an order that branches and fans out", "steps": [
                _step("create", 1, url),
                _step("ship", 2, url, when=WHEN),
                _step("reserve", 3, url, for_each="$.input.lines", max_concurrency=2,
                      tolerated_failures=1, input={"sku": "$.item.sku"})]})
        assert status == 201, stored
        result = run_scenario("branches", base=console.served.base, saga_id=saga_id,
                              execute={"input": {"kind": "digital", "lines": [
                                  {"sku": sku} for sku in LINES]}},
                              skipped="ship", fanout="reserve", items=len(LINES),
                              release=f"{url}/release")
    assert released.is_set()
    print(f"BROWSER branches: {result['marks']} ms after the execute")
    skipped = result["skipped"]
    assert skipped["status"] == "SKIPPED"
    assert skipped["label"] == (f'ship: skipped — when {WHEN} was false; it read '
                                '$.input.kind = "digital"')
    assert skipped["text"] == f"skipped: {WHEN} → false"
    assert skipped["cell"] == f'when {WHEN} was false; it read $.input.kind = "digital"'
    # Live, collapsed: two items ended while the third was held.
    during = result["during"]
    assert during["status"] == "RUNNING"
    assert during["counts"]["SUCCEEDED"] == 1 and during["counts"]["FAILED"] == 1
    assert sum(during["counts"].values()) == len(LINES)
    assert during["text"].startswith("3 items: ")
    assert (during["expanded"], during["item_rows"], during["table_rows"]) == ("false", 0, 0)
    opened = result["opened"]
    assert (opened["expanded"], opened["item_rows"], opened["table_rows"]) == ("true", 3, 3)
    # Completed, still open after the live redraws, every item's state shown.
    ended = result["ended"]
    assert ended["status"] == "COMPLETED"
    assert ended["counts"] == {"SUCCEEDED": 2, "FAILED": 1}
    assert ended["text"] == "3 items: 2 succeeded · 1 failed"
    assert (ended["expanded"], ended["item_rows"], ended["table_rows"]) == ("true", 3, 3)
    assert ended["item_labels"] == [f"↳ reserve[{n}]" for n in range(len(LINES))]
    assert ended["item_statuses"] == ["SUCCEEDED", "FAILED", "SUCCEEDED"]
    assert ended["item_bars"] == len(LINES)  # an attempt each
    closed = result["closed"]
    assert (closed["expanded"], closed["item_rows"], closed["table_rows"]) == ("false", 0, 0)
    assert closed["focused"] == "reserve"  # the redraw kept the keyboard's place
    assert result["live"] == "on" and result["same_document"]  # never reloaded
    drawn = result["drawn"]
    assert drawn["when"] == WHEN and drawn["when_text"] == f"◇ if {WHEN}"
    assert drawn["gates"] == 1
    assert drawn["for_each"] == "$.input.lines" and drawn["stacks"] == 2
    assert drawn["fanout_text"].startswith("⫴ each ") and "≤2" in drawn["fanout_text"]
    assert "for each item of: $.input.lines, at most 2 at once, 1 may fail" in \
        drawn["fanout_label"]
    assert drawn["counts"] == "3 active of 3 · 1 conditional · 1 fan-out"
