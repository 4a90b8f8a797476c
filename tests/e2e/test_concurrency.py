"""`saga serve` under 64 concurrent callers mixing reads and writes, with the API's MySQL
sessions KILLed on the server halfway through: no 5xx but a few 503s at the kill, every read
of an existing saga answers 200, and the service keeps serving afterwards."""

from __future__ import annotations

import time

from bench.concurrency import API, bench_api, kill_connections, run_load, seed
from tests.support.served import http

DB = "saga_db_concurrency_test"


def test_many_callers_and_a_killed_connection_are_survived(deployed: None) -> None:
    with bench_api(DB) as api:
        sagas = seed(api)
        killed: list[tuple[float, int]] = []
        started = time.monotonic()

        def kill() -> None:
            killed.append((time.monotonic() - started, kill_connections(DB)))

        load, elapsed = run_load(api, callers=64, seconds=6, seed_sagas=sagas, mid_load=kill)
        kill_at, sessions = killed[0]
        assert sessions >= 1  # the API's pool had sessions to kill
        figures = load.figures(elapsed)
        print(f"concurrency: {figures}, killed {sessions} sessions at {kill_at:.1f}s")

        # Failures (requests in flight at the kill) are a plain 503, never a 500.
        failed = [r for r in load.results if r[2] >= 500]
        assert all(r[2] == 503 and "database" in r[4] and "Traceback" not in r[4]
                   for r in failed), failed
        after = [r for r in load.results if r[0] > kill_at + 0.5]
        assert after and all(r[2] < 500 for r in after)
        reads = [r for r in load.results if r[1] == "get_saga" and r[2] != 503]
        assert reads and all(r[2] == 200 for r in reads), [r for r in reads if r[2] != 200]
        assert {r[1] for r in after} >= {"list_sagas", "get_saga", "list_executions",
                                         "create", "execute"}
        # And it goes on serving, reads and writes.
        assert http("GET", f"{api.base}{API}/sagas/{sagas[0]}").status == 200
        assert http("GET", f"{api.base}{API}/health").status in (200, 503)
        assert http("POST", f"{api.base}{API}/sagas/{sagas[0]}/execute", b"{}").status == 202
