"""Two executions opening their callbacks at once on the real MariaDB: neither waits for the
other. (Superseding a step's open callbacks once searched an index range with UPDATE, whose
gap lock made two such transactions each wait for the other's insert: a deadlock, and the
victim's callback step failed for good.)"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pymysql
import pytest

from chalicelib.adapters.mysql import callbacks
from chalicelib.adapters.mysql.connector import connect
from chalicelib.config import Settings
from chalicelib.domain.callbacks import Callback
from tests.support.databases import migrated_connector


@pytest.fixture(scope="module")
def database(settings: Settings) -> Iterator[str]:
    name = f"{settings.database.mysql.database}_callback_locks"
    with migrated_connector(settings, name):
        yield name


def _callback(execution_id: str) -> Callback:
    now = datetime.now(UTC)
    return Callback(id=f"cb_{execution_id}", secret_sha256="0" * 64, execution_id=execution_id,
                    step_id="confirm", attempt=1, task_token="token", created_at=now,
                    expires_at=now + timedelta(minutes=1))


def test_two_executions_superseding_then_opening_callbacks_at_once_both_commit(
        settings: Settings, database: str) -> None:
    first, second = (connect(settings.database.mysql, database=database) for _ in range(2))
    errors: list[BaseException] = []
    try:
        for conn in (first, second):
            with conn.cursor() as cur:  # a lock wait ends the test in seconds, not minutes
                cur.execute("SET SESSION innodb_lock_wait_timeout = 5")
        one, two = first.cursor(), second.cursor()
        # The interleaving that deadlocked: both supersede (no open callback yet), then both
        # insert their new callback.
        callbacks.supersede_open(one, "exec-a", "confirm")
        callbacks.supersede_open(two, "exec-b", "confirm")

        def insert_first() -> None:
            try:
                callbacks.insert(one, _callback("exec-a"))
                first.commit()
            except pymysql.MySQLError as error:
                errors.append(error)

        inserting = threading.Thread(target=insert_first)
        inserting.start()
        try:
            callbacks.insert(two, _callback("exec-b"))
            second.commit()
        except pymysql.MySQLError as error:
            errors.append(error)
        inserting.join(timeout=15)
        assert not inserting.is_alive()
        assert errors == []
        with first.cursor() as cur:
            cur.execute("SELECT execution_id FROM step_callbacks ORDER BY execution_id")
            assert [row["execution_id"] for row in cur.fetchall()] == ["exec-a", "exec-b"]
    finally:
        first.close()
        second.close()


def test_superseding_closes_only_the_steps_open_callbacks(settings: Settings,
                                                          database: str) -> None:
    conn = connect(settings.database.mysql, database=database)
    try:
        with conn.cursor() as cur:
            for callback in (_callback("exec-c"), _callback("exec-d")):
                callbacks.insert(cur, callback)
            callbacks.supersede_open(cur, "exec-c", "confirm")
            conn.commit()
            cur.execute("SELECT execution_id, state FROM step_callbacks "
                        "WHERE execution_id IN ('exec-c', 'exec-d') ORDER BY execution_id")
            assert [(row["execution_id"], row["state"]) for row in cur.fetchall()] == [
                ("exec-c", "superseded"), ("exec-d", "open")]
    finally:
        conn.close()
