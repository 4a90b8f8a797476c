"""The event pipeline: lag from a state change to the read model over real sagas, and events
per second through the outbox relay and through the projector rebuilding the read model.

    .venv/bin/python -m bench.events [--sagas 200] [--concurrency 8] [--relay-events 20000]
                                     [--rebuilds 1] [--events-only]

The lag of an event is the time from its commit in MySQL (the event's time, taken inside the
committing transaction) to its application in MongoDB, measured by the projector itself.

--events-only deploys nothing and runs no state machine: the outbox is filled as the sagas
would fill it (bench/outbox_fill.py: the step runtime over MySQL, `--concurrency` sagas at a
time), then only the projector's rebuild and the relay are measured, in databases of its own.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from websockets.sync.client import connect

from bench import harness
from bench.outbox_fill import fill_outbox
from bench.results_io import save, table
from chalicelib.adapters.kafka.consumer import run_projector
from chalicelib.adapters.kafka.publisher import KafkaPublisher
from chalicelib.adapters.mysql.connector import MySQLConnector
from chalicelib.adapters.mysql.relay import OutboxRelay
from chalicelib.domain.requests import ExecuteRequest
from chalicelib.domain.validation import parse_definition
from chalicelib.roots import runtime
from chalicelib.usecases.ports import Actor
from infra.deploy.local import load_app
from infra.local_events import rebuild_read_model
from infra.ws_gateway import LocalWebsocketGateway

SEED = json.loads((Path(__file__).parents[1] / "tests" / "fixtures" /
                   "payment-saga.json").read_text())
INPUT = {"customer_id": "bench-customer", "amount": "1.00", "currency": "EUR"}
# --events-only's databases: a full run's (and the local stage's read model) are left alone.
EVENTS_ONLY_DATABASE = "saga_db_bench_events"


def relay_throughput(settings: Any, events: int) -> dict[str, float]:
    """Synthetic outbox rows (in their own database) drained to their own topic."""
    connector = MySQLConnector(settings.database.mysql)
    topic = f"bench-relay-{uuid.uuid4().hex[:8]}"
    with connector.transaction() as cur:
        cur.execute("UPDATE outbox SET published_at = UTC_TIMESTAMP(6) "
                    "WHERE published_at IS NULL")
        now = datetime.now(UTC).replace(tzinfo=None)
        rows = []
        for n in range(events):
            key = f"bench-{n % 500}"
            envelope = json.dumps({"id": str(uuid.uuid4()), "type": "bench", "key": key,
                                   "sequence": n, "data": {"n": n, "pad": "x" * 200}})
            rows.append((str(uuid.uuid4()), key, n, "bench", envelope, now))
        cur.executemany("INSERT INTO outbox (event_id, partition_key, sequence, type, "
                        "envelope, created_at) VALUES (%s, %s, %s, %s, %s, %s)", rows)
    relay = OutboxRelay(connector, KafkaPublisher(settings.kafka), topic, batch_size=1000)
    started = time.perf_counter()
    published = relay.drain()
    seconds = time.perf_counter() - started
    return {"events": published, "seconds": seconds, "events_per_s": published / seconds}


def projector_rebuilds(runs: int) -> dict[str, Any]:
    """The projector alone: the whole read model rebuilt from the outbox, `runs` times; the
    median run's figures, and every run's events per second."""
    measured = []
    for _ in range(runs):
        began = time.perf_counter()
        replayed = rebuild_read_model()
        seconds = time.perf_counter() - began
        measured.append({"events": replayed, "seconds": seconds,
                         "events_per_s": replayed / seconds})
    median = sorted(measured, key=lambda run: run["events_per_s"])[len(measured) // 2]
    return {**median, "runs": [round(run["events_per_s"]) for run in measured]}


def projector_line(figures: dict[str, Any]) -> str:
    runs = figures["runs"]
    return (f"projector (read model rebuilt from the outbox): {figures['events']} events in "
            f"{figures['seconds']:.2f}s = {figures['events_per_s']:.0f} events/s"
            + (f" (median of {len(runs)} runs: {', '.join(map(str, runs))})"
               if len(runs) > 1 else ""))


def relay_line(figures: dict[str, float]) -> str:
    return (f"relay: {figures['events']} events in {figures['seconds']:.2f}s = "
            f"{figures['events_per_s']:.0f} events/s (batches of 1000, acks=all)")


def events_only(args: argparse.Namespace) -> None:
    harness.prepare_database()
    settings = harness.get_settings()
    harness.seed_account("bench-customer", "1000000.00")
    harness.seed_account("merchant", "0.00")
    definition = copy.deepcopy(SEED) | {"id": f"events-{uuid.uuid4().hex[:6]}"}
    began = time.perf_counter()
    written = fill_outbox(settings, definition, INPUT, args.sagas, args.concurrency)
    print(f"{args.sagas} sagas at concurrency {args.concurrency} without state machines: "
          f"{written} events in the outbox after {time.perf_counter() - began:.1f}s")
    projector_figures = projector_rebuilds(args.rebuilds)
    relay_figures = relay_throughput(settings, args.relay_events)
    print(relay_line(relay_figures))
    print(projector_line(projector_figures))
    path = save("events_only", {"sagas": args.sagas, "concurrency": args.concurrency,
                                "events": written, "relay": relay_figures,
                                "projector": projector_figures})
    print(f"written to {path}")


def listen(port: int, lags: list[float], lock: threading.Lock) -> None:
    """A WebSocket client subscribed to everything; the lag of each event it receives."""
    with connect(f"ws://127.0.0.1:{port}/ws") as ws:
        for _ in range(1_000_000):  # bounded; the connection closes when the gateway stops
            try:
                message = json.loads(ws.recv(timeout=120))
            except Exception:
                return
            if message.get("type") != "event":
                continue
            sent = datetime.fromisoformat(message["event"]["time"])
            with lock:
                lags.append((datetime.now(UTC) - sent).total_seconds() * 1000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sagas", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--relay-events", type=int, default=20000)
    parser.add_argument("--rebuilds", type=int, default=1,
                        help="rebuild the read model this many times (the median is shown)")
    parser.add_argument("--events-only", action="store_true",
                        help="deploy nothing: fill the outbox without state machines and "
                             "measure the projector's rebuild and the relay alone")
    args = parser.parse_args()
    if args.events_only:
        os.environ["SAGA__DATABASE__MYSQL__DATABASE"] = EVENTS_ONLY_DATABASE
        os.environ["SAGA__DATABASE__MONGODB__DATABASE"] = EVENTS_ONLY_DATABASE
        events_only(args)
        return
    harness.prepare()
    settings = harness.get_settings()
    harness.seed_account("bench-customer", "1000000.00")
    harness.seed_account("merchant", "0.00")
    definition = copy.deepcopy(SEED) | {"id": f"events-{uuid.uuid4().hex[:6]}"}
    runtime.container().definition_service.create(parse_definition(definition), Actor("bench"))

    lags: list[float] = []
    lock = threading.Lock()

    def measured(event: dict[str, Any]) -> None:
        lag = (datetime.now(UTC) - datetime.fromisoformat(event["time"])).total_seconds()
        with lock:
            lags.append(lag * 1000)

    ws_lags: list[float] = []
    gateway = LocalWebsocketGateway(load_app(), stage="bench", ws_port=0,
                                    management_port=0).start()
    os.environ["SAGA__WEBSOCKET__MANAGEMENT_ENDPOINT"] = \
        f"http://127.0.0.1:{gateway.management_port}"
    runtime.use(None)
    settings = harness.get_settings()
    listener = threading.Thread(target=listen, args=(gateway.ws_port, ws_lags, lock),
                                daemon=True)
    listener.start()
    pusher = runtime.container().pusher

    def measured_and_pushed(event: dict[str, Any]) -> None:
        measured(event)
        pusher.push_event(event)

    stop = threading.Event()
    parts = runtime.container()
    relay = parts.new_relay()
    projector = parts.new_projector(on_applied=measured_and_pushed)
    threads = [threading.Thread(target=relay.run, args=(stop,), daemon=True),
               threading.Thread(target=run_projector, args=(
                   parts.projector_consumer, projector, stop), daemon=True)]
    for thread in threads:
        thread.start()
    time.sleep(3)  # let the consumer join its group before the first event

    def execute(_: int) -> str:
        execution, _created = parts.execution_service.execute(
            definition["id"], ExecuteRequest(input=INPUT), Actor("bench"))
        return execution.id

    started = time.perf_counter()
    with ThreadPoolExecutor(args.concurrency) as pool:
        ids = list(pool.map(execute, range(args.sagas)))
    deadline = time.monotonic() + 600
    expected = 0
    while time.monotonic() < deadline:
        with runtime.container().connector.transaction() as cur:
            cur.execute("SELECT COUNT(*) AS n FROM executions WHERE status IN "
                        "('RUNNING', 'COMPENSATING')")
            running = cur.fetchone()["n"]
            cur.execute("SELECT COUNT(*) AS n FROM outbox WHERE type LIKE 'saga.%%' "
                        "AND type NOT LIKE 'saga.definition.%%'")
            expected = cur.fetchone()["n"]
        with lock:
            applied = len(lags)
        if running == 0 and applied >= expected:
            break
        time.sleep(0.2)
    elapsed = time.perf_counter() - started
    for _ in range(100):  # the last pushes may still be on their way
        with lock:
            if len(ws_lags) >= len(lags):
                break
        time.sleep(0.05)
    stop.set()
    for thread in threads:
        thread.join(timeout=10)
    gateway.stop()

    lag = harness.summary(lags)
    ws_lag = harness.summary(ws_lags)
    projector_figures = projector_rebuilds(args.rebuilds)
    relay_figures = relay_throughput(settings, args.relay_events)
    print(table([
        ["state change -> read model (ms)", f"{lag['p50']:.0f}", f"{lag['p95']:.0f}",
         f"{lag['p99']:.0f}", f"{lag['max']:.0f}", lag["n"]],
        ["state change -> WebSocket client (ms)", f"{ws_lag['p50']:.0f}",
         f"{ws_lag['p95']:.0f}", f"{ws_lag['p99']:.0f}", f"{ws_lag['max']:.0f}",
         ws_lag["n"]]],
        ["lag over real sagas", "p50", "p95", "p99", "max", "events"]))
    print(f"\n{args.sagas} sagas at concurrency {args.concurrency}: {expected} events, all in "
          f"the read model after {elapsed:.1f}s ({args.sagas / elapsed:.1f} sagas/s)")
    print(relay_line(relay_figures))
    print(projector_line(projector_figures))
    path = save("events", {"lag_ms": lag, "ws_lag_ms": ws_lag, "sagas": args.sagas,
                                   "concurrency": args.concurrency, "events": expected,
                                   "seconds": elapsed, "relay": relay_figures,
                                   "projector": projector_figures,
                                   "executions": len(ids)})
    print(f"written to {path}")


if __name__ == "__main__":
    main()
