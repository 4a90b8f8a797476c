"""Listing executions by start time on the real stores: MariaDB (the write model, the
fallback) and MongoDB (the read model, fed by the projector from the outbox) give the same
pages for the same query."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from pymongo.database import Database

from chalicelib.adapters.mongo.client import mongo_client
from chalicelib.adapters.mongo.projector import Projector, ensure_indexes
from chalicelib.adapters.mongo.read_model import MongoExecutionReadModel
from chalicelib.adapters.mysql.connector import MySQLConnector
from chalicelib.adapters.mysql.definitions import MySQLDefinitionStore
from chalicelib.adapters.mysql.executions import MySQLExecutionStore
from chalicelib.config import Settings
from chalicelib.domain.executions import Execution, ExecutionStatus, StepShape
from chalicelib.domain.lifecycle import StepKind
from chalicelib.domain.models import SagaDefinition
from chalicelib.usecases.ports import Actor, ExecutionQuery
from tests.support.databases import migrated_connector

T0 = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def stores(settings: Settings) -> Iterator[tuple[MySQLExecutionStore, MongoExecutionReadModel]]:
    suffix = uuid.uuid4().hex[:8]
    with migrated_connector(settings, f"saga_db_test_listing_{suffix}") as connector:
        client = mongo_client(settings.database.mongodb)
        db: Database = client[f"saga_db_test_listing_{suffix}"]
        ensure_indexes(db)
        _seed(connector, Projector(client, db))
        try:
            yield MySQLExecutionStore(connector), MongoExecutionReadModel(db)
        finally:
            client.drop_database(db.name)
            client.close()


def _seed(connector: MySQLConnector, projector: Projector) -> None:
    """20 executions of two sagas, a minute apart, projected from their outbox events."""
    definitions = MySQLDefinitionStore(connector)
    for saga_id in ("alpha", "beta"):
        definitions.insert_version(SagaDefinition.model_validate({
            "id": saga_id, "name": saga_id, "description": "listing test", "version": "1.0.0",
            "steps": [{"id": "a", "order": 1, "action": "send_notification",
                       "compensation": "cancel_notification"}]}),
            expected_revision=None, actor=Actor("test"), action="create")
    store = MySQLExecutionStore(connector)
    for n in range(20):
        at = T0 + timedelta(minutes=n)
        store.create(Execution(id=f"e{n:02d}", saga_id="alpha" if n % 2 else "beta",
                               revision=1, version="1.0.0", status=ExecutionStatus.RUNNING,
                               input={}, started_at=at, updated_at=at),
                     [StepShape(step_id="a", group=1, kind=StepKind.COMPENSATABLE)])
    with connector.transaction() as cur:
        cur.execute("SELECT envelope FROM outbox ORDER BY id")
        for row in cur.fetchall():
            projector.apply(json.loads(row["envelope"]))


def _all_pages(source: MySQLExecutionStore | MongoExecutionReadModel, **query: object) -> list[str]:
    ids: list[str] = []
    cursor = None
    for _ in range(20):  # bounded: 20 executions, pages of 3
        page = source.list(ExecutionQuery(limit=3, cursor=cursor, **query))  # type: ignore[arg-type]
        ids += [e.id for e in page.items]
        cursor = page.next_cursor
        if cursor is None:
            return ids
    raise AssertionError("paging did not end")


@pytest.mark.parametrize("query", [
    {},
    {"started_after": T0 + timedelta(minutes=5)},
    {"started_before": T0 + timedelta(minutes=5)},
    {"started_after": T0 + timedelta(minutes=3), "started_before": T0 + timedelta(minutes=11)},
    {"saga_id": "alpha", "started_after": T0 + timedelta(minutes=4, seconds=30)},
    # The same instant written in another zone.
    {"started_after": (T0 + timedelta(minutes=10)).astimezone(ZoneInfo("Asia/Tokyo"))},
])
def test_both_models_page_the_same_time_range(
        stores: tuple[MySQLExecutionStore, MongoExecutionReadModel],
        query: dict[str, object]) -> None:
    write_model, read_model = stores
    after = query.get("started_after")
    before = query.get("started_before")
    expected = [f"e{n:02d}" for n in reversed(range(20))
                if (after is None or T0 + timedelta(minutes=n) >= after)  # type: ignore[operator]
                and (before is None or T0 + timedelta(minutes=n) < before)  # type: ignore[operator]
                and (query.get("saga_id") is None or n % 2 == 1)]
    assert _all_pages(write_model, **query) == expected
    assert _all_pages(read_model, **query) == expected
