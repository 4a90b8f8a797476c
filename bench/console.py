"""The operator console with a long list: 1,000 executions of one saga, paged 50 at a time.

    .venv/bin/python -m bench.console [--runs 5]

The floor is the API's own answer for the same page (GET /executions?saga_id=...&limit=50,
over HTTP from `saga serve`); the console's figures are from a headless chromium (the browser
tests' playwright-core and Debian's chromium): the first page on screen after opening the
list, and each click (next page, previous page, a time-range filter) until its rows are on
screen. Prints a table and writes bench/results/console.json.
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from bench import harness
from bench.results_io import save, table
from chalicelib.config import get_settings
from chalicelib.roots import runtime
from tests.browser.conftest import ensure_browser, run_scenario
from tests.support.bulk import seed_completed
from tests.support.served import http, served

COUNT = 1000
FIRST = datetime(2026, 1, 1, tzinfo=UTC)


def api_page_ms(base: str, saga_id: str, samples: int = 30) -> list[float]:
    """The floor: one page of 50 from the API, then the next, as the console asks for them."""
    timings = []
    cursor = ""
    for _ in range(samples):
        started = time.perf_counter()
        answer = http("GET", f"{base}/api/v1/saga/executions?saga_id={saga_id}&limit=50"
                      + (f"&cursor={cursor}" if cursor else ""))
        timings.append((time.perf_counter() - started) * 1000)
        assert answer.status == 200, answer.raw[:300]
        cursor = answer.json()["next_cursor"] or ""
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5, help="browser runs of the scenario")
    args = parser.parse_args()
    ensure_browser()
    client = harness.prepare()
    saga = {**harness.seed_saga(), "id": f"bench-list-{uuid.uuid4().hex[:6]}"}
    status, body = harness.call(client, "POST", "/sagas", saga)
    assert status == 201, body
    container = runtime.container()
    started = time.perf_counter()
    seed_completed(container.connector, container.mongo, get_settings().database.mongodb, saga,
                   COUNT, FIRST)
    print(f"seeded {COUNT} executions in {time.perf_counter() - started:.1f}s")
    first_ms: list[float] = []
    click_ms: list[float] = []
    with served({}, stage="bench") as app:
        floor = api_page_ms(app.base, saga["id"])
        for _ in range(args.runs):
            result: dict[str, Any] = run_scenario(
                "bulk_list", base=app.base, saga_id=saga["id"],
                **{"from": "2026-01-01T01:40", "to": "2026-01-01T03:40"})
            assert len(result["pages"][0]) == 50, result["pages"][0]
            first_ms.append(result["first_ms"])
            click_ms += result["click_ms"]
    rows = [[label, f"{statistics.median(values):.0f}", f"{max(values):.0f}", len(values)]
            for label, values in (
                ("API: a page of 50 (floor)", floor),
                ("console: open the list, first page on screen", first_ms),
                ("console: next / previous / filter, rows on screen", click_ms))]
    print(table(rows, ["1,000 executions, pages of 50", "median ms", "max ms", "samples"]))
    path = save("console", {"executions": COUNT, "api_page_ms": floor, "first_page_ms": first_ms,
                            "click_ms": click_ms})
    print(f"written to {path}")


if __name__ == "__main__":
    main()
