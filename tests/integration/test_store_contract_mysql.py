"""The stores' contract (tests/support/store_contract.py) on MySQL: the same tests the
in-memory fakes pass, run against the production stores and their outbox."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from chalicelib.adapters.mysql.connector import MySQLConnector
from chalicelib.adapters.mysql.definitions import MySQLDefinitionStore
from chalicelib.adapters.mysql.executions import MySQLExecutionStore
from chalicelib.adapters.mysql.step_ledger import MySQLStepLedger
from chalicelib.config import Settings
from tests.support.databases import migrated_connector

# Its asserts say what differed, as a test module's do.
pytest.register_assert_rewrite("tests.support.store_contract")
from tests.support.store_contract import StoreContract, Stores  # noqa: E402


@pytest.fixture(scope="module")
def connector(settings: Settings) -> Iterator[MySQLConnector]:
    name = f"{settings.database.mysql.database}_store_contract"
    with migrated_connector(settings, name) as connector:
        yield connector


def mysql_stores(connector: MySQLConnector) -> Stores:
    def outbox(key: str) -> list[dict[str, Any]]:
        with connector.transaction() as cur:
            cur.execute("SELECT envelope FROM outbox WHERE partition_key = %s "
                        "ORDER BY sequence", (key,))
            return [json.loads(row["envelope"]) for row in cur.fetchall()]

    def age(execution_id: str, seconds: float) -> None:
        with connector.transaction() as cur:
            cur.execute("UPDATE executions SET updated_at = updated_at - INTERVAL %s "
                        "MICROSECOND, expected_by = expected_by - INTERVAL %s MICROSECOND "
                        "WHERE id = %s", (int(seconds * 1_000_000), int(seconds * 1_000_000),
                                          execution_id))

    def expected_by(execution_id: str) -> datetime | None:
        with connector.transaction() as cur:
            cur.execute("SELECT expected_by FROM executions WHERE id = %s", (execution_id,))
            row = cur.fetchone()
        assert row is not None
        return None if row["expected_by"] is None else row["expected_by"].replace(tzinfo=UTC)

    return Stores(MySQLDefinitionStore(connector), MySQLExecutionStore(connector),
                  MySQLStepLedger(connector), outbox, age, expected_by)


class TestMySQLStores(StoreContract):
    @pytest.fixture
    def stores(self, connector: MySQLConnector) -> Stores:
        return mysql_stores(connector)
