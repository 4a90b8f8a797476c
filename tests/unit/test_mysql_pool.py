"""The connection pool, with fake connections: what each pool setting changes, that threads
never share a connection, and that a broken connection is never handed out again."""

from __future__ import annotations

import threading
import time
from typing import Any

import pymysql
import pytest

from chalicelib.adapters.mysql.connector import DatabaseUnavailable, MySQLConnector, unavailable
from chalicelib.config import MySQLSettings


class FakeConnection:
    def __init__(self, number: int) -> None:
        self.number, self.open, self.commits, self.pings_fail = number, True, 0, False
        self.users = 0

    def cursor(self) -> Any:
        return FakeCursor(self)

    def execute(self, *_: Any) -> None:
        if not self.open:
            raise pymysql.err.InterfaceError(0, "")

    def close(self) -> None:
        self.open = False

    def commit(self) -> None:
        self.commits += 1

    def rollback(self) -> None:
        pass

    def ping(self, reconnect: bool = False) -> None:
        if self.pings_fail:
            raise pymysql.err.OperationalError(2006, "MySQL server has gone away")


class FakeCursor:
    def __init__(self, conn: FakeConnection) -> None:
        self.conn = conn

    def close(self) -> None:
        pass


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def pool(clock: Clock | None = None,
         **settings: Any) -> tuple[MySQLConnector, list[FakeConnection]]:
    made: list[FakeConnection] = []

    def connect() -> Any:
        made.append(FakeConnection(len(made)))
        return made[-1]

    connector = MySQLConnector(MySQLSettings(**settings), connect_fn=connect,
                               clock=clock or Clock())
    return connector, made


def test_a_second_transaction_reuses_the_idle_connection() -> None:
    connector, made = pool()
    for _ in range(3):
        with connector.transaction():
            pass
    assert len(made) == 1 and made[0].commits == 3


def test_max_open_conns_bounds_the_connections_in_use() -> None:
    connector, made = pool(max_open_conns=2)
    connector.ACQUIRE_TIMEOUT_S = 0.2
    inside, leave = threading.Barrier(3), threading.Event()

    def hold() -> None:
        with connector.transaction():
            inside.wait(5)
            leave.wait(5)

    threads = [threading.Thread(target=hold) for _ in range(2)]
    for thread in threads:
        thread.start()
    inside.wait(5)
    with pytest.raises(DatabaseUnavailable, match="2 database connections are busy"), \
            connector.transaction():
        pass
    leave.set()
    for thread in threads:
        thread.join(5)
    assert len(made) == 2 and connector.open_connections == 2


def test_max_idle_conns_closes_the_connections_beyond_it() -> None:
    connector, made = pool(max_open_conns=4, max_idle_conns=1)
    inside, leave = threading.Barrier(4), threading.Event()

    def hold() -> None:
        with connector.transaction():
            inside.wait(5)
            leave.wait(5)

    threads = [threading.Thread(target=hold) for _ in range(3)]
    for thread in threads:
        thread.start()
    inside.wait(5)
    leave.set()
    for thread in threads:
        thread.join(5)
    assert len(made) == 3
    assert connector.idle_connections == 1 and sum(c.open for c in made) == 1


def test_conn_max_lifetime_replaces_an_old_connection() -> None:
    clock = Clock()
    connector, made = pool(clock, conn_max_lifetime=60)
    with connector.transaction():
        pass
    clock.now += 59
    with connector.transaction():
        pass
    assert len(made) == 1
    clock.now += 1
    with connector.transaction():
        pass
    assert len(made) == 2 and not made[0].open


def test_threads_never_share_a_connection_and_nesting_joins_per_thread() -> None:
    connector, made = pool(max_open_conns=8)
    seen: dict[int, set[int]] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def work(n: int) -> None:
        try:
            start.wait(5)
            for _ in range(50):
                with connector.transaction() as outer:
                    conn = outer.conn
                    conn.users += 1
                    assert conn.users == 1, "two threads on one connection"
                    with connector.transaction() as inner:
                        assert inner.conn is conn  # joined, on this thread's connection
                    seen.setdefault(n, set()).add(conn.number)
                    time.sleep(0.0005)
                    conn.users -= 1
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert not errors
    assert len(made) <= 8 and sum(c.commits for c in made) == 8 * 50


@pytest.mark.parametrize("error", [
    pymysql.err.InterfaceError(0, ""),
    pymysql.err.InternalError("Packet sequence number wrong - got 1 expected 2"),
    pymysql.err.OperationalError(2013, "Lost connection to MySQL server during query"),
    pymysql.err.InternalError("Command Out of Sync"),
])
def test_a_connection_that_broke_is_replaced_for_the_next_request(error: Exception) -> None:
    connector, made = pool()
    with pytest.raises(type(error)), connector.transaction():
        raise error
    with connector.transaction():
        pass
    assert len(made) == 2 and not made[0].open and made[1].commits == 1
    assert connector.open_connections == 1


def test_a_domain_error_keeps_the_connection() -> None:
    connector, made = pool()
    with pytest.raises(ValueError), connector.transaction():
        raise ValueError("no such saga")
    with connector.transaction():
        pass
    assert len(made) == 1


def test_an_idle_connection_the_server_dropped_is_replaced_before_use() -> None:
    clock = Clock()
    connector, made = pool(clock)
    with connector.transaction():
        pass
    made[0].pings_fail = True  # KILLed while idle
    clock.now += connector.PING_AFTER_IDLE_S
    with connector.transaction():
        pass
    assert len(made) == 2 and made[1].commits == 1


def test_an_unreachable_server_is_a_503_and_the_pool_recovers() -> None:
    attempts = []

    def connect() -> Any:
        attempts.append(1)
        if len(attempts) == 1:
            raise pymysql.err.OperationalError(2003, "Can't connect to MySQL server")
        return FakeConnection(len(attempts))

    connector = MySQLConnector(MySQLSettings(max_open_conns=1), connect_fn=connect)
    with pytest.raises(DatabaseUnavailable), connector.transaction():
        pass
    with connector.transaction():  # the slot was given back
        pass
    assert connector.open_connections == 1
    assert unavailable(pymysql.err.InterfaceError(0, ""))


def test_a_deadlock_victim_is_run_again_on_a_kept_connection() -> None:
    connector, made = pool()
    runs: list[int] = []
    pauses: list[float] = []

    def work(cur: Any) -> str:
        runs.append(cur.conn.number)
        if len(runs) < 3:
            raise pymysql.err.OperationalError(1213, "Deadlock found when trying to get lock")
        return "stored"

    assert connector.retrying(work, sleep=pauses.append) == "stored"
    assert len(runs) == 3 and len(pauses) == 2 and all(p >= 0 for p in pauses)
    # The session survives a deadlock (the server rolled back): the pool reuses it.
    assert runs == [0, 0, 0] and len(made) == 1 and made[0].commits == 1


def test_other_errors_and_a_deadlock_inside_an_outer_transaction_are_not_retried() -> None:
    connector, _ = pool()
    runs: list[str] = []

    def lock_timeout(cur: Any) -> None:
        runs.append("timeout")
        raise pymysql.err.OperationalError(1205, "Lock wait timeout exceeded")

    with pytest.raises(pymysql.err.OperationalError):
        connector.retrying(lock_timeout, sleep=lambda _: None)
    assert runs == ["timeout"]

    def deadlock(cur: Any) -> None:
        runs.append("deadlock")
        raise pymysql.err.OperationalError(1213, "Deadlock found")

    with pytest.raises(pymysql.err.OperationalError), connector.transaction():
        connector.retrying(deadlock, sleep=lambda _: None)
    assert runs == ["timeout", "deadlock"]  # the outer transaction is gone: no second run
    with pytest.raises(pymysql.err.OperationalError):
        connector.retrying(deadlock, attempts=2, sleep=lambda _: None)
    assert runs.count("deadlock") == 3
