"""Concurrent callers against `saga serve`: many threads mixing reads and writes, with an
optional server-side KILL of the API's MySQL connections in the middle of the load.

    python -m bench.concurrency [--callers 64] [--seconds 4] [--kill]

Runs the API on 127.0.0.1 on a free port against its own MySQL database (so the API's are
the only sessions on it), for a bounded time, and prints requests, 5xx, latency and rate.
The step Lambdas must be deployed for the stage (`saga deploy`)."""

from __future__ import annotations

import argparse
import itertools
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from chalicelib.adapters.mysql import connector as mysql
from chalicelib.adapters.mysql.migrate import migrate
from chalicelib.config import get_settings
from tests.support.sagas import one_step_saga
from tests.support.served import Served, http, served

API = "/api/v1/saga"
BENCH_DB = "saga_db_concurrency"


@dataclass
class Load:
    """What the callers saw."""

    results: list[tuple[float, str, int, float, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, at: float, kind: str, status: int, seconds: float, body: str) -> None:
        with self.lock:
            self.results.append((at, kind, status, seconds, body))

    def figures(self, elapsed_s: float) -> dict[str, Any]:
        latencies = sorted(r[3] for r in self.results)
        count = len(latencies)

        def pct(p: float) -> float:
            return round(latencies[min(count - 1, int(p * count))] * 1000, 1) if count else 0.0

        return {"requests": count, "5xx": sum(r[2] >= 500 for r in self.results),
                "503": sum(r[2] == 503 for r in self.results),
                "p50_ms": pct(0.50), "p99_ms": pct(0.99),
                "req_per_s": round(count / elapsed_s, 1) if elapsed_s else 0.0}


def api_connections(database: str) -> list[int]:
    """Server-side ids of the sessions on `database`, this one excluded."""
    conn = mysql.connect(get_settings().database.mysql, database="")
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT id FROM information_schema.processlist "
                        "WHERE db = %s AND id <> CONNECTION_ID()", (database,))
            return [int(row["id"]) for row in cur.fetchall()]
    finally:
        conn.close()


def kill_connections(database: str) -> int:
    """KILL every session on `database` (the API's pool); returns how many."""
    ids = api_connections(database)
    conn = mysql.connect(get_settings().database.mysql, database="")
    killed = 0
    try:
        with conn.cursor() as cur:
            for session in ids:
                try:
                    cur.execute(f"KILL {session}")
                    killed += 1
                except mysql.pymysql.MySQLError:  # it may have just gone
                    pass
    finally:
        conn.close()
    return killed


def run_load(api: Served, *, callers: int, seconds: float, seed_sagas: list[str],
             mid_load: Callable[[], None] | None = None) -> tuple[Load, float]:
    """`callers` threads for `seconds`: 70% reads (list sagas, get a saga, list executions),
    15% creates, 15% executes; `mid_load` runs once halfway through."""
    load = Load()
    start = time.monotonic()
    stop_at = start + seconds
    counter = itertools.count()

    def call(kind: str, method: str, path: str, body: Any = None) -> None:
        began = time.monotonic()
        answer = http(method, api.base + API + path,
                      json.dumps(body).encode() if body is not None else None, timeout_s=30)
        load.add(began - start, kind, answer.status, time.monotonic() - began,
                 answer.raw[:200].decode(errors="replace"))

    def caller(n: int) -> None:
        while time.monotonic() < stop_at:
            i = next(counter)
            saga = seed_sagas[i % len(seed_sagas)]
            pick = i % 20
            if pick < 5:
                call("list_sagas", "GET", "/sagas?limit=20")
            elif pick < 10:
                call("get_saga", "GET", f"/sagas/{saga}")
            elif pick < 14:
                call("list_executions", "GET", f"/executions?saga_id={saga}&limit=10")
            elif pick < 17:
                call("create", "POST", "/sagas",
                     one_step_saga(f"conc-{uuid.uuid4().hex[:12]}"))
            else:
                call("execute", "POST", f"/sagas/{saga}/execute", {"input": {"n": i}})

    threads = [threading.Thread(target=caller, args=(n,), daemon=True) for n in range(callers)]
    for thread in threads:
        thread.start()
    if mid_load is not None:
        time.sleep(seconds / 2)
        mid_load()
    for thread in threads:
        thread.join(seconds + 60)
    return load, time.monotonic() - start


@contextmanager
def bench_api(database: str = BENCH_DB) -> Iterator[Served]:
    """`saga serve` on its own, freshly migrated database, rate limiting off."""
    config = get_settings().database.mysql
    mysql.recreate_database(config, database)
    conn = mysql.connect(config, database=database)
    try:
        migrate(conn)
    finally:
        conn.close()
    try:
        with served({"SAGA__DATABASE__MYSQL__DATABASE": database,
                     "SAGA__DATABASE__MONGODB__DATABASE": database,
                     "SAGA__LIMITS__RATE_LIMIT_REQUESTS": "0"}) as api:
            yield api
    finally:
        mysql.drop_database(config, database)


def seed(api: Served, count: int = 4) -> list[str]:
    ids = [f"conc-seed-{uuid.uuid4().hex[:8]}" for _ in range(count)]
    for saga_id in ids:
        answer = http("POST", api.base + API + "/sagas",
                      json.dumps(one_step_saga(saga_id)).encode())
        assert answer.status == 201, answer.raw
    return ids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--callers", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--kill", action="store_true",
                        help="KILL the API's MySQL sessions halfway through")
    args = parser.parse_args()
    seconds = min(max(args.seconds, 1.0), 30.0)  # bounded
    with bench_api() as api:
        sagas = seed(api)
        killed: list[int] = []
        load, elapsed = run_load(
            api, callers=min(args.callers, 256), seconds=seconds, seed_sagas=sagas,
            mid_load=(lambda: killed.append(kill_connections(BENCH_DB))) if args.kill else None)
        after = http("GET", api.base + API + "/sagas?limit=5").status
    figures = load.figures(elapsed)
    print(json.dumps({"callers": args.callers, "seconds": round(elapsed, 2),
                      "killed_sessions": killed[0] if killed else 0, **figures,
                      "status_after": after}, indent=2))


if __name__ == "__main__":
    main()
