"""MySQL/MariaDB connections for the write model.

A small pool per process, shared by the threads of `saga serve` and kept across warm Lambda
invocations: every transaction holds one connection of its own for its whole length, so no
connection or transaction is ever used by two threads at once. A connection that broke
(server gone, killed, protocol out of sync) is discarded, never handed out again.
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar

import pymysql
from pymysql.cursors import DictCursor

from chalicelib.config import MySQLSettings
from chalicelib.domain.errors import ErrorKind, SagaError

T = TypeVar("T")


def connect(settings: MySQLSettings, *, database: str | None = None) -> pymysql.Connection:
    return pymysql.connect(
        host=settings.host,
        port=settings.port,
        user=settings.username,
        password=settings.password,
        database=database if database is not None else settings.database,
        charset="utf8mb4",
        cursorclass=DictCursor,
        autocommit=False,
        connect_timeout=5,
        read_timeout=30,
        write_timeout=30,
    )


class DatabaseUnavailable(SagaError):
    """The write model could not be reached (or the pool stayed full): the request failed,
    the next one gets a fresh connection."""

    kind = ErrorKind.DATABASE_UNAVAILABLE


# Errors after which a connection's state is unknown: it is closed, never reused.
_KEEPABLE = (pymysql.err.IntegrityError, pymysql.err.DataError, pymysql.err.ProgrammingError,
             pymysql.err.NotSupportedError)


# ER_LOCK_DEADLOCK: InnoDB chose this transaction as a deadlock's victim and rolled all of it
# back, so running it again is safe (concurrent creates of new rows contend for gap locks).
DEADLOCK = 1213


def deadlocked(error: BaseException) -> bool:
    return (isinstance(error, pymysql.err.OperationalError) and bool(error.args)
            and error.args[0] == DEADLOCK)


def breaks_connection(error: BaseException) -> bool:
    """Whether `error` leaves the connection unusable (or in an unknown protocol state)."""
    if deadlocked(error):
        return False  # the server rolled the transaction back; the session is fine
    if isinstance(error, (pymysql.err.OperationalError, pymysql.err.InterfaceError,
                          pymysql.err.InternalError, OSError)):
        return True
    return type(error).__module__.startswith("pymysql") and not isinstance(error, _KEEPABLE)


def unavailable(error: BaseException) -> bool:
    """Whether a request failed because the database could not serve it (a 503, not a 500)."""
    return isinstance(error, (pymysql.err.OperationalError, pymysql.err.InterfaceError,
                              pymysql.err.InternalError))


@dataclass
class _Pooled:
    conn: pymysql.Connection
    opened: float
    released: float = 0.0
    broken: bool = False


@dataclass
class _Held(threading.local):
    pooled: _Pooled | None = None
    depth: int = 0  # open transaction() blocks: 0 none, 1 outermost, more joined
    admin: pymysql.Connection | None = field(default=None)


Connect = Callable[[], pymysql.Connection]


class MySQLConnector:
    """Connections from a pool of at most `max_open_conns`, keeping up to `max_idle_conns`
    idle ones, each closed once older than `conn_max_lifetime` seconds."""

    # An idle connection unused for this long is pinged before it is handed out: always, since
    # a round trip on the way out costs less than the request a dead connection would fail.
    PING_AFTER_IDLE_S = 0.0
    # How long a transaction waits for a free connection before the request fails with 503.
    ACQUIRE_TIMEOUT_S = 10.0

    def __init__(self, settings: MySQLSettings, *, database: str | None = None,
                 connect_fn: Connect | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._settings = settings
        self._database = database
        self._connect = connect_fn or (lambda: connect(settings, database=database))
        self._clock = clock
        self._lock = threading.Lock()
        self._idle: list[_Pooled] = []  # most recently released last: reused first
        self._slots = threading.BoundedSemaphore(max(1, settings.max_open_conns))
        self._open = 0
        self._held = _Held()

    @property
    def open_connections(self) -> int:
        return self._open

    @property
    def idle_connections(self) -> int:
        return len(self._idle)

    def connection(self) -> pymysql.Connection:
        """A connection of this thread's own outside the pool, for schema migrations and
        administration: inside a transaction, that transaction's connection."""
        held = self._held
        if held.depth and held.pooled is not None:
            return held.pooled.conn
        if held.admin is None or not held.admin.open:
            held.admin = self._connect()
        return held.admin

    def _expired(self, pooled: _Pooled, now: float) -> bool:
        lifetime = self._settings.conn_max_lifetime
        return lifetime > 0 and now - pooled.opened >= lifetime

    def _discard(self, pooled: _Pooled) -> None:
        with self._lock:
            self._open -= 1
        with contextlib.suppress(Exception):
            pooled.conn.close()

    def _acquire(self) -> _Pooled:
        if not self._slots.acquire(timeout=self.ACQUIRE_TIMEOUT_S):
            raise DatabaseUnavailable(
                f"all {self._settings.max_open_conns} database connections are busy")
        try:
            while True:
                with self._lock:
                    pooled = self._idle.pop() if self._idle else None
                if pooled is None:
                    break
                now = self._clock()
                if self._expired(pooled, now) or not pooled.conn.open:
                    self._discard(pooled)
                    continue
                if now - pooled.released >= self.PING_AFTER_IDLE_S:
                    try:
                        pooled.conn.ping(reconnect=False)
                    except Exception:  # the server dropped it (restart, KILL, timeout)
                        self._discard(pooled)
                        continue
                return pooled
            with self._lock:
                self._open += 1
            try:
                return _Pooled(self._connect(), opened=self._clock())
            except BaseException:
                with self._lock:
                    self._open -= 1
                raise
        except BaseException:
            self._slots.release()
            raise

    def _release(self, pooled: _Pooled) -> None:
        try:
            now = self._clock()
            keep = (not pooled.broken and pooled.conn.open and not self._expired(pooled, now))
            if keep:
                with self._lock:
                    keep = len(self._idle) < self._settings.max_idle_conns
                    if keep:
                        pooled.released = now
                        self._idle.append(pooled)
            if not keep:
                self._discard(pooled)
        finally:
            self._slots.release()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[DictCursor]:
        """A cursor inside one transaction: committed on success, rolled back on any error.

        Opened inside another on the same connector and thread, it joins it rather than
        committing the outer one's work halfway: the outermost one commits or rolls back.
        """
        held = self._held
        if held.depth:
            assert held.pooled is not None
            cursor = held.pooled.conn.cursor()
            held.depth += 1
            try:
                yield cursor
            finally:
                held.depth -= 1
                cursor.close()
            return
        try:
            pooled = self._acquire()
        except pymysql.MySQLError as error:
            raise DatabaseUnavailable(f"the database is unreachable: {error.args[-1]}") from None
        held.pooled, held.depth = pooled, 1
        try:
            cursor = pooled.conn.cursor()
            try:
                yield cursor
                pooled.conn.commit()
            finally:
                cursor.close()
        except BaseException as error:
            if breaks_connection(error):
                pooled.broken = True
            else:
                try:
                    pooled.conn.rollback()
                except Exception:
                    pooled.broken = True
            raise
        finally:
            held.pooled, held.depth = None, 0
            self._release(pooled)

    def retrying(self, work: Callable[[DictCursor], T], *, attempts: int = 4,
                 sleep: Callable[[float], None] = time.sleep) -> T:
        """`work` in one transaction, run again (up to `attempts` times in all, after a short
        jittered pause) when InnoDB picks it as a deadlock's victim: nothing of it was kept.
        Inside another transaction it just joins it: only the outermost may be retried."""
        for attempt in range(1, attempts + 1):
            try:
                with self.transaction() as cur:
                    return work(cur)
            except pymysql.err.OperationalError as error:
                if not deadlocked(error) or attempt == attempts or self._held.depth:
                    raise
                sleep(random.uniform(0, 0.02 * 2 ** attempt))
        raise AssertionError("unreachable")

    def close(self) -> None:
        """Close the idle connections and this thread's administration connection."""
        with self._lock:
            idle, self._idle = self._idle, []
        for pooled in idle:
            self._discard(pooled)
        admin, self._held.admin = self._held.admin, None
        if admin is not None and admin.open:
            with contextlib.suppress(Exception):
                admin.close()


def _administer(settings: MySQLSettings, *statements: str) -> None:
    conn = connect(settings, database="")
    try:
        with conn.cursor() as cur:
            for statement in statements:
                cur.execute(statement)
    finally:
        conn.close()


def _disconnect_users(settings: MySQLSettings, name: str) -> None:
    """End other sessions on the database (warm Lambdas of an earlier run), whose open
    transactions would make DROP DATABASE wait for their metadata locks."""
    conn = connect(settings, database="")
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT id FROM information_schema.processlist "
                        "WHERE db = %s AND id <> CONNECTION_ID()", (name,))
            for row in cur.fetchall():
                with contextlib.suppress(pymysql.MySQLError):  # it may have just left
                    cur.execute(f"KILL {int(row['id'])}")
    finally:
        conn.close()


def recreate_database(settings: MySQLSettings, name: str) -> None:
    """Drop the database if it exists and create it empty (tests and benchmarks)."""
    _disconnect_users(settings, name)
    _administer(settings, f"DROP DATABASE IF EXISTS `{name}`", f"CREATE DATABASE `{name}`")


def drop_database(settings: MySQLSettings, name: str) -> None:
    _disconnect_users(settings, name)
    _administer(settings, f"DROP DATABASE IF EXISTS `{name}`")
