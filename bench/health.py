"""GET /health (liveness, answered from the process) beside GET /api/v1/saga/health (every
component checked), over HTTP from `saga serve`, as a load balancer calls them.

    .venv/bin/python -m bench.health [--requests 500]

Each request is a new connection on 127.0.0.1, as most health checkers make them. The floor is
the same server's answer to an unknown route (routing and the error body, nothing checked).
Prints p50, p95 and max in milliseconds.
"""

from __future__ import annotations

import argparse
import statistics
import time

from bench import harness
from tests.support.served import http, served

PATHS = {"liveness /health": "/health",
         "components /api/v1/saga/health": "/api/v1/saga/health",
         "floor: an unknown route (404)": "/nothing"}


def timings_ms(base: str, path: str, count: int) -> list[float]:
    taken = []
    for _ in range(count):
        started = time.perf_counter()
        answer = http("GET", f"{base}{path}")
        taken.append((time.perf_counter() - started) * 1000)
        assert answer.status in (200, 404), answer.raw[:200]
    return taken


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=500)
    args = parser.parse_args()
    harness.prepare_database()  # the stack up: the component checks need it
    with served({}, stage="bench") as app:
        for path in PATHS.values():  # warm: imports, pools, the first connections
            timings_ms(app.base, path, 20)
        print(f"{'GET':34} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
        for name, path in PATHS.items():
            taken = sorted(timings_ms(app.base, path, args.requests))
            p95 = taken[int(len(taken) * 0.95) - 1]
            print(f"{name:34} {statistics.median(taken):8.2f} {p95:8.2f} {taken[-1]:8.2f}")


if __name__ == "__main__":
    main()
