"""Transactions on the real MariaDB: an inner transaction joins the outer one, so several
pieces of code that each open their own make one commit (or one rollback) together."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from chalicelib.adapters.mysql.connector import MySQLConnector
from chalicelib.config import Settings


@pytest.fixture
def table(settings: Settings, unique: str) -> Iterator[tuple[MySQLConnector, str]]:
    connector = MySQLConnector(settings.database.mysql)
    name = f"tx_{unique}"
    with connector.transaction() as cur:
        cur.execute(f"CREATE TABLE {name} (id INT PRIMARY KEY)")
    yield connector, name
    with connector.transaction() as cur:
        cur.execute(f"DROP TABLE {name}")
    connector.close()


def _commits(connector: MySQLConnector) -> int:
    """Commits so far on the pooled connection (one thread reuses it), this read's excluded."""
    with connector.transaction() as cur:
        cur.execute("SHOW SESSION STATUS LIKE 'Com_commit'")
        return int(cur.fetchone()["Value"])


def _ids(connector: MySQLConnector, name: str) -> list[int]:
    with connector.transaction() as cur:
        cur.execute(f"SELECT id FROM {name} ORDER BY id")
        return [row["id"] for row in cur.fetchall()]


def test_a_joined_transaction_commits_once_with_the_outer_one(
        table: tuple[MySQLConnector, str]) -> None:
    connector, name = table
    before = _commits(connector)
    with connector.transaction() as outer:
        outer.execute(f"INSERT INTO {name} VALUES (1)")
        with connector.transaction() as inner:
            inner.execute(f"INSERT INTO {name} VALUES (2)")
        with connector.transaction() as inner:
            inner.execute(f"INSERT INTO {name} VALUES (3)")
    assert _commits(connector) - before == 2  # the outer one and the read of `before`
    assert _ids(connector, name) == [1, 2, 3]


def test_a_failure_inside_undoes_the_whole_outer_transaction(
        table: tuple[MySQLConnector, str]) -> None:
    connector, name = table
    with pytest.raises(RuntimeError), connector.transaction() as outer:
        outer.execute(f"INSERT INTO {name} VALUES (1)")
        with connector.transaction() as inner:
            inner.execute(f"INSERT INTO {name} VALUES (2)")
            raise RuntimeError("the attempt failed")
    assert _ids(connector, name) == []
    with connector.transaction() as cur:  # and the next transaction starts afresh
        cur.execute(f"INSERT INTO {name} VALUES (4)")
    assert _ids(connector, name) == [4]
