"""The fault suite: up to 100 concurrent sagas of the documented example, with a mix of injected
failures, while a part of the system fails under them; and 40 sagas of HTTP participants that
answer around their deadline or answer oddly. After each case every execution has ended the
way its own faults say it must (each run carries its expected ending), money is conserved and
nothing is left behind, every participant's committed effect was undone exactly once, every
outbox event reached Kafka, the read model equals the write model, and the reconciler's
repairs are counted (none where nothing should need one). Each case prints its figures
(sagas, endings, events per store, time to recover); `pytest -m fault -s` shows them.

The reconciler is scheduled every 5 minutes on AWS; here the suite runs it every few seconds
while it waits, as the schedule would (with no grace period, so the wait stays short).
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaConsumer, TopicPartition

from chalicelib.adapters import aws
from chalicelib.adapters.mongo.client import read_model
from chalicelib.adapters.mongo.projector import SUMMARIES
from chalicelib.adapters.mongo.read_model import MongoExecutionReadModel
from chalicelib.adapters.mysql.executions import MySQLExecutionStore
from chalicelib.config import Settings
from chalicelib.demo import demo_data
from chalicelib.domain.lifecycle import COMPENSATION_RETRY
from chalicelib.roots import runtime
from infra.stack.supervisor import Supervisor
from tests.e2e.conftest import Api
from tests.support.ledger_participant import ODD_ANSWERS, ledger_participant
from tests.support.records import differences, same
from tests.support.sagas import SEED, seed_copy
from tests.support.traces import NOTHING_LEFT

pytestmark = pytest.mark.fault

STEPS = [step["id"] for step in SEED["steps"]]
# The server outages are tried under 28 sagas; faults that act on each execution alone (a step
# delivered twice, its process killed, its compensation failing) under 20 at once, which runs
# every fault of the mix (a cycle of 20) once; participants at the edges under 30 (each odd
# answer and each timing around the deadline three times). LocalStack runs about 3 sagas a
# second here, so a case's length follows these counts (raise them by environment for a
# longer soak).
SAGAS_PER_CASE = int(os.environ.get("SAGA_FAULT_SAGAS", "28"))
SAGAS_PER_EXECUTION_CASE = int(os.environ.get("SAGA_FAULT_EXECUTION_SAGAS", "20"))
PARTICIPANT_SAGAS = int(os.environ.get("SAGA_FAULT_PARTICIPANT_SAGAS", "30"))
ENDED = {"COMPLETED", "COMPENSATED", "COMPENSATION_FAILED", "FAILED"}
@dataclass
class Run:
    customer: str
    faults: list[dict[str, Any]]
    may_fail_compensation: bool = False
    execution_id: str = ""
    # The endings this run may have, from its own faults (see expected_endings).
    expected: frozenset[str] = frozenset()


def expected_endings(faults: list[dict[str, Any]]) -> frozenset[str]:
    """How a saga of the documented example ends with these injected faults: a step that
    fails for good is compensated (the first one has nothing to undo: FAILED); a failure that
    recovers within the step's retries completes; a compensation that fails past its retries
    is COMPENSATION_FAILED."""
    retries = {step["id"]: step["max_retries"] for step in SEED["steps"]}
    failing = [f for f in faults if f.get("phase", "action") == "action"
               and (f.get("permanent") or f.get("times", 1) > retries[f["step_id"]])]
    if not failing:
        return frozenset({"COMPLETED"})
    if any(f.get("phase") == "compensation" and (
            f.get("permanent") or f.get("times", 1) > COMPENSATION_RETRY.retries)
            for f in faults):
        return frozenset({"COMPENSATION_FAILED"})
    first = STEPS.index(failing[0]["step_id"]) == 0
    return frozenset({"FAILED" if first else "COMPENSATED"})


@dataclass
class Batch:
    saga_id: str
    runs: list[Run] = field(default_factory=list)
    money_before: dict[str, str] = field(default_factory=dict)
    launched_at: float = 0.0
    launch_s: float = 0.0
    kafka_since: dict[int, int] = field(default_factory=dict)

    @property
    def ids(self) -> list[str]:
        return [run.execution_id for run in self.runs]


def mixed_faults(index: int) -> tuple[list[dict[str, Any]], bool]:
    """Most sagas run clean; some fail for good at a step (compensated), some fail once and
    recover by retrying, a few have a compensation that fails for good."""
    kind = index % 10
    if kind == 7:
        return [{"step_id": STEPS[index % len(STEPS)], "error": "Boom", "permanent": True}], False
    if kind == 8:
        return [{"step_id": STEPS[index % len(STEPS)], "error": "Flaky", "times": 1}], False
    if kind == 9 and index % 20 == 9:
        return [{"step_id": STEPS[-1], "error": "Boom", "permanent": True},
                {"step_id": STEPS[1], "phase": "compensation", "error": "LedgerGone",
                 "permanent": True}], True
    return [], False


def _money() -> dict[str, str]:
    with runtime.container().connector.transaction() as cur:
        return dict(demo_data.snapshot(cur)["money"])


def prepare(api: Api, settings: Settings, count: int = SAGAS_PER_CASE,
            faults: Callable[[int], tuple[list[dict[str, Any]], bool]] = mixed_faults,
            **step_changes: dict[str, Any]) -> Batch:
    batch = Batch(saga_id=api.create_saga(seed_copy("fault", **step_changes))["id"])
    with runtime.container().connector.transaction() as cur:
        for index in range(count):
            customer = f"fc-{uuid.uuid4().hex[:10]}"
            demo_data.seed_account(cur, customer, "100.00")
            injected, may_fail = faults(index)
            batch.runs.append(Run(customer, injected, may_fail,
                                  expected=expected_endings(injected)))
    batch.money_before = _money()
    batch.kafka_since = _topic_end(settings)
    return batch


def launch(api: Api, batch: Batch) -> None:
    """Start every execution (one after another: the in-process API is not thread-safe);
    they run concurrently in Step Functions."""
    batch.launched_at = time.monotonic()
    for run in batch.runs:
        started = api.execute(batch.saga_id, input={
            "customer_id": run.customer, "amount": "25.00", "currency": "EUR",
            "email": f"{run.customer}@example.com"}, faults=run.faults)
        run.execution_id = started["id"]
    batch.launch_s = time.monotonic() - batch.launched_at


def _write_model(ids: list[str]) -> dict[str, Any]:
    store = MySQLExecutionStore(runtime.container().connector)
    return {execution_id: store.get(execution_id) for execution_id in ids}


def _outbox(ids: list[str]) -> dict[str, set[str]]:
    """Event ids per execution, as committed to the outbox."""
    found: dict[str, set[str]] = {execution_id: set() for execution_id in ids}
    with runtime.container().connector.transaction() as cur:
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            cur.execute("SELECT partition_key, envelope FROM outbox WHERE partition_key IN ("
                        + ",".join(["%s"] * len(chunk)) + ")", chunk)
            for row in cur.fetchall():
                found[row["partition_key"]].add(json.loads(row["envelope"])["id"])
    return found


def _consumer(settings: Settings) -> KafkaConsumer:
    return KafkaConsumer(bootstrap_servers=settings.kafka.brokers,
                         api_version=settings.kafka.api_version_tuple(),
                         enable_auto_commit=False, consumer_timeout_ms=3000)


def _partitions(consumer: KafkaConsumer, settings: Settings) -> list[TopicPartition]:
    return [TopicPartition(settings.kafka.topic, p)
            for p in consumer.partitions_for_topic(settings.kafka.topic) or []]


def _topic_end(settings: Settings) -> dict[int, int]:
    """Where the topic ends now, per partition: a batch's events all come after it."""
    consumer = _consumer(settings)
    try:
        return {tp.partition: offset for tp, offset in
                consumer.end_offsets(_partitions(consumer, settings)).items()}
    finally:
        consumer.close()


def _kafka_event_ids(settings: Settings, ids: set[str],
                     since: dict[int, int]) -> tuple[set[str], int]:
    """Distinct event ids of these executions in the topic after `since`, and how many
    messages held them (the relay publishes at least once)."""
    consumer = _consumer(settings)
    try:
        partitions = _partitions(consumer, settings)
        consumer.assign(partitions)
        for partition in partitions:  # not the whole session's events: only this batch's
            consumer.seek(partition, since.get(partition.partition, 0))
        end = consumer.end_offsets(partitions)
        seen: set[str] = set()
        messages = 0
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and any(
                consumer.position(p) < end[p] for p in partitions):
            for records in consumer.poll(timeout_ms=1000, max_records=5000).values():
                for record in records:
                    if record.key is not None and record.key.decode() in ids:
                        seen.add(json.loads(record.value)["id"])
                        messages += 1
        return seen, messages
    finally:
        consumer.close()


def _read_model(settings: Settings, ids: list[str]) -> dict[str, Any]:
    reads = MongoExecutionReadModel(read_model(runtime.container().mongo,
                                               settings.database.mongodb))
    return {execution_id: reads.get(execution_id) for execution_id in ids}


def _same(write: Any, read: Any) -> bool:
    # Every field of executions, steps and attempts (the models' own field lists).
    return same(write, read)


@dataclass(frozen=True)
class Settled:
    seconds: float
    # What the reconciler had to repair meanwhile (a run whose end nobody recorded).
    repairs: list[Any]


def settle(batch: Batch, settings: Settings, timeout_s: float = 420) -> Settled:
    """Wait until every execution ended and the read model matches. Runs the reconciler as
    its schedule would, and keeps what it repaired of this batch."""
    started = time.monotonic()
    reconciler = runtime.container().new_reconciler(grace_seconds=0)
    next_reconcile = started + 20
    repairs: list[Any] = []
    ids = set(batch.ids)
    while True:
        writes = _write_model(batch.ids)
        ended = all(e is not None and e.status.value in ENDED for e in writes.values())
        if ended:
            try:
                reads = _read_model(settings, batch.ids)
                if all(_same(writes[i], reads[i]) for i in batch.ids):
                    return Settled(time.monotonic() - started, repairs)
            except Exception:  # the read model is still coming back
                pass
        if time.monotonic() > started + timeout_s:
            stuck = Counter(e.status.value if e else "missing" for e in writes.values())
            reads = _read_model(settings, batch.ids)
            unlike = {i: differences(writes[i], reads[i])[:5] for i in batch.ids
                      if not same(writes[i], reads[i])}
            raise AssertionError(f"not settled after {timeout_s}s: {dict(stuck)}; read model "
                                 f"differs: {dict(list(unlike.items())[:3])}")
        if time.monotonic() > next_reconcile:
            repairs += [r for r in reconciler.run() if r.execution_id in ids]
            next_reconcile = time.monotonic() + 10
        time.sleep(1)


def verify(batch: Batch, settings: Settings, fault: str, settled: Settled, *,
           repairs_allowed: int = 0) -> dict[str, Any]:
    """Check every promise after a case; the case's figures."""
    verify_started = time.monotonic()
    writes = _write_model(batch.ids)
    endings = Counter(e.status.value for e in writes.values())
    assert set(endings) <= {"COMPLETED", "COMPENSATED", "COMPENSATION_FAILED", "FAILED"}
    unexpected = {run.execution_id: (writes[run.execution_id].status.value,
                                     sorted(run.expected), run.faults)
                  for run in batch.runs
                  if writes[run.execution_id].status.value not in run.expected}
    assert not unexpected, f"{len(unexpected)} ended otherwise: {list(unexpected.items())[:3]}"
    assert len(settled.repairs) <= repairs_allowed, settled.repairs[:5]
    if batch.runs and batch.runs[0].customer:
        _verify_money(batch, writes)
    outbox = _outbox(batch.ids)
    committed = set().union(*outbox.values())
    in_kafka, kafka_messages = _kafka_event_ids(settings, set(batch.ids),
                                                 batch.kafka_since)
    assert committed <= in_kafka, f"{len(committed - in_kafka)} events never reached Kafka"
    reads = _read_model(settings, batch.ids)
    applied = sum((r.consistency or {}).get("sequence", 0) for r in reads.values() if r)
    assert applied == len(committed)
    figures = {"fault": fault, "sagas": len(batch.runs), "endings": dict(endings),
               "compensation_failed_listed": sorted(
                   i for i, e in writes.items() if e.status.value == "COMPENSATION_FAILED"),
               "reconciler_repairs": len(settled.repairs),
               "events_mysql": len(committed), "events_kafka_distinct": len(in_kafka),
               "kafka_messages": kafka_messages, "events_mongodb": applied,
               "launch_s": round(batch.launch_s, 1), "recovered_s": round(settled.seconds, 1),
               "batch_s": round(time.monotonic() - batch.launched_at, 1),
               "verify_s": round(time.monotonic() - verify_started, 1)}
    print("\nFAULT " + json.dumps(figures))
    return figures


def _verify_money(batch: Batch, writes: dict[str, Any]) -> None:
    with runtime.container().connector.transaction() as cur:
        cur.execute("SELECT account_id, balance FROM demo_accounts WHERE account_id IN ("
                    + ",".join(["%s"] * len(batch.runs)) + ")", [r.customer for r in batch.runs])
        balances = {r["account_id"]: Decimal(r["balance"]) for r in cur.fetchall()}
        for run in batch.runs:
            status = writes[run.execution_id].status.value
            expected = {"COMPLETED": Decimal("75.00"), "COMPENSATION_FAILED": Decimal("75.00")
                        }.get(status, Decimal("100.00"))
            assert balances[run.customer] == expected, (run.execution_id, status)
            if status in ("COMPENSATED", "FAILED"):
                assert demo_data.left_behind(cur, run.execution_id) == NOTHING_LEFT
    assert _money() == batch.money_before  # what customers paid, the merchant holds


@pytest.fixture
def supervisor(local_stack: Supervisor) -> Iterator[Supervisor]:
    yield local_stack
    local_stack.up()  # whatever a case stopped is running again for what follows


def _outage(supervisor: Supervisor, server: str, seconds: float) -> None:
    supervisor.down([server])
    time.sleep(seconds)
    supervisor.up([server])


def test_servers_stop_and_restart_one_after_another(
        api: Api, settings_e2e: Settings, demo: Any, supervisor: Supervisor) -> None:
    """One batch lives through three outages: Kafka stops for 8 s while the batch is being
    started (the outbox keeps the events), MariaDB restarts under the running steps, then
    MongoDB stops (the projector waits, and reads answer from the write model, saying so). One
    batch instead of one per server: the same promises, in a third of the time."""
    # Steps retry for longer than MariaDB's restart takes.
    retrying = {"max_retries": 6}
    batch = prepare(api, settings_e2e, **{step: retrying for step in STEPS})
    # Kafka's outage overlaps the launch: starting an execution never waits for the broker.
    kafka_outage = threading.Thread(target=_outage, args=(supervisor, "kafka", 8))
    kafka_outage.start()
    try:
        launch(api, batch)
    finally:
        kafka_outage.join(timeout=120)
    assert not kafka_outage.is_alive()
    _outage(supervisor, "mariadb", 1)
    # The test's own connections; the service reconnects alone.
    runtime.container().connector.close()
    supervisor.down(["mongodb"])
    try:
        status, execution = api.call("GET", f"/executions/{batch.ids[0]}")
        assert status == 200 and execution["consistency"]["source"] == "write_model"
        status, page = api.call("GET", f"/executions?saga_id={batch.saga_id}&limit=100")
        assert status == 200 and {e["id"] for e in page["items"]} == set(batch.ids)
        time.sleep(8)
    finally:
        supervisor.up(["mongodb"])
    figures = verify(batch, settings_e2e,
                     "kafka stop/start during the launch, mariadb restart, mongodb stop/start",
                     settle(batch, settings_e2e))
    # The saga's summary in the read model counts every ending, as after no outage.
    summary = runtime.container().mongo[settings_e2e.database.mongodb.database][
        SUMMARIES].find_one({"_id": batch.saga_id}) or {}
    assert {s: n for s, n in summary.get("by_status", {}).items() if n} == figures["endings"]


def _step_processes(function: str) -> list[int]:
    """PIDs of the LocalStack executor processes running a function's code."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            cwd = os.readlink(entry / "cwd")
        except OSError:
            continue
        if b"bootstrap.py" in cmdline and function in cwd:
            found.append(int(entry.name))
    return found


def test_a_step_lambda_process_is_killed_mid_invocation(
        api: Api, settings_e2e: Settings, demo: Any) -> None:
    # Every payment waits 1.5s inside the action, so kills land mid-invocation.
    def slow_payments(index: int) -> tuple[list[dict[str, Any]], bool]:
        injected, may_fail = mixed_faults(index)
        if not any(f["step_id"] == "process-payment" for f in injected):
            injected = [*injected, {"step_id": "process-payment", "times": 0,
                                    "delay": "1500ms"}]
        return injected, may_fail

    batch = prepare(api, settings_e2e, SAGAS_PER_EXECUTION_CASE, faults=slow_payments)
    function = f"{settings_e2e.aws.app_name}-{settings_e2e.stage}-step_payment"
    kills = 0
    stop = threading.Event()

    def killer() -> None:
        nonlocal kills
        for _ in range(12):  # bounded: a kill every 2 s for 24 s
            if stop.wait(2):
                return
            for pid in _step_processes(function)[:2]:
                try:
                    os.kill(pid, signal.SIGKILL)
                    kills += 1
                except ProcessLookupError:
                    pass

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    launch(api, batch)
    thread.join(timeout=40)
    stop.set()
    assert kills > 0, "no step process was running to kill"
    for run in batch.runs:
        # A killed attempt did nothing (its transaction never committed) and is retried; a
        # payment step killed past its retries fails for good like any other: the payment is
        # compensated, and a validation (the first step, on the same Lambda) leaves nothing to
        # undo, so the saga simply fails.
        if run.expected == {"COMPLETED"}:
            run.expected = frozenset({"COMPLETED", "COMPENSATED", "FAILED"})
    figures = verify(batch, settings_e2e, "step lambda killed", settle(batch, settings_e2e))
    writes = _write_model(batch.ids)
    for run in batch.runs:
        if run.expected == {"COMPLETED", "COMPENSATED", "FAILED"} and \
                writes[run.execution_id].status.value == "FAILED":
            # Nothing took effect: the validation failed for good (FAILED when its runtime
            # saw the failure; still PENDING when the kill cut the runtime itself short and
            # the machine's catch ended the saga) and nothing after it ran.
            statuses = {step.step_id: step.status.value
                        for step in writes[run.execution_id].steps}
            assert set(statuses.values()) <= {"FAILED", "PENDING"}, statuses
    print(f"killed {kills} step processes; {figures['endings']}")


def test_steps_are_delivered_twice(api: Api, settings_e2e: Settings, demo: Any) -> None:
    batch = prepare(api, settings_e2e, SAGAS_PER_EXECUTION_CASE)
    launch(api, batch)
    lam = aws.client("lambda", settings_e2e.aws)
    function = f"{settings_e2e.aws.app_name}-{settings_e2e.stage}-step_payment"

    def redeliver(execution_id: str) -> None:
        payload = {"execution_id": execution_id, "step_id": "process-payment",
                   "phase": "action", "last": False, "attempt": 0, "error": None}
        lam.invoke(FunctionName=function, Payload=json.dumps(payload).encode())

    # Second deliveries race the machines' own, while the batch runs.
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(redeliver, batch.ids))
    verify(batch, settings_e2e, "step delivered twice", settle(batch, settings_e2e))


def test_compensations_fail_then_recover(api: Api, settings_e2e: Settings, demo: Any) -> None:
    def failing_compensations(index: int) -> tuple[list[dict[str, Any]], bool]:
        if index % 4 == 0:  # fails twice, then the compensation's own retries succeed
            return [{"step_id": STEPS[-1], "error": "Boom", "permanent": True},
                    {"step_id": STEPS[1], "phase": "compensation", "error": "LedgerLocked",
                     "times": 2}], False
        if index % 4 == 1:  # fails past its retries: COMPENSATION_FAILED, then retried
            return [{"step_id": STEPS[-1], "error": "Boom", "permanent": True},
                    {"step_id": STEPS[1], "phase": "compensation", "error": "LedgerLocked",
                     "times": 4}], True
        return mixed_faults(index)

    batch = prepare(api, settings_e2e, SAGAS_PER_EXECUTION_CASE, faults=failing_compensations)
    launch(api, batch)
    first = settle(batch, settings_e2e)
    assert not first.repairs, first.repairs[:5]
    writes = _write_model(batch.ids)
    wrong = [(run.execution_id, writes[run.execution_id].status.value, sorted(run.expected))
             for run in batch.runs if writes[run.execution_id].status.value not in run.expected]
    assert not wrong, wrong[:3]
    failed = [i for i, e in writes.items() if e.status.value == "COMPENSATION_FAILED"]
    assert len(failed) == sum(1 for run in batch.runs if run.may_fail_compensation) > 0
    listed = api.call("GET", f"/executions?saga_id={batch.saga_id}"
                             "&status=COMPENSATION_FAILED&limit=100")[1]["items"]
    assert set(failed) == {e["id"] for e in listed}
    for execution_id in failed:  # the participant is back: retry what failed
        status, _ = api.call("POST", f"/executions/{execution_id}/retry-compensation")
        assert status == 202
    for run in batch.runs:
        if run.execution_id in failed and not _fails_for_good(run):
            run.expected = frozenset({"COMPENSATED"})  # retried past its passing failure
    figures = verify(batch, settings_e2e, "compensations fail then recover",
                     settle(batch, settings_e2e))
    # Only the compensations that fail for good are left failed; every other one ended.
    assert figures["endings"].get("COMPENSATION_FAILED", 0) == sum(
        1 for run in batch.runs if _fails_for_good(run))


def _fails_for_good(run: Run) -> bool:
    return any(f.get("phase") == "compensation" and f.get("permanent") for f in run.faults)


# -- participants at the edges (the late-action rule) -------------------------------------------

PARTICIPANT_TIMEOUT_S = 2
# (work before committing, wait after, what the saga must end as), for a 2 s deadline: clear
# of the deadline either way, so the ending is certain; the middle rows commit in time and
# answer after the cut, the case the rule is about.
AROUND_THE_DEADLINE = [
    (0.2, 0.0, "COMPLETED"),
    (0.3, 0.2, "COMPLETED"),  # 1.5 s of slack: a loaded machine still answers in time
    (1.2, 1.6, "COMPENSATED"),
    (1.5, 1.2, "COMPENSATED"),
    (2.8, 0.0, "COMPENSATED"),  # works past its deadline: never commits
]


def _participant_batch(api: Api, settings: Settings, url: str, inputs: list[dict[str, Any]],
                       expected: list[str], *, max_retries: int) -> Batch:
    step = {"name": "A participant", "description": "keeps a ledger",
            "timeout": f"{PARTICIPANT_TIMEOUT_S}s"}
    saga_id = api.create_saga({
        "id": f"edge-{uuid.uuid4().hex[:10]}", "name": "Participants at the edges",
        "version": "1.0.0", "description": "participants answering late or oddly",
        "steps": [
            # The first step of 40 sagas launched at once: LocalStack starts a Lambda
            # environment for many of them, which can take longer than the tested step's 2 s
            # plus margin. Its own timing is not under test, so it gets room.
            {**step, "id": "hold", "order": 1, "action": f"{url}/hold",
             "compensation": f"{url}/release", "max_retries": 0, "input": {},
             "timeout": "30s"},
            {**step, "id": "book", "order": 2, "action": f"{url}/book",
             "compensation": f"{url}/cancel", "max_retries": max_retries}]})["id"]
    batch = Batch(saga_id=saga_id, kafka_since=_topic_end(settings))
    batch.launched_at = time.monotonic()
    for how, ending in zip(inputs, expected, strict=True):
        run = Run(customer="", faults=[], expected=frozenset({ending}))
        run.execution_id = api.execute(saga_id, input=how)["id"]
        batch.runs.append(run)
    batch.launch_s = time.monotonic() - batch.launched_at
    return batch


def test_participants_answering_around_their_deadline(
        api: Api, settings_e2e: Settings) -> None:
    """Half the sagas without retries, half with one (two sagas, one batch): a participant
    that commits before its deadline and answers after the cut is compensated, once, even
    when its retry finds the work done and is cut again."""
    count = PARTICIPANT_SAGAS // 2
    rows = [AROUND_THE_DEADLINE[i % len(AROUND_THE_DEADLINE)] for i in range(count)]
    inputs = [{"work_s": work, "answer_after_s": after} for work, after, _ in rows]
    endings = [ending for _, _, ending in rows]
    with ledger_participant() as participant:
        batches = [_participant_batch(api, settings_e2e, participant.url, inputs, endings,
                                      max_retries=retries) for retries in (0, 1)]
        batch = Batch(saga_id=batches[0].saga_id, runs=batches[0].runs + batches[1].runs,
                      launched_at=batches[0].launched_at, kafka_since=batches[0].kafka_since,
                      launch_s=batches[0].launch_s + batches[1].launch_s)
        figures = verify(batch, settings_e2e, "participants at the deadline, 0 and 1 retries",
                         settle(batch, settings_e2e))
        ledger = participant.ledger
        assert ledger.committed_then_cut >= 1, "no participant committed and then was cut"
        assert ledger.balanced() == _completed_keys(batch, figures)
    print(f"committed, then cut: {ledger.committed_then_cut}")


def test_participants_answering_oddly(api: Api, settings_e2e: Settings) -> None:
    """NaN, a 30-deep object, keys MongoDB refuses, HTML, an array, 5 MB, 302 and 307, after
    the participant committed its work: each is an unknown outcome and compensated."""
    answers = [(*ODD_ANSWERS, "ok")[i % (len(ODD_ANSWERS) + 1)]
               for i in range(PARTICIPANT_SAGAS)]
    with ledger_participant() as participant:
        batch = _participant_batch(
            api, settings_e2e, participant.url, [{"answer": a} for a in answers],
            ["COMPLETED" if a == "ok" else "COMPENSATED" for a in answers], max_retries=0)
        figures = verify(batch, settings_e2e, "participants answering oddly",
                         settle(batch, settings_e2e))
        assert participant.ledger.balanced() == _completed_keys(batch, figures)
        assert participant.ledger.redirects_followed == 0
    writes = _write_model(batch.ids)
    for run, answer in zip(batch.runs, answers, strict=True):
        book = next(step for step in writes[run.execution_id].steps if step.step_id == "book")
        if answer == "ok":
            assert book.status.value == "SUCCEEDED", book
            continue
        # Never plain FAILED: every attempt's outcome is unknown, and the step was undone.
        assert book.status.value == "COMPENSATED", (answer, book)
        assert {str(a.outcome) for a in book.attempts if a.phase == "action"} == {
            "unknown"}, (answer, book)
        message = book.attempts[0].error_message or ""
        assert "step_runs" not in message and "outbox" not in message, message


def _completed_keys(batch: Batch, figures: dict[str, Any]) -> list[str]:
    """What a balanced ledger still holds: the effects of the sagas that completed."""
    writes = _write_model(batch.ids)
    done = sorted(f"{execution_id}:{step}:action" for execution_id, execution in writes.items()
                  if execution.status.value == "COMPLETED" for step in ("book", "hold"))
    assert len(done) == 2 * figures["endings"].get("COMPLETED", 0)
    return [f"{key}: committed 1, undone 0" for key in done]
