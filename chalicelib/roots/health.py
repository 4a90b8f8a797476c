"""Health of every component the service depends on, each with its latency."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from kafka.errors import KafkaError

from chalicelib.adapters import aws
from chalicelib.adapters.kafka import publisher as kafka
from chalicelib.adapters.mongo import client as mongo
from chalicelib.adapters.mysql import connector as mysql

if TYPE_CHECKING:
    from chalicelib.roots.container import Container

Check = Callable[["Container"], str]


def _mysql(parts: Container) -> str:
    # Through the pool the requests use, so a pool that cannot serve them is not "up".
    with parts.connector.transaction() as cur:
        cur.execute("SELECT VERSION() AS version")
        return str(cur.fetchone()["version"])


def _mongodb(parts: Container) -> str:
    with mongo.mongo_client(parts.settings.database.mongodb) as client:
        info = client.admin.command("buildInfo")
        return str(info["version"])


def _kafka(parts: Container) -> str:
    settings = parts.settings
    consumer = kafka.consumer(settings.kafka, topics=[], group_id=None)
    try:
        topics = consumer.topics()
    finally:
        consumer.close()
    if settings.kafka.topic not in topics:
        raise KafkaError(f"topic {settings.kafka.topic!r} does not exist")
    return f"topic {settings.kafka.topic} present"


def _stepfunctions(parts: Container) -> str:
    sfn = aws.client("stepfunctions", parts.settings.aws)
    machines = sfn.list_state_machines(maxResults=1)
    return f"reachable ({len(machines.get('stateMachines', []))}+ state machines)"


def _dead_letters(parts: Container) -> str:
    """Events the pipeline gave up on and nobody replayed yet: up either way (the pipeline
    goes on), but an operator should look when the count is not 0."""
    # Its own short-lived connection to the configured database (not the request pool), so
    # it reads what the settings it is given name.
    conn = mysql.connect(parts.settings.database.mysql)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT COUNT(*) AS n FROM information_schema.tables "
                        "WHERE table_schema = DATABASE() AND table_name = 'dead_letters'")
            if not cur.fetchone()["n"]:
                return "0 dead letters"
            cur.execute("SELECT COUNT(*) AS n FROM dead_letters WHERE replayed_at IS NULL")
            count = int(cur.fetchone()["n"])
    finally:
        conn.close()
    return f"{count} dead letter{'' if count == 1 else 's'} (saga events dead-letters)"


CHECKS: dict[str, Check] = {
    "mysql": _mysql,
    "dead_letters": _dead_letters,
    "mongodb": _mongodb,
    "kafka": _kafka,
    "stepfunctions": _stepfunctions,
}


def _timed(check: Check, parts: Container) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        detail = check(parts)
        status = "up"
    except Exception as error:  # a health check reports every failure, whatever its kind
        detail = f"{type(error).__name__}: {error}"
        status = "down"
    return {"status": status, "latency_ms": round((time.perf_counter() - started) * 1000, 1),
            "detail": detail}


def check_health(parts: Container, checks: dict[str, Check] | None = None) -> dict[str, Any]:
    """Run every check in parallel; overall status is "up" only when every component is."""
    checks = checks or CHECKS
    with ThreadPoolExecutor(max_workers=len(checks)) as pool:
        futures = {name: pool.submit(_timed, check, parts) for name, check in checks.items()}
        components = {name: future.result() for name, future in futures.items()}
    overall = "up" if all(c["status"] == "up" for c in components.values()) else "down"
    return {"status": overall, "components": components}
