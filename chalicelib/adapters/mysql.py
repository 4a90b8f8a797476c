"""MySQL/MariaDB connections for the write model.

One connection per process, kept across warm Lambda invocations and re-opened when the server
dropped it; every multi-row change goes through `transaction()`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pymysql
from pymysql.cursors import DictCursor

from chalicelib.config import MySQLSettings


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


class MySQLConnector:
    """Hands out a live connection, reconnecting lazily after the server went away."""

    def __init__(self, settings: MySQLSettings, *, database: str | None = None) -> None:
        self._settings = settings
        self._database = database
        self._conn: pymysql.Connection | None = None
        self._depth = 0  # open transaction() blocks: 0 none, 1 outermost, more joined

    def connection(self) -> pymysql.Connection:
        if self._conn is None or not self._conn.open:
            self._conn = connect(self._settings, database=self._database)
        return self._conn

    @contextlib.contextmanager
    def transaction(self) -> Iterator[DictCursor]:
        """A cursor inside one transaction: committed on success, rolled back on any error.

        Opened inside another on the same connector, it joins it rather than committing the
        outer one's work halfway: the outermost one commits or rolls back.
        """
        if self._depth:
            assert self._conn is not None
            cursor = self._conn.cursor()
            self._depth += 1
            try:
                yield cursor
            finally:
                self._depth -= 1
                cursor.close()
            return
        conn = self.connection()
        try:
            conn.ping()
        except pymysql.MySQLError:
            # The server dropped us (restart, idle timeout): start over with a fresh connection.
            self.close()
            conn = self.connection()
        cursor = conn.cursor()
        self._depth = 1
        try:
            yield cursor
            conn.commit()
        except BaseException:
            with contextlib.suppress(pymysql.MySQLError):
                conn.rollback()
            raise
        finally:
            self._depth = 0
            cursor.close()

    def close(self) -> None:
        if self._conn is not None and self._conn.open:
            with contextlib.suppress(pymysql.MySQLError):
                self._conn.close()
        self._conn = None


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
